"""Motion-weighted loss (Eq. 15-16) and the per-clip gradient → Fastfood vector (Eq. 17) on real models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motive_core.attribution.fastfood import l2_normalize
from motive_core.attribution.gradient import GradientProjector, select_parameters
from motive_core.attribution.loss import motion_weighted_loss, per_location_error, temporal_change
from motive_core.config import AttributionSettings
from motive_core.errors import GradientError, MotiveError
from motive_core.models import load_model


def test_unit_weight_is_the_plain_loss_divided_by_frames():
    prediction, target = torch.randn(1, 4, 3, 5, 5), torch.randn(1, 4, 3, 5, 5)
    plain = (prediction - target).pow(2).mean() / 9
    assert torch.allclose(motion_weighted_loss(prediction, target, None, 9), plain)
    assert torch.allclose(motion_weighted_loss(prediction, target, torch.ones(3, 5, 5), 9), plain)


def test_weight_selects_where_the_error_counts():
    prediction, target = torch.zeros(1, 2, 2, 2, 2), torch.zeros(1, 2, 2, 2, 2)
    prediction[:, :, 1, 0, 0] = 3.0  # error only at one location
    weight = torch.ones(2, 2, 2)
    weight[1, 0, 0] = 0.0
    assert motion_weighted_loss(prediction, target, weight, 4).item() == 0.0
    assert per_location_error(prediction, target)[0, 1, 0, 0].item() == 9.0
    half = torch.full((2, 2, 2), 0.5)
    assert torch.isclose(motion_weighted_loss(prediction, target, half, 4),
                         0.5 * motion_weighted_loss(prediction, target, None, 4))


def test_temporal_difference_variant_ignores_a_constant_error_after_frame_zero():
    prediction, target = torch.ones(1, 2, 3, 2, 2), torch.zeros(1, 2, 3, 2, 2)
    weight = torch.zeros(3, 2, 2)
    weight[1:] = 1.0  # frame 0 masked out: only the frame-to-frame change of the error remains
    assert motion_weighted_loss(prediction, target, weight, 3, variant="temporal_diff").item() == 0.0
    assert motion_weighted_loss(prediction, target, weight, 3).item() > 0.0


@pytest.fixture(scope="module")
def demo_model(tiny_demo_dir):
    return load_model(tiny_demo_dir, device="cpu")


def _inputs(model, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    weight = torch.from_numpy(rng.random(model.geometry.latent_grid()).astype(np.float32))
    return model.encode(frames), model.encode_prompt("a red square bouncing"), weight


def test_vector_is_unit_norm_deterministic_and_equals_projecting_the_full_gradient(demo_model):
    settings = AttributionSettings(proj_dim=64)
    projector = GradientProjector(demo_model, settings)
    latents, condition, weight = _inputs(demo_model)
    vector = projector.gradient_vector(latents, condition, weight)
    assert vector.shape == (64,) and vector.dtype == np.float32
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(vector, projector.gradient_vector(latents, condition, weight))
    # The streamed projection equals projecting the whole flattened gradient at once.
    loss = projector.loss(latents, condition, weight)
    grads = torch.autograd.grad(loss, [p for _, p in projector.parameters])
    full = torch.cat([g.reshape(-1) for g in grads])
    assert full.numel() == projector.num_parameters
    assert torch.equal(projector.flat_gradient(projector.loss(latents, condition, weight)), full)
    expected = l2_normalize(projector.projector.project(full)).numpy()
    assert np.allclose(vector, expected, atol=1e-5)


def test_a_timestep_ensemble_is_the_normalised_mean_of_each_index_s_unit_vector(demo_model):
    inputs = _inputs(demo_model)
    singles = [GradientProjector(demo_model, AttributionSettings(proj_dim=64, t_index=t)).gradient_vector(*inputs)
               for t in (500, 300, 700)]
    ensemble = GradientProjector(demo_model, AttributionSettings(proj_dim=64, t_ensemble="300,700"))
    expected = np.sum(singles, axis=0)
    np.testing.assert_allclose(ensemble.gradient_vector(*inputs), expected / np.linalg.norm(expected), atol=1e-6)
    assert ensemble.settings.timesteps == (500, 300, 700) and set(ensemble.timings) == {"gradient", "projection"}
    for bad, message in (("300,x", "separated by commas"), ("500", "different scheduler indexes"),
                         ("300,300", "different scheduler indexes")):
        with pytest.raises(MotiveError, match=message):
            AttributionSettings(t_ensemble=bad)
    with pytest.raises(MotiveError, match="below the schedule"):
        GradientProjector(demo_model, AttributionSettings(proj_dim=64, t_ensemble="1000"))


def test_the_unnormalised_projection_is_what_the_vector_normalises(demo_model):
    """Studies that combine gradients before normalising (the still reference of bench_gradient_variants)
    start from projected_gradient: normalised and averaged over the ensemble, it is the index's vector."""
    from benchmarks.bench_gradient_variants import still_reference

    inputs = _inputs(demo_model)
    projector = GradientProjector(demo_model, AttributionSettings(proj_dim=64, t_ensemble="300,700"))
    raw = torch.stack([projector.projected_gradient(*inputs, t) for t in projector.settings.timesteps])
    vector = projector.gradient_vector(*inputs)
    np.testing.assert_allclose(l2_normalize(sum(l2_normalize(row) for row in raw)).numpy(), vector, atol=1e-6)
    pairs = np.stack([raw.numpy(), raw.numpy() * 0.5])[None].astype(np.float64)  # a "still" half the clip's
    np.testing.assert_allclose(still_reference(pairs, 0.0)[0], vector, atol=1e-6)
    np.testing.assert_allclose(still_reference(pairs, 1.0)[0], vector, atol=1e-6)  # g − g/2 points the same way


