"""Fastfood projection cost (paper §2.8: ~1.97 s per 1.42e9-entry gradient on an A100).

Seconds to project flat gradients of 1e6 and 1e7 entries (and the Wan2.1-1.3B size, 1.42e9, on CUDA with
--full) to D′ = 512 with the torch butterfly and, when installed on CUDA, the fast_hadamard_transform
kernel; one-shot and streamed in parameter-sized chunks; peak extra memory. Saves
benchmarks/results/projection.{json,md}. Run from the repository root: python benchmarks/bench_projection.py
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results_io import save  # noqa: E402
from motive_core.attribution import fastfood  # noqa: E402
from motive_core.attribution.hadamard import fast_kernel_available, walsh_hadamard_torch  # noqa: E402

WAN_PARAMETERS = 1_418_996_800
CHUNK = 3_276_811  # a parameter-sized piece, deliberately not a multiple of the block


@contextlib.contextmanager
def torch_butterfly_only():
    """Make the projection use the pure-torch Walsh–Hadamard even where the CUDA kernel is installed."""
    original = fastfood.walsh_hadamard
    fastfood.walsh_hadamard = walsh_hadamard_torch
    try:
        yield
    finally:
        fastfood.walsh_hadamard = original


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096


def peak_extra_memory(fn, device: torch.device) -> int | None:
    """Bytes allocated beyond what was in use before ``fn`` (CUDA allocator peak, or sampled CPU RSS)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    if not Path("/proc/self/statm").exists():
        return None
    before, peak, done = _rss_bytes(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    fn()
    done.set()
    sampler.join()
    return max(0, peak[0] - before)


def seconds(fn, device: torch.device, repeats: int) -> float:
    """Median wall time after one warm-up call."""
    def once():
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start
    once()
    return statistics.median(once() for _ in range(repeats))


def streamed(projector: fastfood.FastfoodProjector, vector: torch.Tensor) -> torch.Tensor:
    stream = projector.stream(vector.device)
    for start in range(0, vector.numel(), CHUNK):
        stream.update(vector[start:start + CHUNK])
    return stream.finish()


def measure(size: int, device: torch.device, kernel: str, dtype: torch.dtype) -> list[dict]:
    projector = fastfood.FastfoodProjector(fastfood.FastfoodConfig(), size, device)
    vector = torch.randn(size, device=device, dtype=dtype)
    repeats = 3 if size <= 10 ** 8 else 1
    rows = []
    modes = [("one-shot", lambda: projector.project(vector)), ("streamed", lambda: streamed(projector, vector))]
    for mode, fn in modes:
        with torch_butterfly_only() if kernel == "torch" else contextlib.nullcontext():
            rows.append({"entries": size, "device": str(device), "hadamard": kernel, "mode": mode,
                         "input_dtype": str(dtype).removeprefix("torch."), "seconds": seconds(fn, device, repeats),
                         "peak extra MiB": mib(peak_extra_memory(fn, device))})
            print(rows[-1], flush=True)
    del vector
    return rows


def mib(size: int | None) -> float | None:
    return None if size is None else size / 2 ** 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also 1.42e9 entries (Wan2.1-1.3B), CUDA only")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    kernels = ["torch"] + (["fast"] if device.type == "cuda" and fast_kernel_available() else [])
    cases = [(10 ** 6, torch.float32), (10 ** 7, torch.float32)]
    if args.full and device.type == "cuda":
        cases.append((WAN_PARAMETERS, torch.bfloat16))
    elif args.full:
        print("--full needs CUDA: the 1.42e9-entry case is skipped on the CPU")
    rows = [row for size, dtype in cases for kernel in kernels
            for row in measure(size, device, kernel, dtype)]
    machine = {"platform": platform.platform(), "torch": torch.__version__,
               "threads": torch.get_num_threads(),
               "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
               "load_average_1min": os.getloadavg()[0]}
    save("projection", {"Fastfood projection (D′ = 512, block 32768)": rows},
         [f"torch {machine['torch']}, {machine['threads']} CPU threads, {machine['gpu'] or 'no GPU'}, load average "
          f"{machine['load_average_1min']:.1f}. Peak extra memory: CUDA allocator peak beyond the input; on CPU, "
          "resident-set growth sampled every 0.5 ms."], {"machine": machine})


if __name__ == "__main__":
    main()
