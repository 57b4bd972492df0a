"""Block-wise Fastfood projection (paper Eqs. 8-9) and the Walsh–Hadamard transform under it."""

import numpy as np
import pytest
import torch

from motive_core.attribution import fastfood
from motive_core.attribution.fastfood import (
    FastfoodConfig,
    FastfoodProjector,
    dense_matrix,
    effective_block_size,
    hashed_signs_and_gaussians,
    index_hash,
    l2_normalize,
)
from motive_core.attribution.hadamard import (
    fast_kernel_available,
    walsh_hadamard,
    walsh_hadamard_butterfly,
    walsh_hadamard_kronecker,
    walsh_hadamard_torch,
)
from motive_core.errors import MotiveError

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

SMALL = FastfoodConfig(dim=64, seed=3, block_size=1024)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def sylvester(n: int) -> torch.Tensor:
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def random_split(total: int, rng: np.random.Generator, largest: int) -> list[int]:
    cuts = [0]
    while cuts[-1] < total:
        cuts.append(min(total, cuts[-1] + int(rng.integers(1, largest))))
    return cuts


# --- Walsh–Hadamard ---------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 16, 1024])
def test_hadamard_matches_sylvester_matrix(n):
    x = torch.randn(2, 3, n, dtype=torch.float64)
    torch.testing.assert_close(walsh_hadamard(x), x @ sylvester(n).T)


def test_hadamard_half_precision_computes_in_fp32():
    x = torch.randn(4, 256).to(torch.bfloat16)
    out = walsh_hadamard(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, x.float() @ sylvester(256).float().T, rtol=1e-5, atol=1e-4)


def test_hadamard_leaves_input_untouched():
    x = torch.randn(3, 64)
    before = x.clone()
    walsh_hadamard_torch(x)
    assert torch.equal(x, before)


@pytest.mark.parametrize("n", [3, 24, 65536])
def test_hadamard_rejects_bad_lengths(n):
    with pytest.raises(MotiveError, match="power of two"):
        walsh_hadamard(torch.zeros(1, n))


@pytest.mark.parametrize("n", [1, 2, 8, 64, 2048, 32768])
def test_kronecker_hadamard_equals_the_butterfly_and_its_leading_rows(n):
    x = torch.randn(3, n, dtype=torch.float64)
    full = walsh_hadamard_butterfly(x)
    torch.testing.assert_close(walsh_hadamard_kronecker(x), full)
    for rows in {1, min(n, 3), min(n, 33), min(n, 512), min(n, 1025), n}:
        torch.testing.assert_close(walsh_hadamard_kronecker(x, rows=rows), full[:, :rows])
        torch.testing.assert_close(walsh_hadamard(x.float(), rows=rows), full[:, :rows].float(), rtol=1e-5,
                                   atol=1e-5 * full.abs().max().item())


def test_hadamard_rows_out_of_range():
    with pytest.raises(ValueError, match="rows"):
        walsh_hadamard(torch.zeros(2, 64), rows=65)
    with pytest.raises(ValueError, match="rows"):
        walsh_hadamard(torch.zeros(2, 64), rows=0)


# --- the projection ---------------------------------------------------------------------------------

def test_matches_dense_matrix():
    """D not a power of two, five blocks (last one padded), D′ = 64."""
    dim = 5000
    matrix = dense_matrix(SMALL, dim)
    assert matrix.shape == (64, dim)
    projector = FastfoodProjector(SMALL, dim)
    for x in torch.randn(4, dim):
        expected = matrix.double() @ x.double()
        torch.testing.assert_close(projector.project(x).double(), expected, rtol=1e-4,
                                   atol=1e-5 * expected.abs().max().item())


def test_dense_matrix_refuses_large_sizes():
    with pytest.raises(MotiveError, match="for tests"):
        dense_matrix(SMALL, 2 ** 16 + 1)
    with pytest.raises(MotiveError, match="block size"):
        dense_matrix(FastfoodConfig(dim=8, block_size=8192), 8000)