def test_query_expansion_adds_the_nearest_training_clip_and_never_the_query_itself():
    """bench_gradient_variants' query expansion: a query is compared after its nearest training row is added
    to it; a row asked against its own index (the leave-one-out criterion) is expanded with its nearest
    *other* row, not with itself."""
    from benchmarks.bench_gradient_variants import cosine, expanded, unit

    train = np.random.default_rng(2).normal(size=(6, 8))
    query = train[3] + 0.3 * np.random.default_rng(3).normal(size=8)  # closest to row 3
    assert np.argmax(cosine(train, query[None])) == 3
    np.testing.assert_allclose(expanded(train, query[None]), cosine(train, (unit(query) + unit(train[3]))[None]))
    own = cosine(train, train)
    np.fill_diagonal(own, -np.inf)
    nearest_other = np.argmax(own, axis=1)
    np.testing.assert_allclose(expanded(train, train), cosine(train, unit(train) + unit(train)[nearest_other]))


def test_time_resolved_stretches_add_up_to_the_whole_clips_gradient(demo_model):
    """The loss is a sum over latent frames, so the stretches' projected gradients sum to the clip's: the
    time-resolved vector (bench_gradient_variants) splits the gradient without losing or doubling any of it."""
    from benchmarks.bench_gradient_variants import binned_gradients, time_resolved
    from motive_core.featurize import Featurizer, PreparedClip

    settings = AttributionSettings(proj_dim=64, conditioning="null", loss="temporal_diff")
    featurizer = Featurizer(demo_model, settings)
    rng = np.random.default_rng(1)
    g = demo_model.geometry
    frames = rng.integers(0, 255, (g.num_frames, g.height, g.width, 3), dtype=np.uint8)
    mask = rng.random(g.latent_grid()).astype(np.float32)
    prepared = PreparedClip(frames, None, None, mask, None, {}, {})
    rows = binned_gradients(featurizer, prepared, bins=3)
    whole = featurizer.gradients.projected_gradient(demo_model.encode(frames), demo_model.encode_prompt(""),
                                                    torch.from_numpy(mask), settings.t_index).numpy()
    assert rows.shape == (3, 64)
    np.testing.assert_allclose(rows.sum(axis=0), whole, rtol=1e-4, atol=1e-6 * np.abs(whole).max())
    raw, each = time_resolved(rows[None], False)[0], time_resolved(rows[None], True)[0]
    assert np.isclose(np.linalg.norm(raw), 1.0) and np.isclose(np.linalg.norm(each), 1.0)
    np.testing.assert_allclose(each[:64], rows[0] / np.linalg.norm(rows[0]) / np.sqrt(3), rtol=1e-6)
    mask[np.array_split(np.arange(len(mask)), 3)[0]] = 0.0  # nothing moves in the first stretch: zeros there,
    still_start = binned_gradients(featurizer, prepared, bins=3)
    assert not still_start[0].any() and np.isfinite(time_resolved(still_start[None], True)).all()
    np.testing.assert_allclose(still_start[1:], rows[1:], rtol=1e-5)  # the other stretches as before


