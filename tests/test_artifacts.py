"""Planted motion artifacts: clean renders unchanged, the artifacts really in the pixels, captions silent."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from motive_core.demo.artifacts import PLANTED, artifact_rate, detect_artifact, object_track, plant_artifacts
from motive_core.demo.model import DemoVideoModel
from motive_core.demo.motionshapes import (ARTIFACT_TICKS, JITTER_SHIFT, STUTTER_TICKS, ShapeSpec, caption, render_clip,
                                           sample_specs, write_clip_folder)
from motive_core.demo.train import TrainConfig
from motive_core.demo.world import ARTIFACT_STAGE, ArtifactRecipe, DemoRecipe, build_demo
from motive_core.errors import MotiveError
from motive_core.index import AttributionIndex
from motive_core.models import VideoGeometry
from motive_core.video import Video, read_video, standardize

REPO = Path(__file__).resolve().parents[1]

# sha256 of render_clip(spec, 32, 64) over every 40th spec of sample_specs(600, seed=0) (the committed demo
# clips), computed with the renderer as it was before artifacts could be planted.
CLEAN_RENDER_SHA = "c13dbc575cd373c90eb34624b12aedc872950ab4879682c4139bda98339f4d06"


def at_model_geometry(frames: np.ndarray, fps: float = 16) -> np.ndarray:
    g = DemoRecipe().geometry
    return standardize(Video(frames=frames, fps=fps, source="rendered"), g.num_frames, g.fps, g.height, g.width)


def plain(motion: str, **overrides) -> ShapeSpec:
    fields = dict(shape="circle", color="red", background="plain", size=0.16, seed=3)
    return ShapeSpec(motion, **{**fields, **overrides})


def test_committed_demo_specs_render_the_same_pixels_as_before_artifacts():
    specs = sample_specs(600, seed=0)
    digest = hashlib.sha256()
    for spec in specs[::40]:
        digest.update(render_clip(spec, 32, 64).tobytes())
    assert digest.hexdigest() == CLEAN_RENDER_SHA
    for index in (0, 9, 6):  # and they are the committed clips (H.264 is lossy: compare with a margin)
        committed = read_video(REPO / "precomputed" / "clips" / f"{index:05d}_{specs[index].motion}.mp4").frames
        own, other = (np.abs(committed.astype(np.int16) - render_clip(spec, 32, 64)).mean()
                      for spec in (specs[index], specs[index + 1]))
        assert own < 6 and own < other / 3, f"clip {index}: mean error {own:.1f} (next spec's: {other:.1f})"


def centres(frames: np.ndarray) -> np.ndarray:
    """(T, 2) centre of every pixel unlike the plain background's colour, in pixels."""
    weight = np.clip(np.abs(frames.astype(np.float32) - frames[0, 0, 0]).sum(-1) / 150, 0, 1)
    ys, xs = np.mgrid[0:frames.shape[1], 0:frames.shape[2]]
    total = weight.sum(axis=(1, 2))
    return np.stack([(weight * xs).sum(axis=(1, 2)) / total, (weight * ys).sum(axis=(1, 2)) / total], axis=1)


def test_jitter_shakes_the_object_sideways_every_tick_along_its_path():
    clean = centres(at_model_geometry(render_clip(plain("bounce", size=0.12), 32, 64)))
    shaken = centres(at_model_geometry(render_clip(plain("bounce", size=0.12, artifact="jitter"), 32, 64)))
    shift = shaken[:, 0] - clean[:, 0]
    expected = 32 * JITTER_SHIFT  # px at 32 px
    assert np.all(np.sign(shift) == np.where(np.arange(ARTIFACT_TICKS) % 2 == 0, 1, -1))
    assert np.all(np.abs(np.abs(shift) - expected) < 0.1 * expected)
    assert np.abs(shaken[:, 1] - clean[:, 1]).max() < 0.3  # the path itself is unchanged


def test_stutter_freezes_for_a_few_frames_then_jumps_back_onto_the_path():
    clean = at_model_geometry(render_clip(plain("swing"), 32, 64))
    stutter = at_model_geometry(render_clip(plain("swing", artifact="stutter"), 32, 64))
    first, end = STUTTER_TICKS
    assert all(np.array_equal(stutter[t], stutter[first]) for t in range(first, end))
    assert np.array_equal(stutter[end], clean[end]) and np.array_equal(stutter[:first], clean[:first])
    jump = np.linalg.norm(object_track(stutter)[end] - object_track(stutter)[end - 1])
    assert jump > 5  # px at 32 px


def test_planting_picks_a_share_of_one_motion_and_changes_nothing_else():
    specs = sample_specs(200, seed=4)
    planted = plant_artifacts(specs, 1 / 3, seed=4)
    for kind, motion in PLANTED.items():
        rows = [i for i, s in enumerate(planted) if s.artifact == kind]
        assert len(rows) == round(sum(s.motion == motion for s in specs) / 3)
        assert all(planted[i].motion == motion and planted[i].camera == "static" for i in rows)
    assert all(replace(p, artifact="none") == s for p, s in zip(planted, specs))
    assert plant_artifacts(specs, 1 / 3, seed=4) == planted


