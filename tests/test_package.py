"""The package is the method's diagram: the engine stands alone, its public API imports from one place, its
settings generate the command line, and a model folder says which adapter loads it."""

from __future__ import annotations

import ast
import json
import shutil
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

import motive_core
from motive_core.build import build_index
from motive_core.cli import build_parser, main, settings_from_args
from motive_core.config import PRESETS, AttributionSettings
from motive_core.errors import ModelNotFoundError
from motive_core.featurize import Featurizer
from motive_core.index import AttributionIndex
from motive_core.models import ADAPTER_FILE, load_geometry, load_model
from motive_core.query import Attributor

PACKAGE = Path(motive_core.__file__).parent
BESIDE_THE_ENGINE = ("demo", "eval", "ui")  # sub-packages the engine must not reach into
DRIVERS = ("cli.py", "__main__.py")  # front ends: they may use everything


def engine_modules() -> list[Path]:
    return [path for path in PACKAGE.rglob("*.py")
            if path.relative_to(PACKAGE).parts[0] not in BESIDE_THE_ENGINE and path.name not in DRIVERS]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_engine_never_imports_the_demo_world_the_evaluation_or_the_app():
    modules = engine_modules()
    assert len(modules) > 20 and PACKAGE / "featurize.py" in modules
    for path in modules:
        reaching = sorted(name for name in imported_modules(path)
                          if any(name == f"motive_core.{sub}" or name.startswith(f"motive_core.{sub}.")
                                 for sub in BESIDE_THE_ENGINE))
        assert not reaching, f"{path.relative_to(PACKAGE)} imports {reaching}"
        text = path.read_text()
        assert "precomputed/" not in text and '"precomputed"' not in text, f"{path.relative_to(PACKAGE)} names demo files"


def test_the_scan_sees_imports_inside_functions(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from motive_core.demo import model\n")
    assert "motive_core.demo.model" in imported_modules(probe)


def test_the_public_api_imports_from_the_package_root():
    assert motive_core.__all__ and sorted(motive_core.__all__) == motive_core.__all__
    for name in motive_core.__all__:
        assert getattr(motive_core, name) is not None
    from motive_core import Attributor as Root

    assert Root is Attributor
    with pytest.raises(AttributeError, match="no attribute 'Atributor'"):
        motive_core.Atributor  # noqa: B018 - a misspelling names itself


def test_every_setting_has_a_generated_flag_and_flags_override_the_preset():
    build = build_parser()._subparsers._group_actions[0].choices["build-index"]
    flags = {option for action in build._actions for option in action.option_strings}
    for item in fields(AttributionSettings):
        assert "--" + (item.metadata["flag"] or item.name).replace("_", "-") in flags, item.name
    common = ["build-index", "--data", "d", "--model", "m", "--out", "o"]
    assert settings_from_args(build_parser().parse_args(common)) == PRESETS["paper"]
    args = build_parser().parse_args([*common, "--preset", "motion", "--no-mask", "--t-index", "400",
                                      "--projector", "countsketch"])
    assert settings_from_args(args) == AttributionSettings(use_mask=False, t_index=400, projector="countsketch",
                                                           loss="temporal_diff", conditioning="null",
                                                           t_ensemble="300,700")
    with pytest.raises(SystemExit):  # a choice the settings do not allow is refused by the parser
        build_parser().parse_args([*common, "--loss", "l1"])


def test_settings_round_trip_through_the_vector_config(tiny_demo_dir):
    settings = AttributionSettings(use_mask=False, t_index=300, noise_seed=4, proj_dim=64, params="blocks.*",
                                   loss="temporal_diff", conditioning="null", projector="countsketch",
                                   t_ensemble="400")
    config = Featurizer(load_model(tiny_demo_dir), settings).config()
    assert AttributionSettings.from_vector_config(json.loads(json.dumps(config))) == settings
    legacy = {**config, "settings": {k: v for k, v in config["settings"].items()
                                     if k not in ("conditioning", "projector", "t_ensemble")}}
    assert AttributionSettings.from_vector_config(legacy).conditioning == "caption"  # as indexes were built then


def test_a_model_folder_names_its_adapter(tiny_demo_dir, tmp_path):
    assert json.loads((tiny_demo_dir / ADAPTER_FILE).read_text()) == {"adapter": "motive_core.demo.model:DemoVideoModel"}
    legacy = shutil.copytree(tiny_demo_dir, tmp_path / "legacy")
    (legacy / ADAPTER_FILE).unlink()  # saved before folders declared their adapter: known by its config file
    assert type(load_model(legacy)).__name__ == "DemoVideoModel"
    assert load_geometry(legacy) == load_geometry(tiny_demo_dir)
    for repo_model in ("precomputed/model", "precomputed/artifact/model"):
        assert (PACKAGE.parent / repo_model / ADAPTER_FILE).is_file(), repo_model
    (legacy / ADAPTER_FILE).write_text(json.dumps({"adapter": "motive_core.demo.model:NoSuchModel"}))
    with pytest.raises(ModelNotFoundError, match="NoSuchModel.*cannot be imported"):
        load_model(legacy)
    (legacy / ADAPTER_FILE).write_text("[1, 2]")
    with pytest.raises(ModelNotFoundError, match="must be a JSON object"):
        load_model(legacy)


def test_an_index_moved_with_its_model_and_clips_still_finds_them(tiny_demo_dir, clip_folder, tmp_path, one_torch_thread):
    world = tmp_path / "world"
    shutil.copytree(tiny_demo_dir, world / "model")
    shutil.copytree(clip_folder, world / "clips")
    featurizer = Featurizer(load_model(world / "model"), AttributionSettings(proj_dim=32, conditioning="null"))
    build_index(world / "clips", world / "index", featurizer, model_spec=str(world / "model"))
    header = json.loads((world / "index" / "config.json").read_text())
    assert (header["model_spec"], header["data_root"]) == ("../model", "../clips")
    moved = shutil.move(world, tmp_path / "elsewhere")
    attributor = Attributor(Path(moved) / "index")
    query = attributor.index.clip_path(attributor.index.clips[0])
    assert query.is_file() and attributor.index.model_folder() == (Path(moved) / "model").resolve()
    result = attributor.attribute(attributor.prepare(query), top=3)
    assert result.positives[0]["id"] == attributor.index.clips[0]["id"]
    assert np.isclose(result.positives[0]["score"], 1.0, atol=1e-5)


def test_an_index_that_does_not_say_where_its_model_is_asks_for_it(tiny_demo_dir, clip_folder, tmp_path, capsys):
    featurizer = Featurizer(load_model(tiny_demo_dir), AttributionSettings(proj_dim=32))
    build_index(clip_folder, tmp_path / "index", featurizer)  # no model_spec given
    code = main(["query", "--index", str(tmp_path / "index"), "--video", str(next(clip_folder.glob("*.mp4")))])
    assert code == 2 and "does not record its model folder" in capsys.readouterr().err
    assert main(["query", "--index", str(tmp_path / "index"), "--model", str(tiny_demo_dir),
                 "--video", str(next(clip_folder.glob("*.mp4"))), "--json"]) == 0
    assert isinstance(AttributionIndex(tmp_path / "index").vectors, np.ndarray)