def test_scale_views_zoom_about_the_centre_and_keep_the_frame_size():
    """bench_gradient_variants' scale views: zooming in enlarges the frame's centre, zooming out shrinks the frame
    and fills the border with its reflection; the frame size never changes."""
    from benchmarks.bench_gradient_variants import zoomed

    frames = np.zeros((2, 32, 32, 3), np.uint8)
    frames[:, 12:20, 12:20] = 255  # an 8-pixel square at the centre
    closer, farther = zoomed(frames, 2.0), zoomed(frames, 0.5)
    assert closer.shape == farther.shape == frames.shape and closer.dtype == np.uint8
    lit = lambda view: (view[0, ..., 0] > 127).sum()  # noqa: E731
    assert lit(closer) == 16 * 16 and closer[0, 9:23, 9:23].min() == 255  # twice as wide, still centred
    assert lit(farther[:, 8:24, 8:24]) == 4 * 4 and farther[0, 14:18, 14:18].min() == 255  # half as wide, centred
    np.testing.assert_array_equal(farther[0, 7], farther[0, 8])  # the border reflects the shrunk frame's edge
    np.testing.assert_array_equal(zoomed(frames, 1.33)[1], zoomed(frames, 1.33)[0])  # every frame alike


def test_parameter_groups_split_the_gradient_and_each_is_projected_alone(demo_model):
    """bench_gradient_variants' parameter groups: the layers hold every denoiser parameter exactly once, and
    each group's row is its own parameters' gradient through its own projection, at every timestep."""
    from benchmarks.bench_gradient_variants import (LAYERS, PARAMETER_GROUPS, group_gradients, group_projectors,
                                                    group_vectors)
    from motive_core.featurize import Featurizer, PreparedClip

    settings = AttributionSettings(proj_dim=64, conditioning="null", loss="temporal_diff", t_ensemble="300")
    featurizer = Featurizer(demo_model, settings)
    gradients = featurizer.gradients
    groups = group_projectors(gradients)
    layers = sorted(i for layer in LAYERS for i in groups[layer][0])
    assert layers == list(range(len(gradients.parameters)))  # every parameter in one layer, none twice
    assert all(groups[kind][0] for kind in PARAMETER_GROUPS)
    g = demo_model.geometry
    frames = np.random.default_rng(4).integers(0, 255, (g.num_frames, g.height, g.width, 3), dtype=np.uint8)
    mask = np.random.default_rng(5).random(g.latent_grid()).astype(np.float32)
    rows = group_gradients(featurizer, PreparedClip(frames, None, None, mask, None, {}, {}))
    assert rows.shape == (2, len(PARAMETER_GROUPS), 64)
    loss = gradients.loss(demo_model.encode(frames), demo_model.encode_prompt(""), torch.from_numpy(mask), 300)
    grads = gradients.parameter_gradients(loss)
    members, projector = groups["cross-attention"]
    stream = projector.stream()
    for i in members:
        stream.update(grads[i])
    np.testing.assert_allclose(rows[1, list(PARAMETER_GROUPS).index("cross-attention")], stream.finish().numpy(),
                               rtol=1e-5, atol=1e-7)
    vectors = group_vectors(rows[None])
    assert len(vectors) == len(PARAMETER_GROUPS) + 1
    assert all(np.isclose(np.linalg.norm(v), 1.0) for v in vectors.values())


