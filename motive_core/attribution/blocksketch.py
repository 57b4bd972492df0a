"""Block count-sketch: a one-sparse JL projection whose hashes are tables, fast enough to run near memory speed.

The flat gradient is read as rows of ``b`` entries (``config.block_size``): entry i sits in row r = i div b,
column c = i mod b. It is added, with sign σ_col(c)·σ_row(r), to output row (h_col(c) + h_row(r)) mod D′.
h_col/σ_col are one table of b entries (kept), h_row/σ_row are hashed per row: each is an independent keyed
index hash (streams "sketch_column", "sketch_row"). For two entries in different places the bucket sum
collides with probability 1/D′ and the sign product is a fair coin, as in a count-sketch with pairwise
independent hashes (Charikar et al. 2002), so E‖Px‖² = ‖x‖² and inner products are unbiased. What is
lost against the plain count-sketch is higher-order independence (four entries on the corners of a
rectangle of rows and columns always share their sign product), which the benchmark measures on real
gradients (docs/performance.md).

Why: per row, the work is one scatter-add of b values into 2·D′ sums (the sign folded into which half a value
lands in) — no per-entry hashing and no multiply — then a rotation of D′ sums, so the cost is a few reads
of the gradient (``benchmarks/bench_projection.py``).
"""

from __future__ import annotations

import torch

from motive_core.attribution.countsketch import CountSketchProjector
from motive_core.attribution.fastfood import FastfoodConfig, index_hash_range, serial_cpu_ops


def _buckets_and_signs(base: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bucket in [0, dim) (int64) from the low 31 bits of an int32 hash, and whether the sign is −1 (top bit)."""
    bits = (base & 0x7FFFFFFF).to(torch.int64)
    return (bits & (dim - 1) if dim & (dim - 1) == 0 else bits % dim), base < 0


class BlockSketchProjector(CountSketchProjector):
    """Projects a flat gradient of ``total_dim`` entries to ``config.dim`` (uses dim, seed and block_size)."""

    piece = 1 << 22  # entries per call: whole rows in one scatter, few enough calls that their overhead is small

    def __init__(self, config: FastfoodConfig, total_dim: int, device="cpu"):
        super().__init__(config, total_dim, device)
        self.row_length = config.block_size
        self.num_rows = -(-self.total_dim // self.row_length)
        self._tables: dict[torch.device, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def tables(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The hashes as tables, made once per device (O(b + D/b) entries: 0.6 MiB for Wan2.1-1.3B):
        the columns' (b,) h_col(c) plus D′ where σ_col(c) = −1 (which half of the 2·D′ sums a column lands
        in), and the rows' (rows,) h_row(r) and σ_row(r) as ±1.0."""
        if device not in self._tables:
            dim, seed = self.config.dim, self.config.seed
            buckets, negative = _buckets_and_signs(
                index_hash_range(0, self.row_length, seed, device, stream="sketch_column"), dim)
            shift, row_negative = _buckets_and_signs(
                index_hash_range(0, self.num_rows, seed, device, stream="sketch_row"), dim)
            self._tables[device] = (buckets + dim * negative.to(torch.int64), shift,
                                    torch.where(row_negative, -1.0, 1.0))
        return self._tables[device]

    def _rotate(self, sums: torch.Tensor, first_row: int) -> torch.Tensor:
        """Rows' signed bucket sums (..., rows, 2·D′) → their contribution (..., D′): each row's D′ sums turned
        by h_row(r) and multiplied by σ_row(r)."""
        dim, rows = self.config.dim, sums.shape[-2]
        _, shifts, signs = self.tables(sums.device)
        shift, sign = shifts[first_row:first_row + rows], signs[first_row:first_row + rows]
        signed = sums[..., :dim] - sums[..., dim:]
        source = (torch.arange(dim, device=sums.device) - shift.unsqueeze(1)) % dim  # out[j] ← sums[j − h_row]
        turned = signed.gather(-1, source.expand(*signed.shape[:-2], rows, dim))
        return (turned * sign.unsqueeze(1)).sum(-2)

    def project_piece(self, values: torch.Tensor, start: int) -> torch.Tensor:
        """P restricted to entries start … start+n−1, applied to fp32 ``values`` (..., n) → (..., D′)."""
        b, dim, lead = self.row_length, self.config.dim, values.shape[:-1]
        out = torch.zeros(*lead, dim, dtype=torch.float32, device=values.device)
        with serial_cpu_ops(values.device):
            table = self.tables(values.device)[0]
            done = 0
            while done < values.shape[-1]:
                row, column = divmod(start + done, b)
                length = min(b - column, values.shape[-1] - done)
                rows = (values.shape[-1] - done) // b if column == 0 and length == b else 1
                taken = values[..., done:done + rows * b] if rows > 1 else values[..., done:done + length]
                sums = torch.zeros(*lead, rows, 2 * dim, dtype=torch.float32, device=values.device)
                sums.index_add_(-1, table[column:column + length], taken.reshape(*lead, rows, length))
                out += self._rotate(sums, row)
                done += rows * length
        return out
