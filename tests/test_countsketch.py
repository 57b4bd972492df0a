"""The one-sparse JL projection (count-sketch) offered beside Fastfood."""

import numpy as np
import pytest
import torch

from motive_core.attribution.blocksketch import BlockSketchProjector
from motive_core.attribution.countsketch import CountSketchProjector
from motive_core.attribution.fastfood import FastfoodConfig, index_hash, index_hash_range
from motive_core.errors import MotiveError


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def dense_count_sketch(config: FastfoodConfig, total: int) -> torch.Tensor:
    """P built entry by entry from the int64 index hash: column i has σ(i) = ±1 (top bit) in row h(i)."""
    base = index_hash(torch.arange(total), config.seed)
    rows = (base & 0x7FFFFFFF) % config.dim
    signs = 1.0 - 2.0 * (base >> 31).double()
    matrix = torch.zeros(config.dim, total, dtype=torch.float64)
    matrix[rows, torch.arange(total)] = signs
    return matrix


@pytest.mark.parametrize("dim", [64, 100])
def test_matches_the_dense_matrix(dim):
    config = FastfoodConfig(dim=dim, seed=5, block_size=1024)
    total = 300_000  # more than one piece of 2^17 entries
    x = torch.randn(total)
    expected = dense_count_sketch(config, total) @ x.double()
    got = CountSketchProjector(config, total).project(x)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-4)


def test_hash_range_crosses_the_2_to_the_32_boundary():
    start = 2 ** 32 - 700
    expected = index_hash(torch.arange(start, start + 1500), seed=2)
    assert torch.equal(index_hash_range(start, 1500, seed=2).to(torch.int64) & 0xFFFFFFFF, expected)


@pytest.mark.parametrize("projector_class,cuts", [
    (CountSketchProjector, [7, 150_000]),
    (BlockSketchProjector, [7, 1024, 1028, 150_000]),  # mid-row, a row's end, a few entries, many rows
])
def test_streaming_batch_and_one_shot_agree(projector_class, cuts):
    """Any chunking of the gradient, a batch of gradients and one gradient at a time give the same vector."""
    config = FastfoodConfig(dim=64, seed=1, block_size=1024)
    total = 200_003
    projector = projector_class(config, total)
    vectors = torch.randn(3, total)
    one_shot = torch.stack([projector.project(v) for v in vectors])
    torch.testing.assert_close(projector.project_batch(vectors), one_shot, rtol=1e-5, atol=1e-4)
    stream = projector.stream()
    for start, stop in zip([0, *cuts], [*cuts, total]):
        stream.update(vectors[0, start:stop].view(-1, 1) if stop % 2 else vectors[0, start:stop])
    torch.testing.assert_close(stream.finish(), one_shot[0], rtol=1e-5, atol=1e-4)
    stream = projector.stream()
    stream.update(vectors[0, :100])
    with pytest.raises(MotiveError, match=str(total)):
        stream.finish()  # a gradient of the wrong length is refused


def test_norms_and_cosines_preserved():
    """E‖Px‖² = ‖x‖²; at D′ = 512 the ratio's std is about 1/√256 for dense vectors."""
    gen = torch.Generator().manual_seed(0)
    total = 20_000
    projector = CountSketchProjector(FastfoodConfig(dim=512, seed=3), total)
    vectors = torch.randn(100, total, generator=gen) * torch.rand(100, 1, generator=gen)
    projected = projector.project_batch(vectors)
    ratios = projected.norm(dim=1) / vectors.norm(dim=1)
    assert abs(ratios.pow(2).mean().item() - 1.0) < 0.03 and ratios.min() > 0.8 and ratios.max() < 1.2
    unit = vectors / vectors.norm(dim=1, keepdim=True)
    exact = (unit @ unit.T).numpy()
    unit_p = projected / projected.norm(dim=1, keepdim=True)
    assert np.abs((unit_p @ unit_p.T).numpy() - exact).max() < 0.25


def test_refuses_wrong_lengths():
    projector = CountSketchProjector(FastfoodConfig(dim=16, block_size=64), 1000)
    short = projector.stream()
    short.update(torch.zeros(999))
    with pytest.raises(MotiveError, match="999 entries"):
        short.finish()
    with pytest.raises(MotiveError, match="1001"):
        projector.stream().update(torch.zeros(1001))
    with pytest.raises(MotiveError, match="empty"):
        CountSketchProjector(FastfoodConfig(), 0)
    with pytest.raises(ValueError, match="expects"):
        projector.project_batch(torch.zeros(2, 999))


def test_two_threads_give_the_same_vector_and_keep_the_callers_thread_count():
    projector = CountSketchProjector(FastfoodConfig(dim=16, block_size=64), 500_000)
    x = torch.randn(500_000)  # four pieces
    one = projector.project(x)
    torch.set_num_threads(2)
    assert torch.equal(projector.project(x), one)
    assert torch.get_num_threads() == 2


def test_attribution_settings_select_the_count_sketch_for_real_gradients(tiny_demo_dir):
    """projector="countsketch" in the settings: the clip's real gradient goes through the count-sketch."""
    from motive_core.attribution.gradient import GradientProjector
    from motive_core.config import AttributionSettings
    from motive_core.models import load_model

    model = load_model(tiny_demo_dir, device="cpu")
    rng = np.random.default_rng(0)
    latents = model.encode(rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8))
    condition = model.encode_prompt("a red square bouncing")
    sketch = GradientProjector(model, AttributionSettings(proj_dim=64, projector="countsketch"))
    assert isinstance(sketch.projector, CountSketchProjector)
    vector = sketch.gradient_vector(latents, condition, None)
    fastfood = GradientProjector(model, AttributionSettings(proj_dim=64)).gradient_vector(latents, condition, None)
    assert vector.shape == fastfood.shape == (64,)
    assert abs(np.linalg.norm(vector) - 1.0) < 1e-5
    assert not np.allclose(vector, fastfood, atol=1e-3)  # a different map of the same gradient
    with pytest.raises(MotiveError, match="unknown projector"):
        AttributionSettings(projector="dense")
