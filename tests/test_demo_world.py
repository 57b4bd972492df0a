"""`python -m motive_core demo` at a tiny scale: every stage, resumption, determinism; and training itself."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from motive_core.demo import DEMO_MODEL_DIR
from motive_core.demo.model import DemoVideoModel
from motive_core.demo.train import TrainConfig, train
from motive_core.demo.world import DemoRecipe, build_demo
from motive_core.errors import MotiveError
from motive_core.index import AttributionIndex
from motive_core.models import VideoGeometry, VideoModelAdapter, load_model

TINY = DemoRecipe(
    num_clips=12, clip_frames=16, clip_size=32,
    geometry=VideoGeometry(num_frames=8, fps=8.0, height=32, width=32),
    transformer=dict(patch_size=(2, 4, 4), num_layers=1, num_attention_heads=2, attention_head_dim=8, ffn_dim=32),
    train=TrainConfig(steps=3, batch_size=4), generate_steps=2)


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    seconds = build_demo(root / "precomputed", root / "assets", TINY)
    return root, seconds


def test_every_stage_produces_its_artifacts(tiny_world):
    root, seconds = tiny_world
    assert set(seconds) == {"clips", "model", "indexes", "examples"}
    pre = root / "precomputed"
    assert len((pre / "clips" / "metadata.jsonl").read_text().splitlines()) == 12
    model = load_model(pre / "model")
    assert isinstance(model, DemoVideoModel) and isinstance(model, VideoModelAdapter)
    assert model.transformer.config.patch_size == [2, 4, 4] or tuple(model.transformer.config.patch_size) == (2, 4, 4)
    log = [json.loads(line) for line in (pre / "model" / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["config"]["steps"] == 3 and "loss" in log[0]
    masked, plain = AttributionIndex(pre / "index-motion"), AttributionIndex(pre / "index-nomask")
    assert masked.vectors.shape == plain.vectors.shape == (12, 512)
    assert masked.config["settings"]["use_mask"] is True and plain.config["settings"]["use_mask"] is False
    assert masked.config["model"] == plain.config["model"] == model.identity()
    assert not np.allclose(masked.vectors, plain.vectors)
    examples = json.loads((root / "assets" / "examples" / "examples.json").read_text())["examples"]
    assert {e["kind"] for e in examples} == {"rendered", "generated"}
    assert all((root / "assets" / "examples" / e["file"]).stat().st_size > 0 for e in examples)


def test_rerun_keeps_finished_stages(tiny_world):
    root, _ = tiny_world
    vectors = root / "precomputed" / "index-motion" / "vectors.npy"
    before = vectors.stat().st_mtime_ns
    build_demo(root / "precomputed", root / "assets", TINY)
    assert vectors.stat().st_mtime_ns == before


def test_rebuild_from_nothing_is_identical_with_two_index_workers(tiny_world, tmp_path):
    root, _ = tiny_world
    build_demo(tmp_path / "precomputed", tmp_path / "assets", TINY, stages=("clips", "model", "indexes"), workers=2)
    for name in ("index-motion", "index-nomask"):
        assert np.array_equal(np.load(tmp_path / "precomputed" / name / "vectors.npy"),
                              np.load(root / "precomputed" / name / "vectors.npy"))
    assert load_model(tmp_path / "precomputed" / "model").identity() == load_model(root / "precomputed" / "model").identity()


@pytest.mark.parametrize("loss", [dict(), dict(loss_space="sample", temporal_weight=1.0)])
def test_training_lowers_the_loss(clip_folder, tiny_geometry, loss):
    model = DemoVideoModel.create(["a", "red", "square", "bouncing"], tiny_geometry, seed=0,
                                  transformer=dict(patch_size=(2, 4, 4), num_layers=1, num_attention_heads=2,
                                                   attention_head_dim=8, ffn_dim=32), text_dim=16)
    config = replace(TrainConfig(), steps=60, batch_size=4, lr=3e-3, warmup=5, log_every=1, **loss)
    log = train(model, clip_folder, config, progress=False)
    first, last = np.mean([e["loss"] for e in log[:5]]), np.mean([e["loss"] for e in log[-10:]])
    assert last < 0.7 * first


def test_preloaded_tensors_train_exactly_like_the_folder(clip_folder, tiny_geometry):
    from motive_core.data import load_clip_folder
    from motive_core.demo.train import load_training_tensors

    def fresh():
        return DemoVideoModel.create(["a"], tiny_geometry, seed=0, text_dim=16, transformer=dict(
            patch_size=(2, 4, 4), num_layers=1, num_attention_heads=2, attention_head_dim=8, ffn_dim=32))

    config = replace(TrainConfig(), steps=3, batch_size=2, log_every=1)
    from_folder = train(fresh(), clip_folder, config, progress=False)
    model = fresh()
    from_tensors = train(model, load_training_tensors(model, load_clip_folder(clip_folder)), config, progress=False)
    assert [e["loss"] for e in from_folder] == [e["loss"] for e in from_tensors]


def test_sample_space_loss_is_the_clean_clip_error():
    """x̂₀ − x₀ = −σ(v̂ − v), so the "sample" loss is the velocity error scaled by σ, squared."""
    from motive_core.demo.train import training_loss
    error = torch.randn(2, 3, 4, 5, 5)
    sigma = torch.tensor([0.2, 0.9]).view(-1, 1, 1, 1, 1)
    velocity = training_loss(error, sigma, TrainConfig())
    sample = training_loss(error, sigma, TrainConfig(loss_space="sample"))
    assert torch.isclose(velocity, error.pow(2).mean())
    assert torch.isclose(sample, (error * sigma).pow(2).mean())


def test_temporal_term_charges_only_errors_that_change_over_time():
    from motive_core.demo.train import training_loss
    sigma = torch.ones(1, 1, 1, 1, 1)
    steady = torch.randn(1, 3, 1, 5, 5).expand(1, 3, 4, 5, 5)
    config = TrainConfig(temporal_weight=2.0)
    assert torch.isclose(training_loss(steady, sigma, config), steady.pow(2).mean())
    changing = steady.clone()
    changing[:, :, 2] += 1.0
    plain = changing.pow(2).mean()
    # frame 2 differs from frames 1 and 3 by 1 everywhere: 2 of the 3 differences, so the term is 2/3
    assert torch.isclose(training_loss(changing, sigma, config), plain + 2.0 * 2 / 3)


def test_weight_average_is_the_ramped_moving_average(clip_folder, tiny_geometry):
    """After one step the averaged weights are 0.1·initial + 0.9·stepped (the decay ramps from (1+0)/(10+0))."""
    def fresh():
        return DemoVideoModel.create(["a"], tiny_geometry, seed=0, text_dim=16, transformer=dict(
            patch_size=(2, 4, 4), num_layers=1, num_attention_heads=2, attention_head_dim=8, ffn_dim=32))

    config = replace(TrainConfig(), steps=1, batch_size=2, lr=1e-2, warmup=1)
    initial, stepped, averaged = fresh(), fresh(), fresh()
    train(stepped, clip_folder, config, progress=False)
    train(averaged, clip_folder, replace(config, ema_decay=0.999), progress=False)
    changed = 0
    for (name, start), after, mean in zip(initial.transformer.named_parameters(), stepped.transformer.parameters(),
                                          averaged.transformer.parameters()):
        torch.testing.assert_close(mean, 0.1 * start + 0.9 * after, msg=name)
        changed += not torch.equal(start, after)
    assert changed > 0
    torch.testing.assert_close(averaged.text_encoder.embedding.weight,
                               0.1 * initial.text_encoder.embedding.weight + 0.9 * stepped.text_encoder.embedding.weight)


@pytest.mark.parametrize("bad, message", [(dict(loss_space="noise"), "loss_space must be one of velocity, sample"),
                                          (dict(temporal_weight=-1.0), "temporal_weight must be ≥ 0"),
                                          (dict(ema_decay=1.0), r"ema_decay must be in \[0, 1\)")])
def test_bad_loss_settings_are_refused_by_name(clip_folder, tiny_geometry, bad, message):
    model = DemoVideoModel.create(["a"], tiny_geometry, seed=0, text_dim=16, transformer=dict(
        patch_size=(2, 4, 4), num_layers=1, num_attention_heads=2, attention_head_dim=8, ffn_dim=32))
    with pytest.raises(MotiveError, match=message):
        train(model, clip_folder, replace(TrainConfig(), steps=1, batch_size=2, **bad), progress=False)


@pytest.mark.parametrize("folder", ["index-motion", "index-nomask"])
def test_committed_demo_indexes_are_what_the_recipe_computes(folder):
    """The shipped vectors come from the recipe's settings and today's code: a query is computed the same way."""
    from dataclasses import asdict
    from pathlib import Path

    from motive_core.config import AttributionSettings
    from motive_core.featurize import Featurizer

    index = AttributionIndex(Path(__file__).resolve().parents[1] / "precomputed" / folder)
    settings = AttributionSettings(**{**asdict(DemoRecipe().settings), "use_mask": folder == "index-motion"})
    featurizer = Featurizer(load_model(DEMO_MODEL_DIR), settings)
    index.check_query_config(featurizer.config())
    for row in (0, len(index.clips) // 2):
        clip = index.clips[row]
        vector = featurizer.vector(featurizer.prepare_file(index.clip_path(clip)), clip["caption"])
        np.testing.assert_allclose(vector, index.vectors[row], atol=2e-5)
