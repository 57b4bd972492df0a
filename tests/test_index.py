"""The attribution index: build, memory-mapped load, query, resume after kill -9, config refusal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from motive_core.build import build_index
from motive_core.config import AttributionSettings
from motive_core.errors import ConfigMismatchError, MotiveError
from motive_core.featurize import Featurizer
from motive_core.index import AttributionIndex
from motive_core.models import load_model
from motive_core.query import Attributor

REPO = Path(__file__).resolve().parents[1]
SETTINGS = AttributionSettings(proj_dim=64)


def _build_cli(data: Path, model: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "motive_core", "build-index", "--data", str(data), "--model", str(model),
           "--out", str(out), "--proj-dim", "64", "--unit-size", "2", "--json", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def built_index(tmp_path_factory, clip_folder, tiny_demo_dir) -> Path:
    out = tmp_path_factory.mktemp("index") / "idx"
    proc = _build_cli(clip_folder, tiny_demo_dir, out)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["indexed"] == 8 and summary["failed"] == []
    return out


def test_index_layout_and_memory_mapped_vectors(built_index, clip_folder):
    index = AttributionIndex(built_index)
    assert isinstance(index.vectors, np.memmap)
    assert index.vectors.shape == (8, 64)
    assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-5)
    config = json.loads((built_index / "config.json").read_text())
    for key in ("model", "geometry", "tracker", "settings", "dtype", "code_version"):
        assert key in config["vector_config"]
    assert config["vector_config"]["settings"]["use_mask"] is True and config["complete"] is True
    clip = index.clips[0]
    assert {"id", "file", "caption", "labels", "motion", "row"} <= clip.keys()
    assert index.clip_path(clip).is_file()
    assert not list(built_index.rglob("*.tmp*")) and "pickle" not in "".join(p.suffix for p in built_index.rglob("*"))
    assert not (built_index / "units").exists()  # merged into vectors.npy; not kept twice


def test_a_training_clip_queried_with_its_caption_ranks_itself_first(built_index, tiny_demo_dir):
    attributor = Attributor(built_index, model=str(tiny_demo_dir))
    clip = attributor.index.clips[3]
    result = attributor.attribute(attributor.prepare(attributor.index.clip_path(clip)), clip["caption"], top=3)
    assert result.positives[0]["id"] == clip["id"]
    assert result.positives[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert [e["score"] for e in result.positives] == sorted((e["score"] for e in result.positives), reverse=True)
    assert result.negatives[0]["score"] == pytest.approx(float(result.scores.min()))


def test_resume_after_kill_9_equals_an_uninterrupted_build(tmp_path, built_index, clip_folder, tiny_demo_dir):
    out = tmp_path / "killed"
    proc = _build_cli(clip_folder, tiny_demo_dir, out)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((out / "units").glob("unit-*.npy"))) < 1:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list((out / "units").glob("unit-*.npy")))
    assert 1 <= done_before < 4, "the build should have been killed part-way"
    assert not (out / "vectors.npy").exists()
    with pytest.raises(MotiveError, match="incomplete"):
        AttributionIndex(out)
    stdout, stderr = _build_cli(clip_folder, tiny_demo_dir, out).communicate(timeout=600)
    resumed = json.loads(stdout)
    assert resumed["units_built"] == 4 - done_before
    assert np.array_equal(np.load(out / "vectors.npy"), np.load(built_index / "vectors.npy"))
    assert (out / "clips.jsonl").read_text() == (built_index / "clips.jsonl").read_text()


def test_resume_with_other_settings_is_refused_naming_the_keys(tmp_path, built_index, clip_folder, tiny_demo_dir):
    out = tmp_path / "idx"
    featurizer = Featurizer(load_model(tiny_demo_dir), AttributionSettings(proj_dim=64))
    build_index(clip_folder, out, featurizer, unit_size=4)
    before = np.load(out / "vectors.npy")
    assert build_index(clip_folder, out, featurizer, unit_size=4)["units_built"] == 0  # complete: nothing redone
    assert np.array_equal(np.load(out / "vectors.npy"), before)
    other = Featurizer(load_model(tiny_demo_dir), AttributionSettings(proj_dim=64, use_mask=False, t_index=300))
    with pytest.raises(ConfigMismatchError, match=r"settings\.t_index.*settings\.use_mask|settings\.use_mask"):
        build_index(clip_folder, out, other, unit_size=4)
    assert np.load(out / "vectors.npy").shape == (8, 64)  # nothing stored was touched


def test_query_with_a_different_model_is_refused(built_index, tiny_geometry):
    from motive_core.demo.model import DemoVideoModel

    other = DemoVideoModel.create(["a"], tiny_geometry, seed=7, text_dim=16,
                                  transformer=dict(num_layers=2, num_attention_heads=2, attention_head_dim=8, ffn_dim=32,
                                                   freq_dim=32))
    with pytest.raises(ConfigMismatchError, match="model.weight_hash"):
        Attributor(built_index, model=other)


def test_unreadable_clip_is_recorded_and_the_rest_indexed(tmp_path, clip_folder, tiny_demo_dir):
    import shutil

    data = tmp_path / "clips"
    shutil.copytree(clip_folder, data)
    victim = sorted(data.glob("*.mp4"))[0]
    victim.write_text("this is not a video")
    featurizer = Featurizer(load_model(tiny_demo_dir), SETTINGS)
    summary = build_index(data, tmp_path / "idx", featurizer, unit_size=4)
    assert summary["indexed"] == 7 and len(summary["failed"]) == 1
    assert summary["failed"][0]["id"] == victim.stem
    assert AttributionIndex(tmp_path / "idx").vectors.shape == (7, 64)


def test_two_local_workers_match_one(tmp_path, built_index, clip_folder, tiny_demo_dir):
    featurizer = Featurizer(load_model(tiny_demo_dir), SETTINGS)
    build_index(clip_folder, tmp_path / "par", featurizer, unit_size=2, workers=2, model_spec=str(tiny_demo_dir))
    assert np.allclose(np.load(tmp_path / "par" / "vectors.npy"), np.load(built_index / "vectors.npy"), atol=1e-5)
