"""The block count-sketch: a one-sparse JL map whose buckets and signs come from a column table and a row hash."""

import numpy as np
import pytest
import torch

from motive_core.attribution.blocksketch import BlockSketchProjector
from motive_core.attribution.countsketch import CountSketchProjector
from motive_core.attribution.fastfood import FastfoodConfig, index_hash
from motive_core.attribution.fastfood import _key, _mix32  # the reference below rebuilds the hash by hand

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def stream_hash(indices: torch.Tensor, seed: int, stream: str) -> torch.Tensor:
    """The keyed index hash of one stream, entry by entry in int64 (the reference for the table path)."""
    return _mix32(indices & 0xFFFFFFFF, _mix32(indices >> 32, _key(seed, stream)))


def dense_block_sketch(config: FastfoodConfig, total: int) -> torch.Tensor:
    """P by its definition: entry i = r·b + c goes to row (h_col(c) + h_row(r)) mod D′ with sign σ_col(c)·σ_row(r)."""
    index = torch.arange(total)
    row, column = index // config.block_size, index % config.block_size
    col_hash, row_hash = stream_hash(column, config.seed, "sketch_column"), stream_hash(row, config.seed, "sketch_row")
    bucket = ((col_hash & 0x7FFFFFFF) % config.dim + (row_hash & 0x7FFFFFFF) % config.dim) % config.dim
    sign = (1.0 - 2.0 * (col_hash >> 31).double()) * (1.0 - 2.0 * (row_hash >> 31).double())
    matrix = torch.zeros(config.dim, total, dtype=torch.float64)
    matrix[bucket, index] = sign
    return matrix


@pytest.mark.parametrize("dim,block", [(64, 1024), (100, 512)])
def test_matches_its_definition(dim, block):
    config = FastfoodConfig(dim=dim, seed=5, block_size=block)
    total = 5 * block + 37  # whole rows and a partial last one
    x = torch.randn(total)
    torch.testing.assert_close(BlockSketchProjector(config, total).project(x).double(),
                               dense_block_sketch(config, total) @ x.double(), rtol=1e-5, atol=1e-4)


def test_its_hashes_are_independent_of_the_other_projectors():
    """Same seed, other streams: the column table is not the count-sketch's or Fastfood's index hash."""
    config = FastfoodConfig(dim=64, seed=1, block_size=1024)
    table = BlockSketchProjector(config, 4096).tables(torch.device("cpu"))[0]
    plain = (index_hash(torch.arange(1024), 1) & 0x7FFFFFFF) % 64
    assert (table % 64 != plain).float().mean() > 0.9
    x = torch.randn(4096)
    assert not torch.allclose(BlockSketchProjector(config, 4096).project(x), CountSketchProjector(config, 4096).project(x))


def test_norms_and_inner_products_are_kept_in_expectation():
    """E‖Px‖² = ‖x‖²; over many seeds the mean ratio is within a few standard errors of 1, and projected
    inner products of correlated vectors track the exact ones."""
    gen = torch.Generator().manual_seed(0)
    total = 20_000
    x = torch.randn(total, generator=gen)
    y = 0.6 * x + 0.8 * torch.randn(total, generator=gen)
    ratios, cosines = [], []
    for seed in range(40):
        projector = BlockSketchProjector(FastfoodConfig(dim=256, seed=seed, block_size=2048), total)
        px, py = projector.project(x), projector.project(y)
        ratios.append(float(px.norm() ** 2 / x.norm() ** 2))
        cosines.append(float(torch.nn.functional.cosine_similarity(px, py, dim=0)))
    exact = float(torch.nn.functional.cosine_similarity(x, y, dim=0))
    assert abs(np.mean(ratios) - 1.0) < 4 * np.std(ratios) / np.sqrt(len(ratios))
    assert abs(np.mean(cosines) - exact) < 0.02 and np.std(cosines) < 0.1
