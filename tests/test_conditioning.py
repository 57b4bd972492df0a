"""How the text enters the gradient: recorded in the index, refused on mismatch, honoured by library and CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from motive_core.build import build_index
from motive_core.cli import main
from motive_core.config import AttributionSettings
from motive_core.errors import ConfigMismatchError, MotiveError
from motive_core.featurize import Featurizer
from motive_core.index import AttributionIndex
from motive_core.models import load_model
from motive_core.query import Attributor

NULL = AttributionSettings(proj_dim=64, conditioning="null")
CAPTION = AttributionSettings(proj_dim=64)


@pytest.fixture(scope="module")
def model(tiny_demo_dir):
    return load_model(tiny_demo_dir)


@pytest.fixture(scope="module")
def prepared(model, clip_folder):
    return Featurizer(model, CAPTION).prepare_file(sorted(clip_folder.glob("*.mp4"))[0])


@pytest.fixture(scope="module")
def null_index(tmp_path_factory, clip_folder, model) -> Path:
    out = tmp_path_factory.mktemp("null") / "idx"
    build_index(clip_folder, out, Featurizer(model, NULL), unit_size=4)
    return out


def test_null_conditioning_ignores_the_caption(model, prepared):
    null = Featurizer(model, NULL)
    a, b = null.vector(prepared, "a red square bouncing"), null.vector(prepared, "a red square spinning")
    np.testing.assert_array_equal(a, b)
    captioned = Featurizer(model, CAPTION)
    np.testing.assert_array_equal(a, captioned.vector(prepared, ""))  # null = the empty prompt, nothing else
    assert not np.allclose(captioned.vector(prepared, "a red square bounce"),
                           captioned.vector(prepared, "a red square spin"))


def test_unknown_conditioning_is_refused_by_name():
    with pytest.raises(MotiveError, match="conditioning 'words'.*caption, null"):
        AttributionSettings(conditioning="words")


def test_index_records_conditioning_and_refuses_another(null_index, model):
    assert json.loads((null_index / "config.json").read_text())["vector_config"]["settings"]["conditioning"] == "null"
    Attributor(null_index, model=model, conditioning="null")
    with pytest.raises(ConfigMismatchError, match="settings.conditioning.*index='null' query='caption'"):
        Attributor(null_index, model=model, conditioning="caption")
    index = AttributionIndex(null_index)
    with pytest.raises(ConfigMismatchError, match="settings.conditioning"):
        index.check_query_config(Featurizer(model, CAPTION).config())


def test_index_written_before_the_setting_reads_as_caption(null_index, tmp_path, model):
    old = tmp_path / "old"
    shutil.copytree(null_index, old)
    config = json.loads((old / "config.json").read_text())
    for key in ("conditioning", "projector"):
        del config["vector_config"]["settings"][key]
    config["data_root"] = str(Path(null_index / config["data_root"]).resolve())
    (old / "config.json").write_text(json.dumps(config))
    assert AttributionIndex(old).config["settings"]["conditioning"] == "caption"
    with pytest.raises(ConfigMismatchError, match="index='caption' query='null'"):
        Attributor(old, model=model, conditioning="null")


def test_cli_query_reports_what_the_prompt_did(capsys, null_index, clip_folder, tiny_demo_dir):
    video = str(sorted(clip_folder.glob("*.mp4"))[0])
    base = ["query", "--index", str(null_index), "--video", video, "--model", str(tiny_demo_dir), "--top", "2"]
    assert main([*base, "--prompt", "a red square bouncing", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["conditioning"] == "null" and result["prompt"] == "a red square bouncing"
    assert result["prompt_in_gradient"] is False and "was not used" in result["conditioning_note"]
    assert main([*base, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["positives"] == result["positives"]
    assert main([*base, "--conditioning", "caption"]) == 2
    assert "settings.conditioning" in capsys.readouterr().err


def test_cli_build_index_takes_conditioning(capsys, tmp_path, clip_folder, tiny_demo_dir, null_index):
    out = tmp_path / "cli-null"
    code = main(["build-index", "--data", str(clip_folder), "--model", str(tiny_demo_dir), "--out", str(out),
                 "--proj-dim", "64", "--unit-size", "4", "--conditioning", "null", "--json"])
    assert code == 0, capsys.readouterr().err
    np.testing.assert_array_equal(AttributionIndex(out).vectors, AttributionIndex(null_index).vectors)


def test_presets_name_the_paper_and_the_motion_settings(capsys, tmp_path, clip_folder, tiny_demo_dir):
    from motive_core.config import PRESETS

    assert (PRESETS["paper"].conditioning, PRESETS["paper"].loss) == ("caption", "motive")
    assert (PRESETS["motion"].conditioning, PRESETS["motion"].loss) == ("null", "temporal_diff")
    common = ["build-index", "--data", str(clip_folder), "--model", str(tiny_demo_dir), "--proj-dim", "64", "--json"]
    assert main([*common, "--out", str(tmp_path / "m"), "--preset", "motion", "--loss", "motive"]) == 0, \
        capsys.readouterr().err
    settings = AttributionIndex(tmp_path / "m").config["settings"]
    assert (settings["conditioning"], settings["loss"]) == ("null", "motive")  # a flag overrides the preset
    with pytest.raises(SystemExit):
        main([*common, "--out", str(tmp_path / "bad"), "--preset", "words"])
    assert "invalid choice: 'words'" in capsys.readouterr().err