def test_seed_determines_output():
    x = torch.randn(3000)
    first = FastfoodProjector(SMALL, 3000).project(x)
    again = FastfoodProjector(SMALL, 3000).project(x)
    other = FastfoodProjector(FastfoodConfig(dim=64, seed=4, block_size=1024), 3000).project(x)
    assert torch.equal(first, again)
    assert (first - other).abs().max() > 0.1 * first.abs().max()


def test_norms_preserved():
    """JL at D′ = 512: ‖Px‖/‖x‖ has std ≈ 1/√(2·512) ≈ 0.03, so [0.8, 1.2] is a > 6σ band."""
    gen = torch.Generator().manual_seed(0)
    dim = 5000
    projector = FastfoodProjector(FastfoodConfig(dim=512, seed=7, block_size=2048), dim)
    gaussian = torch.randn(150, dim, generator=gen) * torch.rand(150, 1, generator=gen) * 10
    sparse = torch.randn(50, dim, generator=gen) * (torch.rand(50, dim, generator=gen) < 0.02)
    ratios = torch.stack([projector.project(x).norm() / x.norm() for x in torch.cat([gaussian, sparse])])
    assert abs(ratios.mean().item() - 1.0) < 0.03
    assert ratios.min() > 0.8 and ratios.max() < 1.2


def test_cosines_preserved():
    """Pairs with true cosines spread over [−0.9, 0.9]; the estimate's std is ≤ 1/√512 ≈ 0.044."""
    gen = torch.Generator().manual_seed(1)
    dim = 5000
    projector = FastfoodProjector(FastfoodConfig(dim=512, seed=11, block_size=2048), dim)
    targets = torch.linspace(-0.9, 0.9, 200)
    errors = []
    for target in targets:
        u = l2_normalize(torch.randn(dim, generator=gen))
        v = torch.randn(dim, generator=gen)
        v = l2_normalize(v - (v @ u) * u)
        w = target * u + torch.sqrt(1 - target ** 2) * v
        estimate = l2_normalize(projector.project(u)) @ l2_normalize(projector.project(w))
        errors.append((estimate - target).abs().item())
    assert np.mean(errors) < 0.05
    assert max(errors) < 0.15


def test_streaming_equals_one_shot():
    """Random chunk splits, 2-D chunks, and a buffer of two blocks so it fills and flushes mid-stream."""
    dim = 9000
    x = torch.randn(dim)
    projector = FastfoodProjector(SMALL, dim, batch_elements=2048)
    expected = projector.project(x)
    rng = np.random.default_rng(0)
    for largest in (7, 700, 5000):
        stream = projector.stream()
        cuts = random_split(dim, rng, largest)
        for a, b in zip(cuts[:-1], cuts[1:]):
            piece = x[a:b]
            stream.update(piece.view(-1, 1) if (b - a) % 2 else piece)
        torch.testing.assert_close(stream.finish(), expected, rtol=1e-5, atol=1e-5)


def test_bf16_chunks_are_cast_to_fp32():
    x = torch.randn(3000).to(torch.bfloat16)
    projector = FastfoodProjector(SMALL, 3000)
    stream = projector.stream()
    stream.update(x[:1234])
    stream.update(x[1234:])
    torch.testing.assert_close(stream.finish(), projector.project(x.float()), rtol=1e-5, atol=1e-5)


def test_stream_refuses_wrong_lengths():
    projector = FastfoodProjector(SMALL, 3000)
    short = projector.stream()
    short.update(torch.zeros(2999))
    with pytest.raises(MotiveError, match="2999 entries"):
        short.finish()
    with pytest.raises(MotiveError, match="3001"):
        projector.stream().update(torch.zeros(3001))
    done = projector.stream()
    done.update(torch.zeros(3000))
    done.finish()
    with pytest.raises(MotiveError, match="finished"):
        done.update(torch.zeros(1))


