"""One-sparse Johnson–Lindenstrauss projection (count-sketch: Charikar et al. 2002; the s = 1 SJLT).

P has a single ±1 in each column: gradient entry i is added, with sign σ(i), to output row h(i). Both come
from the same keyed 32-bit index hash as the Fastfood randoms (σ from its top bit, h from the others), so
nothing is stored but the seed, any chunking of the gradient gives the same vector, and every index is
hashed once. Each column has unit norm, so E‖Px‖² = ‖x‖² without scaling. One pass over the gradient
(hash, signed scatter-add) instead of Fastfood's two Hadamard transforms; its cosines are as faithful when
no few entries dominate the gradient, and worse when some do (the benchmark measures both).
"""

from __future__ import annotations

import torch

from motive_core.attribution.fastfood import (ProjectorBase, StreamBase, index_hash_range, run_in_order,
                                              serial_cpu_ops)

_PIECE = 1 << 17  # entries hashed and scattered at a time (stays in cache)


class CountSketchProjector(ProjectorBase):
    """Projects a flat gradient of ``total_dim`` entries to ``config.dim`` (uses dim and seed; no blocks)."""

    piece = _PIECE  # entries handed to project_piece at a time

    def _rows_and_signs(self, start: int, count: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Output row h(i) (int64) and whether σ(i) = −1, for i = start … start+count−1."""
        base = index_hash_range(start, count, self.config.seed, device)
        bits = base & 0x7FFFFFFF
        dim = self.config.dim
        rows = bits & (dim - 1) if dim & (dim - 1) == 0 else bits % dim
        return rows.to(torch.int64), base < 0

    def project_piece(self, values: torch.Tensor, start: int) -> torch.Tensor:
        """P restricted to entries start … start+n−1, applied to fp32 ``values`` (..., n) → (..., D′)."""
        with serial_cpu_ops(values.device):
            rows, negative = self._rows_and_signs(start, values.shape[-1], values.device)
            signed = torch.where(negative, -values, values)
            out = torch.zeros(*values.shape[:-1], self.config.dim, dtype=torch.float32, device=values.device)
            return out.index_add_(-1, rows, signed)

    def project(self, vector: torch.Tensor) -> torch.Tensor:
        """P·x for the whole flat gradient (D,) → (D′,) float32 (not yet normalised)."""
        stream = self.stream(vector.device)
        stream.update(vector)
        return stream.finish()

    def project_batch(self, vectors: torch.Tensor) -> torch.Tensor:
        """P·x for each row of (N, D) → (N, D′), hashing each index once for all rows."""
        if vectors.ndim != 2 or vectors.shape[1] != self.total_dim:
            raise ValueError(f"project_batch expects (N, {self.total_dim}) gradients, got {tuple(vectors.shape)}")
        piece = self.piece
        tasks = [lambda start=start: self.project_piece(vectors[:, start:start + piece].to(torch.float32), start)
                 for start in range(0, self.total_dim, piece)]
        total = torch.zeros(vectors.shape[0], self.config.dim, dtype=torch.float32, device=vectors.device)
        for part in run_in_order(vectors.device, tasks):
            total += part
        return total

    def stream(self, device=None) -> "CountSketchStream":
        """A projection fed in consecutive pieces (e.g. one parameter's gradient at a time)."""
        return CountSketchStream(self, self.device if device is None else torch.device(device))


class CountSketchStream(StreamBase):
    """Accumulates P·x from consecutive chunks of x; keeps no buffer (every entry lands on its own)."""

    def update(self, chunk: torch.Tensor) -> None:
        """Feed the next consecutive piece of the flat gradient (any shape; cast to fp32 as it enters)."""
        offset, piece = self._fed, self.projector.piece
        flat = self._accept(chunk)
        tasks = [lambda start=start: self.projector.project_piece(flat[start:start + piece].to(self.device, torch.float32),
                                                                  offset + start)
                 for start in range(0, flat.numel(), piece)]
        for part in run_in_order(self.device, tasks):
            self._total += part

    def finish(self) -> torch.Tensor:
        """P·x (D′,) float32; refuses a gradient of the wrong length."""
        self._close()
        return self._total