def test_temporal_change_compares_frames_lag_apart_and_keeps_the_first_ones():
    error = torch.arange(5.0).reshape(1, 1, 5, 1, 1) ** 2  # 0, 1, 4, 9, 16
    assert temporal_change(error).flatten().tolist() == [0.0, 1.0, 3.0, 5.0, 7.0]
    assert temporal_change(error, lag=2).flatten().tolist() == [0.0, 1.0, 4.0, 8.0, 12.0]


def test_loss_shapes_start_from_the_engine_s_loss_and_each_changes_it_as_named(demo_model):
    """bench_gradient_variants' loss shapes: the unchanged shape is the index's gradient to the last bit, so
    each shape's figure differs from the baseline's by that shape alone."""
    from benchmarks.bench_gradient_variants import LOSS_SHAPES, LossShape, shaped_gradient
    from motive_core.featurize import Featurizer, PreparedClip

    settings = AttributionSettings(proj_dim=64, conditioning="null", loss="temporal_diff")
    featurizer = Featurizer(demo_model, settings)
    g = demo_model.geometry
    frames = np.random.default_rng(2).integers(0, 255, (g.num_frames, g.height, g.width, 3), dtype=np.uint8)
    mask = np.random.default_rng(3).random(g.latent_grid()).astype(np.float32)
    prepared = PreparedClip(frames, None, None, mask, None, {}, {})
    engine = featurizer.gradients.projected_gradient(demo_model.encode(frames), demo_model.encode_prompt(""),
                                                     torch.from_numpy(mask), settings.t_index).numpy()
    assert np.array_equal(shaped_gradient(LossShape("as shipped", "shipped"))(featurizer, prepared), engine)
    shaped = [shaped_gradient(shape)(featurizer, prepared) for shape in LOSS_SHAPES]
    assert all(np.isfinite(v).all() and not np.allclose(v, engine, rtol=1e-3) for v in shaped)

    error, weight = torch.zeros(1, 3, 4, 4, 4), torch.ones(4, 4, 4)
    error[:, :, 2, 0, 0] = 1.0  # one location's error appears at frame 2 and stays
    error[:, :, 3, 0, 0] = 1.0
    plain, pooled = LossShape("", "", pool=1), LossShape("", "", pool=2)
    assert plain.loss(error, weight, 1).item() == pytest.approx(1 / 64)  # one changed location of 4 × 16
    assert pooled.loss(error, weight, 1).item() == pytest.approx((1 / 4) ** 2 / 16)  # spread over a 2 × 2 cell
    assert LossShape("", "", first_frame=False).loss(error, weight, 1).item() == pytest.approx(1 / 48)
    assert LossShape("", "", lag=2).loss(error, weight, 1).item() == pytest.approx(2 / 64)
    faint = weight.clone()
    faint[2, 0, 0] = 0.2  # under a quarter of the peak: the binary mask drops it, the plain one weighs it
    assert plain.loss(error, faint, 1).item() == pytest.approx(0.2 / 64)
    assert LossShape("", "", binary_mask=True).loss(error, faint, 1).item() == 0.0