def test_config_validation_and_block_capping():
    with pytest.raises(MotiveError, match="power of two"):
        FastfoodConfig(block_size=3000)
    with pytest.raises(MotiveError, match="power of two"):
        FastfoodConfig(block_size=65536)
    with pytest.raises(MotiveError, match="projection dimension"):
        FastfoodConfig(dim=2048, block_size=1024)
    with pytest.raises(MotiveError, match="seed"):
        FastfoodConfig(seed=-1)
    with pytest.raises(MotiveError, match="empty"):
        FastfoodProjector(FastfoodConfig(), 0)
    assert FastfoodConfig(dim=16, seed=2, block_size=64).to_dict() == {"dim": 16, "seed": 2, "block_size": 64}
    assert effective_block_size(FastfoodConfig(), 3000) == 4096
    assert effective_block_size(FastfoodConfig(), 100) == 512
    assert effective_block_size(FastfoodConfig(), 10 ** 9) == 32768


def test_l2_normalize():
    v = torch.tensor([3.0, 4.0])
    torch.testing.assert_close(l2_normalize(v), torch.tensor([0.6, 0.8]))
    assert torch.equal(l2_normalize(torch.zeros(3)), torch.zeros(3))


# --- the hashed randomness --------------------------------------------------------------------------

def test_hash_is_independent_of_chunking():
    indices = torch.arange(50000)
    whole = index_hash(indices, seed=5)
    pieces = torch.cat([index_hash(indices[a:b], seed=5) for a, b in [(0, 7), (7, 30001), (30001, 50000)]])
    assert torch.equal(whole, pieces)
    assert whole.min() >= 0 and whole.max() < 2 ** 32


def test_block_randoms_match_elementwise_reference():
    projector = FastfoodProjector(SMALL, 5000)
    signs, gauss, _ = projector.block_randoms(0, 5, torch.device("cpu"))
    ref_signs, ref_gauss = hashed_signs_and_gaussians(torch.arange(5 * 1024), seed=3)
    assert torch.equal(signs.reshape(-1), ref_signs)
    torch.testing.assert_close(gauss.reshape(-1), ref_gauss, rtol=1e-6, atol=1e-6)
    later_signs, later_gauss, _ = projector.block_randoms(2, 3, torch.device("cpu"))
    assert torch.equal(later_signs, signs[2:])
    torch.testing.assert_close(later_gauss, gauss[2:], rtol=1e-6, atol=1e-6)


def test_randoms_have_the_right_distribution():
    signs, gauss = hashed_signs_and_gaussians(torch.arange(200000), seed=0)
    assert set(signs.unique().tolist()) == {-1.0, 1.0}
    assert abs(signs.mean().item()) < 0.01
    assert abs(gauss.mean().item()) < 0.01 and abs(gauss.var().item() - 1) < 0.02
    assert abs(np.corrcoef(gauss[:-1].numpy(), gauss[1:].numpy())[0, 1]) < 0.01


def test_indices_beyond_2_to_the_32():
    """A 5B-entry gradient: the high half of the index changes the randoms; no O(D) state is built."""
    low = torch.arange(4096)
    high = low + 2 ** 32
    assert not torch.equal(index_hash(low, 0), index_hash(high, 0))
    projector = FastfoodProjector(SMALL, 5_000_000_000)
    far = 2 ** 32 // 1024 + 2  # block whose first index is 2^32 + 2048
    signs, gauss, scaling = projector.block_randoms(far, 2, torch.device("cpu"))
    ref_signs, ref_gauss = hashed_signs_and_gaussians(torch.arange(2048) + 2 ** 32 + 2048, seed=3)
    assert torch.equal(signs.reshape(-1), ref_signs)
    torch.testing.assert_close(gauss.reshape(-1), ref_gauss, rtol=1e-6, atol=1e-6)
    assert not torch.equal(signs, projector.block_randoms(2, 2, torch.device("cpu"))[0])
    assert torch.isfinite(scaling).all()
    assert torch.isfinite(projector.project_blocks(torch.randn(2, 1024), far)).all()


# --- GPU ---------------------------------------------------------------------------------------------

@pytest.mark.gpu
@cuda
@pytest.mark.skipif(not fast_kernel_available(), reason="fast_hadamard_transform is not installed")
def test_fast_kernel_matches_torch_butterfly():
    x = torch.randn(64, 32768, device="cuda")
    torch.testing.assert_close(walsh_hadamard(x), walsh_hadamard_torch(x), rtol=1e-4, atol=1e-2)


