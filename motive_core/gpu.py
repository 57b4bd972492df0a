"""GPU work on Hugging Face ZeroGPU Spaces: :func:`gpu_task` is ``spaces.GPU`` when the ``spaces`` package is
importable (a ZeroGPU Space attaches a GPU for each call), and leaves the function unchanged otherwise, so
the same app runs on a laptop, a GPU server and a ZeroGPU Space."""

from __future__ import annotations

from typing import Callable

try:
    import spaces
except ImportError:
    spaces = None


def gpu_task(func: Callable | None = None, *, duration: float | None = None) -> Callable:
    """Decorate a GPU-using function, as ``@gpu_task`` or ``@gpu_task(duration=120)`` (seconds, ZeroGPU's limit).

    Return CPU/numpy objects from decorated functions: ZeroGPU moves the GPU away after the call.
    """
    options = {} if duration is None else {"duration": duration}
    if func is None:
        return lambda inner: gpu_task(inner, **options)
    if spaces is None:
        return func
    return spaces.GPU(func, **options)
