"""Model adapters: real diffusers Wan classes (tiny random configs) and the demo model, through one protocol."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motive_core.demo.model import DemoVideoModel
from motive_core.errors import ModelNotFoundError, MotiveError
from motive_core.models import VideoModelAdapter, WanVideoModel, load_model
from motive_core.models.base import VideoGeometry
from motive_core.models.flow import attribution_scheduler, fixed_noise, noise_at_index, sample


def test_paper_timestep_index_maps_to_t_750():
    scheduler = attribution_scheduler()
    assert float(scheduler.timesteps[500]) == pytest.approx(750.0, abs=1.0)
    assert float(scheduler.sigmas[500]) == pytest.approx(0.75, abs=1e-3)


def test_noising_matches_flow_matching_definition():
    latents = torch.randn(1, 4, 3, 4, 4)
    noise = fixed_noise(latents.shape, seed=5)
    noised = noise_at_index(attribution_scheduler(), latents, 500, noise)
    assert torch.allclose(noised.noisy, (1 - noised.sigma) * latents + noised.sigma * noise)
    assert torch.allclose(noised.target, noise - latents)
    assert torch.equal(fixed_noise(latents.shape, 5), noise) and not torch.equal(fixed_noise(latents.shape, 6), noise)
    with pytest.raises(MotiveError, match="timestep index 1000"):
        noise_at_index(attribution_scheduler(), latents, 1000, noise)


def test_wan_adapter_geometry_encode_predict(tiny_wan_dir):
    model = load_model(tiny_wan_dir, device="cpu")
    assert isinstance(model, WanVideoModel) and isinstance(model, VideoModelAdapter)
    assert model.geometry.latent_grid() == (3, 4, 4)  # 9 frames → 1 + 8/4; 32 px / 8
    frames = np.random.default_rng(0).integers(0, 255, (9, 32, 32, 3), dtype=np.uint8)
    latents = model.encode(frames)
    assert latents.shape == model.latent_shape() == (1, 16, 3, 4, 4)
    assert torch.equal(latents, model.encode(frames))  # deterministic (distribution mode, not a sample)
    condition = model.encode_prompt("a ball bouncing")
    assert condition.shape == (1, 5, 32)
    prediction = model.predict(latents, torch.tensor([750.0]), condition)
    assert prediction.shape == latents.shape and torch.isfinite(prediction).all()
    assert model.decode(latents).shape == (9, 32, 32, 3)
    assert len(model.identity()["weight_hash"]) == 16


def test_wan_missing_parts_say_where_they_looked(tmp_path, tiny_wan_dir):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="missing transformer/config.json"):
        load_model(tmp_path / "empty")
    model = load_model(tiny_wan_dir, device="cpu")
    with pytest.raises(ModelNotFoundError, match="no embedding for the caption"):
        model.encode_prompt("an unseen caption")


def test_demo_model_round_trip(tiny_demo_dir):
    model = load_model(tiny_demo_dir, device="cpu")
    assert isinstance(model, DemoVideoModel)
    again = DemoVideoModel.load(tiny_demo_dir)
    assert model.identity() == again.identity()
    for (name, a), (_, b) in zip(model.transformer.state_dict().items(), again.transformer.state_dict().items()):
        assert torch.equal(a, b), name
    frames = np.random.default_rng(1).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    latents = model.encode(frames)
    assert latents.shape == model.latent_shape() == (1, 3, 8, 32, 32)
    assert np.abs(model.decode(latents).astype(int) - frames).max() <= 1


def test_demo_text_encoder_handles_unknown_words(tiny_demo_dir):
    model = DemoVideoModel.load(tiny_demo_dir)
    ids = model.text_encoder.ids("a zorblax square bouncing")
    assert ids[1] == 1 and ids[0] > 1 and ids[4:] == [0] * (model.config.max_words - 4)
    assert model.encode_prompt("a square bouncing").shape == (1, model.config.max_words, model.config.text_dim)


def test_sample_prediction_model_returns_velocity_and_round_trips(tmp_path, tiny_geometry):
    from motive_core.demo.model import MIN_SIGMA

    tiny = dict(num_layers=1, num_attention_heads=2, attention_head_dim=8, ffn_dim=16, freq_dim=16)
    model = DemoVideoModel.create(["a", "square"], tiny_geometry, seed=0, transformer=tiny, text_dim=8,
                                  prediction="sample")
    noisy = torch.randn(model.latent_shape(), generator=torch.Generator().manual_seed(0))
    condition = model.encode_prompt("a square")
    with torch.no_grad():
        clean = model.transformer(noisy, torch.tensor([750.0]), condition, return_dict=False)[0]
        velocity = model.predict(noisy, torch.tensor([750.0]), condition)
        near_zero = model.predict(noisy, torch.tensor([0.5]), condition)
    torch.testing.assert_close(velocity, (noisy - clean) / 0.75)  # v = (x_σ − x̂₀)/σ
    assert not torch.allclose(velocity, clean)
    with torch.no_grad():
        clean_low = model.transformer(noisy, torch.tensor([0.5]), condition, return_dict=False)[0]
    torch.testing.assert_close(near_zero, (noisy - clean_low) / MIN_SIGMA)  # σ is floored, never divides by ~0
    again = DemoVideoModel.load(model.save(tmp_path / "m"))
    assert again.config.prediction == "sample" and again.identity() == model.identity()
    with pytest.raises(MotiveError, match="prediction must be one of velocity, sample"):
        DemoVideoModel.create(["a"], tiny_geometry, prediction="epsilon")


def test_generate_is_deterministic_per_seed(tiny_demo_dir):
    model = load_model(tiny_demo_dir, device="cpu")
    a = sample(model, "a red square bouncing", seed=1, steps=3)
    assert a.shape == (8, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, sample(model, "a red square bouncing", seed=1, steps=3))
    assert not np.array_equal(a, sample(model, "a red square bouncing", seed=2, steps=3))


def test_generation_reports_each_step_and_shares_one_set_of_defaults(tiny_demo_dir):
    from motive_core.cli import build_parser
    from motive_core.config import GENERATION
    from motive_core.demo.world import DemoRecipe

    steps = []
    frames = sample(load_model(tiny_demo_dir, device="cpu"), "a red square bouncing", seed=1, steps=3,
                    on_step=lambda done, total: steps.append((done, total)))
    assert steps == [(1, 3), (2, 3), (3, 3)] and frames.shape == (8, 32, 32, 3)
    args = build_parser().parse_args(["generate", "--model", "m", "--prompt", "p", "--out", "o.mp4"])
    assert (args.seed, args.steps, args.guidance) == (GENERATION.seed, GENERATION.steps, GENERATION.guidance)
    assert (DemoRecipe().generate_steps, DemoRecipe().guidance) == (GENERATION.steps, GENERATION.guidance)


def test_geometry_latent_grid_for_wan_81_frames():
    assert VideoGeometry(81, 16, 480, 832, 4, 8, True).latent_grid() == (21, 60, 104)


def test_coordinate_planes_locate_every_pixel_and_survive_a_round_trip(tmp_path, tiny_geometry):
    from motive_core.demo.model import with_coordinates

    pixels = torch.zeros(2, 3, 4, 5, 6)
    planes = with_coordinates(pixels)[:, 3:]
    assert planes.shape == (2, 3, 4, 5, 6)
    assert planes[0, 0, :, 2, 3].tolist() == pytest.approx([-1.0, -1 / 3, 1 / 3, 1.0])  # frame index, −1 → 1
    assert planes[1, 1, 2, :, 0].tolist() == pytest.approx([-1.0, -0.5, 0.0, 0.5, 1.0])  # row
    assert planes[0, 2, 3, 4].tolist() == pytest.approx(np.linspace(-1, 1, 6).tolist())  # column

    tiny = dict(num_layers=1, num_attention_heads=2, attention_head_dim=8, ffn_dim=16, freq_dim=16)
    model = DemoVideoModel.create(["a", "square"], tiny_geometry, seed=0, transformer=tiny, text_dim=8,
                                  prediction="sample", coordinates=True)
    assert model.config.transformer["in_channels"] == 6 and model.config.transformer["out_channels"] == 3
    noisy = torch.randn(model.latent_shape(), generator=torch.Generator().manual_seed(0))
    condition = model.encode_prompt("a square")
    with torch.no_grad():
        velocity = model.predict(noisy, torch.tensor([750.0]), condition)
        clean = model.transformer(with_coordinates(noisy), torch.tensor([750.0]), condition, return_dict=False)[0]
    torch.testing.assert_close(velocity, (noisy - clean) / 0.75)  # the planes go in, three channels come out
    again = DemoVideoModel.load(model.save(tmp_path / "m"))
    assert again.config.coordinates and again.identity() == model.identity()
    with torch.no_grad():
        torch.testing.assert_close(again.predict(noisy, torch.tensor([750.0]), condition), velocity)
