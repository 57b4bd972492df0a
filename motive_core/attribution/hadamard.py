"""Unnormalised Walsh–Hadamard transform, the Q factor of the Fastfood projection (paper Eq. 8).

On CUDA the ``fast_hadamard_transform`` kernel is used when it is installed (about 30× faster than the
torch butterfly in a pilot on an H100; docs/scaling.md), else a pure-torch butterfly. On the CPU the transform is
Kronecker-factored: H_n = H_a ⊗ H_b ⊗ H_c with factors of at most 32, each applied along its own axis by
one matrix product, so a 32768-long block takes 3 passes over memory instead of the butterfly's 15, and
when only the first rows of H·x are wanted (Fastfood keeps D′ of them) the leading factors shrink to the
rows needed. All use Sylvester order, H_1 = [1], H_2n = [[H_n, H_n], [H_n, −H_n]], and agree to float
rounding.
"""

import functools
import math

import torch

from motive_core.errors import MotiveError

MAX_HADAMARD_DIM = 32768  # the CUDA kernel's limit; the Fastfood block size never exceeds it


@functools.lru_cache(maxsize=1)
def _fast_kernel():
    """The ``hadamard_transform`` function of the CUDA package, or None when it does not import."""
    try:
        from fast_hadamard_transform import hadamard_transform
    except (ImportError, OSError):
        return None
    return hadamard_transform


def fast_kernel_available() -> bool:
    """Whether the ``fast_hadamard_transform`` CUDA kernel imports (it is only used on CUDA tensors)."""
    return _fast_kernel() is not None and torch.cuda.is_available()


def _check_dim(n: int) -> None:
    if n < 1 or n & (n - 1) or n > MAX_HADAMARD_DIM:
        raise MotiveError(f"Walsh–Hadamard length must be a power of two ≤ {MAX_HADAMARD_DIM}, got {n}")


def _working_dtype(x: torch.Tensor) -> torch.dtype:
    """fp32 for fp32/bf16/fp16 input, so half-precision inputs are transformed exactly; fp64 stays fp64."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _check_rows(rows: int | None, n: int) -> int:
    if rows is None:
        return n
    if not 1 <= rows <= n:
        raise ValueError(f"rows must be between 1 and the transform length {n}, got {rows}")
    return rows


def walsh_hadamard_butterfly(x: torch.Tensor) -> torch.Tensor:
    """Pure-torch butterfly: log2(n) passes of (a+b, a−b) between two ping-pong buffers, no dense matrix."""
    n = x.shape[-1]
    _check_dim(n)
    src = x.to(dtype=_working_dtype(x), copy=True).contiguous().reshape(-1, n)
    dst = torch.empty_like(src)
    half = 1
    while half < n:
        s = src.view(-1, n // (2 * half), 2, half)
        d = dst.view(-1, n // (2 * half), 2, half)
        torch.add(s[:, :, 0], s[:, :, 1], out=d[:, :, 0])
        torch.sub(s[:, :, 0], s[:, :, 1], out=d[:, :, 1])
        src, dst = dst, src
        half *= 2
    return src.view(x.shape)


_FACTOR_BITS = 5  # Kronecker factors of at most 2^5 = 32: small enough that a matrix product stays cheap


def _factor_sizes(n: int) -> list[int]:
    """n = 2^k split into as few power-of-two factors ≤ 32 as possible, as even as possible (32768 → 32·32·32)."""
    bits = n.bit_length() - 1
    parts = -(-bits // _FACTOR_BITS)
    return [1 << (bits // parts + (i < bits % parts)) for i in range(parts)]


@functools.lru_cache(maxsize=32)
def _sylvester(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    h = torch.ones(1, 1, dtype=dtype)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h.to(device)


def _rows_per_factor(sizes: list[int], rows: int) -> list[int]:
    """Rows of each factor needed for the first ``rows`` outputs: output o = Σ_j o_j·(∏ sizes after j).

    Leading factors keep only row 0 while the trailing ones alone cover ``rows``; the first factor that
    cannot keeps ceil(rows / ∏ sizes after it) rows; the rest keep all.
    """
    keep, after = [], 1
    for size in reversed(sizes):
        keep.append(size if after < rows else 1)
        if 1 < -(-rows // after) <= size:
            keep[-1] = -(-rows // after)
        after *= size
    return keep[::-1]


def walsh_hadamard_kronecker(x: torch.Tensor, rows: int | None = None) -> torch.Tensor:
    """The first ``rows`` entries (default all n) of H·x along the last dim, one matrix product per factor."""
    n = x.shape[-1]
    _check_dim(n)
    rows = _check_rows(rows, n)
    dtype = _working_dtype(x)
    y = x.to(dtype).reshape(-1, n)
    batch = y.shape[0]
    sizes = _factor_sizes(n)
    keep = _rows_per_factor(sizes, rows)
    done = 1  # product of the kept rows of the factors already applied
    for j, (size, kept) in enumerate(zip(sizes, keep)):
        factor = _sylvester(size, dtype, y.device)[:kept]
        after = math.prod(sizes[j + 1:])
        if after == 1:
            y = y.reshape(batch * done, size) @ factor.T
        else:
            y = torch.matmul(factor, y.reshape(batch * done, size, after))
        done *= kept
    return y.reshape(batch, -1)[:, :rows].reshape(*x.shape[:-1], rows)


def walsh_hadamard_torch(x: torch.Tensor, rows: int | None = None) -> torch.Tensor:
    """Pure-torch H·x (first ``rows`` entries): Kronecker-factored on the CPU, the butterfly elsewhere.

    Off the CPU the butterfly is kept because a matrix product there may run in reduced precision (TF32).
    """
    if x.device.type == "cpu" or x.dtype == torch.float64:
        return walsh_hadamard_kronecker(x, rows)
    out = walsh_hadamard_butterfly(x)
    return out if rows is None else out[..., :_check_rows(rows, x.shape[-1])]


def walsh_hadamard(x: torch.Tensor, rows: int | None = None) -> torch.Tensor:
    """H·x along the last dim (entries ±1, unnormalised), or its first ``rows`` entries; fp32 result for
    fp32/bf16/fp16 input."""
    n = x.shape[-1]
    _check_dim(n)
    kernel = _fast_kernel()
    if kernel is None or not x.is_cuda or x.dtype == torch.float64:
        return walsh_hadamard_torch(x, rows)
    flat = x.to(torch.float32).contiguous().reshape(-1, n)
    out = kernel(flat, scale=1.0).view(x.shape)
    return out if rows is None else out[..., :_check_rows(rows, n)]
