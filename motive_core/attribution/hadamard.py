"""Unnormalised Walsh–Hadamard transform, the Q factor of the Fastfood projection (paper Eq. 8).

On CUDA the ``fast_hadamard_transform`` kernel is used when it is installed (about 30× faster than the
torch butterfly on an H100, see FINDINGS.md); everywhere else a pure-torch butterfly gives the same
numbers. Both use Sylvester order: H_1 = [1], H_2n = [[H_n, H_n], [H_n, −H_n]].
"""

from __future__ import annotations

import functools

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


def _working_copy(x: torch.Tensor) -> torch.Tensor:
    """A fresh contiguous copy in fp32 (fp64 stays fp64), so half-precision inputs are transformed exactly."""
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    return x.to(dtype=dtype, copy=True).contiguous()


def walsh_hadamard_torch(x: torch.Tensor) -> torch.Tensor:
    """Pure-torch butterfly: log2(n) passes of (a+b, a−b) between two ping-pong buffers, no dense matrix."""
    n = x.shape[-1]
    _check_dim(n)
    src = _working_copy(x).reshape(-1, n)
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


def walsh_hadamard(x: torch.Tensor) -> torch.Tensor:
    """H·x along the last dim (entries ±1, unnormalised); fp32 result for fp32/bf16/fp16 input."""
    n = x.shape[-1]
    _check_dim(n)
    kernel = _fast_kernel()
    if kernel is None or not x.is_cuda or x.dtype == torch.float64:
        return walsh_hadamard_torch(x)
    flat = x.to(torch.float32).contiguous().reshape(-1, n)
    return kernel(flat, scale=1.0).view(x.shape)