def test_a_projector_passed_in_replaces_the_named_one_and_must_fit(demo_model):
    from motive_core.attribution.fastfood import FastfoodConfig, FastfoodProjector
    from motive_core.attribution.hadamard import walsh_hadamard_butterfly

    settings = AttributionSettings(proj_dim=64)
    named = GradientProjector(demo_model, settings)
    injected = FastfoodProjector(FastfoodConfig(64, 0, settings.block_size), named.num_parameters,
                                 hadamard=lambda x, rows=None: walsh_hadamard_butterfly(x)[..., :rows],
                                 batch_elements=4096)
    inputs = _inputs(demo_model)
    assert np.allclose(GradientProjector(demo_model, settings, injected).gradient_vector(*inputs),
                       named.gradient_vector(*inputs), atol=1e-5)
    with pytest.raises(ValueError, match="this gradient has"):
        GradientProjector(demo_model, settings, FastfoodProjector(FastfoodConfig(64, 0), 1000))


def test_mask_noise_and_clip_change_the_vector(demo_model):
    latents, condition, weight = _inputs(demo_model)
    base = GradientProjector(demo_model, AttributionSettings(proj_dim=64)).gradient_vector(latents, condition, weight)
    no_mask = GradientProjector(demo_model, AttributionSettings(proj_dim=64)).gradient_vector(latents, condition, None)
    other_noise = GradientProjector(demo_model, AttributionSettings(proj_dim=64, noise_seed=1)).gradient_vector(
        latents, condition, weight)
    other_clip = GradientProjector(demo_model, AttributionSettings(proj_dim=64)).gradient_vector(
        *_inputs(demo_model, seed=1)[:2], weight)
    for other in (no_mask, other_noise, other_clip):
        assert float(base @ other) < 0.999


def test_parameter_filter(demo_model):
    everything = select_parameters(demo_model.denoiser(750.0))
    attention = select_parameters(demo_model.denoiser(750.0), r"attn1\.(to_q|to_k)")
    assert 0 < len(attention) < len(everything)
    assert all("attn1" in name for name, _ in attention)
    with pytest.raises(MotiveError, match="no trainable denoiser parameter matches"):
        select_parameters(demo_model.denoiser(750.0), "no-such-layer")


def test_non_finite_gradient_is_refused(tiny_demo_dir):
    model = load_model(tiny_demo_dir, device="cpu")
    with torch.no_grad():
        next(model.transformer.parameters()).fill_(float("nan"))
    projector = GradientProjector(model, AttributionSettings(proj_dim=64))
    with pytest.raises(GradientError, match="not finite|NaN"):
        projector.gradient_vector(*_inputs(model))


def test_gradient_on_tiny_wan_transformer_and_vae(tiny_wan_dir):
    """The full path on real diffusers Wan parts: VAE latents, 4n+1 frames, latent-grid weights."""
    model = load_model(tiny_wan_dir, device="cpu")
    frames = np.random.default_rng(0).integers(0, 255, (9, 32, 32, 3), dtype=np.uint8)
    projector = GradientProjector(model, AttributionSettings(proj_dim=128))
    weight = torch.rand(model.geometry.latent_grid())
    vector = projector.gradient_vector(model.encode(frames), model.encode_prompt("a ball"), weight)
    assert projector.num_parameters == sum(p.numel() for p in model.transformer.parameters())
    assert vector.shape == (128,) and np.isfinite(vector).all()
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_a_static_clip_is_refused_with_the_mask_and_attributed_without(tiny_demo_dir):
    from motive_core.featurize import Featurizer
    from motive_core.video import Video

    model = load_model(tiny_demo_dir, device="cpu")
    frames = np.repeat(np.random.default_rng(0).integers(0, 255, (1, 32, 32, 3), dtype=np.uint8), 8, axis=0)
    masked = Featurizer(model, AttributionSettings(proj_dim=64))
    prepared = masked.prepare(Video(frames, 8.0, "static"))
    assert prepared.stats.is_near_static and not prepared.latent_mask.any()
    with pytest.raises(MotiveError, match="no motion at all"):
        masked.vector(prepared, "a red square")
    vector = Featurizer(model, AttributionSettings(proj_dim=64, use_mask=False)).vector(prepared, "a red square")
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