def test_captions_and_clean_labels_never_name_the_artifact():
    planted = [s for s in plant_artifacts(sample_specs(200, seed=4), 0.5, seed=4) if s.artifact != "none"]
    words = ("jitter", "stutter", "shak", "freez", "jump", "glitch", "artifact")
    for spec in planted:
        assert caption(spec) == caption(replace(spec, artifact="none"))
        assert not any(word in caption(spec) for word in words)
    assert plain("bounce").labels() == {"motion": "bounce", "shape": "circle", "color": "red",
                                        "background": "plain", "camera": "static"}
    assert plain("bounce", artifact="jitter").labels()["artifact"] == "jitter"


def test_detector_fires_on_planted_clips_and_not_on_clean_ones(tmp_path):
    """Real mp4 files, decoded and resampled to the demo model's geometry, as the pool clips are."""
    specs = plant_artifacts(sample_specs(80, seed=9), 0.5, seed=9)
    clips = write_clip_folder(tmp_path / "pool", specs, artifact_labels=True)
    rows = [json.loads(line) for line in (tmp_path / "pool" / "metadata.jsonl").read_text().splitlines()]
    assert [r["artifact"] for r in rows] == [s.artifact for s in specs]
    assert not any(any(w in r["text"] for w in ("jitter", "stutter")) for r in rows)
    g = DemoRecipe().geometry
    readings = [detect_artifact(standardize(read_video(c.file), g.num_frames, g.fps, g.height, g.width))
                for c in clips]
    verdicts = [r.kind for r in readings]
    assert {s.artifact for s in specs} == {"none", "jitter", "stutter"}
    assert verdicts == [s.artifact for s in specs]
    assert artifact_rate([r for r, s in zip(readings, specs) if s.artifact == "jitter"], "jitter") == 1.0


def test_bad_artifact_inputs_are_refused():
    with pytest.raises(MotiveError, match="artifact='wobble'"):
        plain("bounce", artifact="wobble")
    with pytest.raises(MotiveError, match="share"):
        plant_artifacts(sample_specs(20, seed=0), 0.0, seed=0)
    with pytest.raises(ValueError, match="frames"):
        object_track(np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="kind"):
        artifact_rate([], "wobble")


TINY_ARTIFACT = DemoRecipe(
    num_clips=12, clip_frames=16, clip_size=32, geometry=VideoGeometry(num_frames=8, fps=8.0, height=32, width=32),
    transformer=dict(patch_size=(2, 4, 4), num_layers=1, num_attention_heads=2, attention_head_dim=8, ffn_dim=32),
    train=TrainConfig(steps=2, batch_size=4), generate_steps=2,
    artifact=ArtifactRecipe(pool_size=24, pool_seed=5, planted_share=1.0, plant_seed=5,
                            finetune=TrainConfig(steps=2, batch_size=4, seed=0), example_candidates=2))


def test_artifact_stage_builds_pool_model_indexes_and_examples_deterministically(tmp_path):
    """Two builds: ``b`` starts from ``a``'s clean world and rendered pool (H.264 encoding itself is not
    bit-reproducible), so everything the artifact stage computes from them must come out identical."""
    a, b = tmp_path / "a", tmp_path / "b"
    build_demo(a / "precomputed", a / "assets", TINY_ARTIFACT)
    seconds = build_demo(a / "precomputed", a / "assets", TINY_ARTIFACT, stages=(ARTIFACT_STAGE,))
    assert set(seconds) == {ARTIFACT_STAGE}
    for folder in ("clips", "model", "artifact/clips"):
        shutil.copytree(a / "precomputed" / folder, b / "precomputed" / folder)
    build_demo(b / "precomputed", b / "assets", TINY_ARTIFACT, stages=(ARTIFACT_STAGE,))
    (art, examples), (art_b, examples_b) = ((w / "precomputed" / "artifact", w / "assets" / "examples-artifact")
                                            for w in (a, b))
    rows = [json.loads(line) for line in (art / "clips" / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 24 and {r["artifact"] for r in rows} == {"none", "jitter", "stutter"}
    assert all(r["motion"] == PLANTED[r["artifact"]] for r in rows if r["artifact"] != "none")
    clean, tuned = (DemoVideoModel.load(p).identity()["weight_hash"] for p in (art.parent / "model", art / "model"))
    assert tuned != clean and tuned == DemoVideoModel.load(art_b / "model").identity()["weight_hash"]
    for folder in ("index-motion", "index-nomask"):
        index = AttributionIndex(art / folder)
        assert index.header["model_spec"] == "../model" and index.model_folder() == (art / "model").resolve()
        assert np.array_equal(index.vectors, AttributionIndex(art_b / folder).vectors)
        assert {c["labels"]["artifact"] for c in index.clips} >= {"jitter", "stutter"}
    manifest = json.loads((examples / "examples.json").read_text())["examples"]
    assert manifest == json.loads((examples_b / "examples.json").read_text())["examples"]
    rendered = [e for e in manifest if e["kind"] == "rendered"]
    assert {e["artifact"] for e in rendered} == set(PLANTED) and all((examples / e["file"]).is_file() for e in manifest)
    assert all(e["artifact"] == detect_artifact(read_video(examples / e["file"]).frames).kind
               for e in manifest if e["kind"] == "generated")