@pytest.mark.gpu
@cuda
def test_cpu_and_cuda_agree():
    dim = 200_000
    x = torch.randn(dim)
    projector = FastfoodProjector(FastfoodConfig(dim=512, seed=9, block_size=32768), dim)
    on_cpu = projector.project(x)
    on_gpu = projector.project(x.cuda()).cpu()
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-4, atol=1e-4 * on_cpu.abs().max().item())
    signs, gauss, scaling = projector.block_randoms(2 ** 17 + 1, 3, torch.device("cuda"))
    ref_signs, ref_gauss, ref_scaling = projector.block_randoms(2 ** 17 + 1, 3, torch.device("cpu"))
    assert torch.equal(signs.cpu(), ref_signs)
    torch.testing.assert_close(gauss.cpu(), ref_gauss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(scaling.cpu(), ref_scaling, rtol=1e-5, atol=1e-5)


# --- the projection before the int32 hash and the Kronecker Hadamard (the stored indexes' reference) ---

_REF_MASK = 0xFFFFFFFF


def reference_mix(x, key):
    """The int64 finaliser, as written before the int32 path (x: int or int64 tensor < 2^32)."""
    x = x ^ key
    x ^= x >> 16
    x = (x * 0x7FEB352D) & _REF_MASK
    x ^= key
    x ^= x >> 15
    x = (x * 0x2C1B3C6D) & _REF_MASK
    return x ^ (x >> 16)


def reference_key(seed, stream):
    return reference_mix(reference_mix(seed >> 32, fastfood._STREAMS[stream]), seed & _REF_MASK)


def reference_normal(bits_a, bits_b):
    unit = lambda bits: (2 * bits + 1).to(torch.float32) * 2.0 ** -24  # noqa: E731
    return torch.sqrt(-2.0 * torch.log(unit(bits_a & (2 ** 23 - 1)))) * torch.cos(2.0 * np.pi * unit(bits_b >> 9))


def reference_projection(x: torch.Tensor, config: FastfoodConfig) -> torch.Tensor:
    """P·x computed entry by entry in int64 with the butterfly, as the projection was first written."""
    seed, dim = config.seed, config.dim
    b = effective_block_size(config, x.numel())
    blocks = -(-x.numel() // b)
    index = torch.arange(blocks * b, dtype=torch.int64)
    base = reference_mix(index & _REF_MASK, reference_mix(index >> 32, reference_key(seed, "index")))
    signs = (1.0 - 2.0 * (base >> 31).to(torch.float32)).view(blocks, b)
    gauss = reference_normal(base, reference_mix(base, reference_key(seed, "gauss"))).view(blocks, b)
    head = base.view(blocks, b)[:, :dim]
    chi = reference_normal(reference_mix(head, reference_key(seed, "chi_a")), reference_mix(head, reference_key(seed, "chi_b")))
    scaling = (np.sqrt(b - 0.5) + np.sqrt(0.5) * chi) / gauss.norm(dim=1, keepdim=True)
    positions = torch.arange(b, dtype=torch.int64)
    position_base = reference_mix(positions, reference_mix(positions >> 32, reference_key(seed, "index")))
    perm = torch.argsort(reference_mix(position_base, reference_key(seed, "perm")) * b + positions)
    padded = torch.nn.functional.pad(x.float(), (0, blocks * b - x.numel())).view(blocks, b)
    mixed = walsh_hadamard_butterfly(walsh_hadamard_butterfly(padded * signs)[:, perm] * gauss)
    return (mixed[:, :dim] * scaling).sum(dim=0) / np.sqrt(b * dim)


@pytest.mark.parametrize("config,total", [(FastfoodConfig(dim=64, seed=3, block_size=1024), 5000),
                                          (FastfoodConfig(dim=16, seed=1, block_size=64), 1000),
                                          (FastfoodConfig(dim=512, seed=2 ** 40 + 3, block_size=32768), 300_017),
                                          (FastfoodConfig(dim=512, seed=0, block_size=32768), 1_000_000),
                                          (FastfoodConfig(dim=512, seed=9), 200)])
def test_projection_equals_the_reference_implementation(config, total):
    """Same vectors as before the speed-up, to float32 rounding, so indexes built earlier stay comparable."""
    x = torch.randn(total, generator=torch.Generator().manual_seed(total))
    expected = reference_projection(x, config)
    got = FastfoodProjector(config, total).project(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=2e-6 * expected.abs().max().item())


def test_int32_hash_path_is_bit_identical_to_int64():
    """Blocks below and above index 2^31 and 2^32, where int32 wrap-around and the high half matter."""
    config = FastfoodConfig(dim=64, seed=2 ** 33 + 5, block_size=1024)
    projector = FastfoodProjector(config, 5_000_000_000)
    for first in (0, 2 ** 31 // 1024 - 1, 2 ** 32 // 1024 - 1, 3 * 2 ** 31 // 1024):
        signs, gauss, scaling = projector.block_randoms(first, 2, torch.device("cpu"))
        index = torch.arange(first * 1024, (first + 2) * 1024, dtype=torch.int64)
        key = reference_mix(index >> 32, reference_key(config.seed, "index"))
        base = reference_mix(index & _REF_MASK, key)
        assert torch.equal(signs.reshape(-1), 1.0 - 2.0 * (base >> 31).to(torch.float32))
        assert torch.equal(gauss.reshape(-1), reference_normal(base, reference_mix(base, reference_key(config.seed, "gauss"))))
        assert torch.isfinite(scaling).all()


@pytest.mark.parametrize("total", [3000, 70_000])
def test_batch_projection_equals_the_loop(total):
    projector = FastfoodProjector(SMALL, total)
    vectors = torch.randn(5, total)
    loop = torch.stack([projector.project(v) for v in vectors])
    torch.testing.assert_close(projector.project_batch(vectors), loop, rtol=1e-5, atol=1e-5 * loop.abs().max().item())
    torch.testing.assert_close(projector.project_batch(vectors.to(torch.bfloat16)),
                               torch.stack([projector.project(v.to(torch.bfloat16)) for v in vectors]),
                               rtol=1e-5, atol=1e-5 * loop.abs().max().item())
    with pytest.raises(ValueError, match="expects"):
        projector.project_batch(vectors[:, :-1])


def test_projection_runs_serially_and_restores_the_thread_count():
    torch.set_num_threads(2)
    projector = FastfoodProjector(SMALL, 5000)
    x = torch.randn(5000)
    two = projector.project(x)
    assert torch.get_num_threads() == 2
    torch.set_num_threads(1)
    assert torch.equal(projector.project(x), two)


def test_two_threads_project_blocks_side_by_side_with_the_same_result():
    """Many block batches (a small buffer) run on two threads, summed in block order: the same vector up to
    the matrix library rounding a product differently on another thread (seen with MKL, ~1e-7)."""
    projector = FastfoodProjector(SMALL, 40_000, batch_elements=2048)
    vectors = torch.randn(3, 40_000)
    one = projector.project(vectors[0]), projector.project_batch(vectors)
    torch.set_num_threads(2)
    two = projector.project(vectors[0]), projector.project_batch(vectors)
    assert torch.get_num_threads() == 2
    torch.testing.assert_close(two[0], one[0], rtol=1e-6, atol=1e-6 * one[0].abs().max().item())
    torch.testing.assert_close(two[1], one[1], rtol=1e-6, atol=1e-6 * one[1].abs().max().item())


def test_the_hadamard_and_the_batch_size_are_arguments_that_leave_the_vector_unchanged(one_torch_thread):
    """A projector built with the butterfly Hadamard and a two-block buffer gives the default's vectors."""
    x = torch.randn(2, 9000)

    def butterfly(values, rows=None):
        out = walsh_hadamard_butterfly(values)
        return out if rows is None else out[..., :rows]

    default = FastfoodProjector(SMALL, 9000)
    injected = FastfoodProjector(SMALL, 9000, hadamard=butterfly, batch_elements=2048)
    assert injected.batch_budget(torch.device("cpu")) == 2048 and default.batch_budget(torch.device("cpu")) > 2048
    torch.testing.assert_close(injected.project_batch(x), default.project_batch(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="batch_elements"):
        FastfoodProjector(SMALL, 9000, batch_elements=0)
