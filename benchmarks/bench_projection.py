"""Gradient projection cost on the CPU: Fastfood (ours), two count-sketches, TRAK's and dattri's projectors.

For flat gradients of 1e6, 1e7 and 1e8 entries (and the Wan2.1-1.3B size, 1.42e9, streamed, for Fastfood and
the block count-sketch) it prints and saves, side by side in one run: seconds to project one gradient to D′ = 512 and that time as a
multiple of the read floor (one pass over the input: its sum), peak extra memory, the random state each
method keeps, and fidelity: Spearman ρ between the exact cosines of 12 synthetic gradients (heavy-tailed,
layer-wise scales, cosines spread over (−1, 1)) and the cosines of their projections. TRAK and dattri
(benchmark-only extra: pip install .[bench]) store a dense D × 100 Gaussian block, so they run at 1e6
and 1e7 only (1e8 would need 37 GiB). Saves benchmarks/results/projection.{json,md}.
With --device cuda it measures instead, on the GPU: ours with the fast_hadamard_transform kernel (when
installed) and with the torch butterfly, the two count-sketches and the read floor, with peak GPU memory and
agreement with the CPU projection; saves benchmarks/results/projection_cuda.{json,md}.
Run from the repository root: python -m benchmarks.bench_projection [--threads 1] [--skip-full] [--device cuda]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from benchmarks.common.results import save
from motive_core.attribution import fastfood
from motive_core.attribution.blocksketch import BlockSketchProjector
from motive_core.attribution.countsketch import CountSketchProjector
from motive_core.attribution.hadamard import fast_kernel_available, walsh_hadamard_butterfly

DIM = 512
WAN_PARAMETERS = 1_418_996_800
PIECE = 100_000_000  # the 1.42e9 gradient is fed as pieces of this many entries
CHUNK = 3_276_811  # a parameter-sized piece, deliberately not a multiple of the block
FIDELITY_GRADIENTS = 12  # 8 above 1e7 entries, to stay within a few GiB
LAYER = 1 << 16  # entries sharing one scale in the synthetic gradients
BASELINE_LIMIT = 10 ** 7  # TRAK / dattri keep D × 100 floats


# ------------------------------------------------------------------------------------------ measuring


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096


def timed_with_peak(fn: Callable[[], object]) -> tuple[float, float, float | None]:
    """(wall seconds, CPU seconds of this thread, peak resident-set growth in MiB sampled every 0.5 ms)."""
    if not Path("/proc/self/statm").exists():
        start, cpu = time.perf_counter(), time.thread_time()
        fn()
        return time.perf_counter() - start, time.thread_time() - cpu, None
    before, peak, done = _rss_bytes(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start, cpu = time.perf_counter(), time.thread_time()
    fn()
    elapsed, cpu = time.perf_counter() - start, time.thread_time() - cpu
    done.set()
    sampler.join()
    return elapsed, cpu, max(0, peak[0] - before) / 2 ** 20


def median_seconds(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall and median CPU seconds (this thread) of ``repeats`` calls after one warm-up call.

    On a loaded machine the wall time includes waiting for a core; the CPU time of the one working
    thread does not, so it is the steadier figure for comparing methods.
    """
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.thread_time()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.thread_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def tensor_mib(*tensors: torch.Tensor) -> float:
    return sum(t.numel() * t.element_size() for t in tensors) / 2 ** 20


# ------------------------------------------------------------------------------------------ projectors


class Method:
    """A projector under test: how to build it for D entries, project (N, D) rows, and its stored state."""

    def __init__(self, name: str, build: Callable[[int], object], project: Callable[[object, torch.Tensor], torch.Tensor],
                 state: Callable[[object], float], largest: int | None = None, repeats: int = 3):
        self.name, self.build, self.project, self.state = name, build, project, state
        self.largest, self.repeats = largest, repeats


def fastfood_state(projector: fastfood.FastfoodProjector) -> float:
    cached = [t for randoms in projector._randoms.values() for t in randoms]
    return tensor_mib(projector._perm_cpu, *cached)


def blocksketch_state(projector: BlockSketchProjector) -> float:
    return tensor_mib(*(t for tables in projector._tables.values() for t in tables))


def butterfly_rows(x: torch.Tensor, rows: int | None = None) -> torch.Tensor:
    """H·x by the 15-pass butterfly, as before the Kronecker form (a Hadamard strategy for FastfoodProjector)."""
    out = walsh_hadamard_butterfly(x)
    return out if rows is None else out[..., :rows]


def streamed(projector, rows: torch.Tensor) -> torch.Tensor:
    """Each row fed in parameter-sized chunks, one projection stream per gradient."""
    out = []
    for row in rows:
        stream = projector.stream(row.device)
        for start in range(0, row.numel(), CHUNK):
            stream.update(row[start:start + CHUNK])
        out.append(stream.finish())
    return torch.stack(out)


def trak_method() -> Method | None:
    try:
        from trak.projectors import BasicProjector, ProjectionType
    except ImportError:
        return None
    return Method("TRAK BasicProjector (normal, CPU)",
                  lambda size: BasicProjector(size, DIM, 0, ProjectionType.normal, torch.device("cpu")),
                  lambda projector, rows: projector.project(rows, model_id=0),
                  lambda projector: tensor_mib(projector.proj_matrix), BASELINE_LIMIT, repeats=1)


def dattri_method() -> Method | None:
    try:
        from dattri.func.projection import random_project
    except ImportError:
        return None

    def build(size):
        return random_project(torch.zeros(1, size), 1, DIM, 32, proj_seed=0, proj_type="normal", device="cpu")

    def state(func):
        projector = next(c.cell_contents for c in func.__closure__ if hasattr(c.cell_contents, "proj_matrix"))
        return tensor_mib(projector.proj_matrix)

    return Method("dattri random_project (normal, CPU)", build, lambda func, rows: func(rows), state,
                  BASELINE_LIMIT, repeats=1)


def methods() -> tuple[list[Method], list[str]]:
    config = fastfood.FastfoodConfig(dim=DIM)
    ours = [
        Method("Fastfood (ours)", lambda size: fastfood.FastfoodProjector(config, size), streamed, fastfood_state),
        Method("Fastfood, butterfly Hadamard (before)",
               lambda size: fastfood.FastfoodProjector(config, size, hadamard=butterfly_rows), streamed, fastfood_state,
               10 ** 7),
        Method("count-sketch (one-sparse JL)", lambda size: CountSketchProjector(config, size), streamed,
               lambda projector: 0.0),
        Method("block count-sketch (table hashes)", lambda size: BlockSketchProjector(config, size), streamed,
               blocksketch_state),
    ]
    notes, baselines = [], []
    for name, factory in (("traker", trak_method), ("dattri", dattri_method)):
        method = factory()
        if method is None:
            notes.append(f"{name} is not installed (pip install .[bench]); its rows are missing.")
        else:
            baselines.append(method)
    return ours + baselines, notes


# ------------------------------------------------------------------------------------------ fidelity


def synthetic_gradients(size: int, count: int = FIDELITY_GRADIENTS) -> torch.Tensor:
    """(count, size) gradients: a shared direction mixed in with weights −2 … 2, layer-wise log-normal scales."""
    gen = torch.Generator().manual_seed(size)
    scales = torch.exp(1.5 * torch.randn(-(-size // LAYER), generator=gen)).repeat_interleave(LAYER)[:size]
    shared = torch.randn(size, generator=gen) * scales
    weights = torch.linspace(-2.0, 2.0, count)
    rows = torch.empty(count, size)
    for k in range(count):
        rows[k] = weights[k] * shared + torch.randn(size, generator=gen) * scales
    return rows


def pair_cosines(rows: torch.Tensor) -> np.ndarray:
    """Cosines of all pairs of rows, accumulated in float64 a slice of columns at a time."""
    gram = torch.zeros(len(rows), len(rows), dtype=torch.float64)
    for start in range(0, rows.shape[1], 1 << 22):
        piece = rows[:, start:start + (1 << 22)].double()
        gram += piece @ piece.T
    norms = gram.diagonal().sqrt()
    return (gram / norms[:, None] / norms[None, :]).numpy()[np.triu_indices(len(rows), k=1)]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks_a, ranks_b = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


# ------------------------------------------------------------------------------------------ the run


def measure_size(size: int, methods_: list[Method], floor: float, rows: torch.Tensor, exact: np.ndarray) -> list[dict]:
    """Every method at one size; ``floor`` is the CPU seconds of one read of a gradient."""
    single = rows[:1].clone()
    out = []
    for method in methods_:
        row = {"entries": f"{size:.0e}", "method": method.name}
        if method.largest is not None and size > method.largest:
            continue
        projector = method.build(size)
        if method.repeats > 1:
            _, _, peak = timed_with_peak(lambda: method.project(projector, single))
            seconds, cpu = median_seconds(lambda: method.project(projector, single), method.repeats)
            projected = method.project(projector, rows)
        else:  # one call serves both: generating the dense matrix, not the rows, is what costs
            projected = []
            seconds, cpu, peak = timed_with_peak(lambda: projected.append(method.project(projector, rows)))
            projected = projected[0]
        row.update({"seconds": seconds, "CPU s": cpu, "CPU × floor": cpu / floor, "peak extra MiB": peak,
                    "random state MiB": method.state(projector),
                    "Spearman ρ": spearman(exact, pair_cosines(projected))})
        out.append(row)
        print(row, flush=True)
        del projector
    return out


def full_size_rows(threads: int) -> list[dict]:
    """Fastfood and the block count-sketch on 1.42e9 entries fed as 1e8-entry pieces of one buffer (the input's
    content does not matter)."""
    piece = torch.randn(PIECE)
    lengths = [PIECE] * (WAN_PARAMETERS // PIECE) + [WAN_PARAMETERS % PIECE]
    floor_start, floor_cpu = time.perf_counter(), time.thread_time()
    for length in lengths:
        piece[:length].sum()
    floor, floor_cpu = time.perf_counter() - floor_start, time.thread_time() - floor_cpu
    config = fastfood.FastfoodConfig(dim=DIM)
    rows = [{"entries": f"{WAN_PARAMETERS:.2e}", "method": "read floor (sum)", "seconds": floor, "CPU s": floor_cpu,
             "CPU × floor": 1.0}]
    streamed_methods = (("Fastfood (ours)", fastfood.FastfoodProjector, fastfood_state),
                        ("block count-sketch (table hashes)", BlockSketchProjector, blocksketch_state))
    for name, build, state in streamed_methods:
        projector = build(config, WAN_PARAMETERS)

        def run():
            stream = projector.stream()
            for length in lengths:
                stream.update(piece[:length])
            return stream.finish()

        seconds, cpu, peak = timed_with_peak(run)
        rows.append({"entries": f"{WAN_PARAMETERS:.2e}", "method": f"{name}, streamed", "seconds": seconds,
                     "CPU s": cpu, "CPU × floor": cpu / floor_cpu, "peak extra MiB": peak,
                     "random state MiB": state(projector)})
    for row in rows:
        print(row, flush=True)
    return rows


def thread_rows(size: int) -> list[dict]:
    """Ours on one and two torch threads, same input, same run (CPU time of the whole process: both threads)."""
    vector = torch.randn(size)
    projector = fastfood.FastfoodProjector(fastfood.FastfoodConfig(dim=DIM), size)
    before = torch.get_num_threads()
    out = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        seconds, _ = median_seconds(lambda: projector.project(vector), 3)
        cpu = time.process_time()
        projector.project(vector)
        out.append({"entries": f"{size:.0e}", "torch threads": threads, "Fastfood seconds": seconds,
                    "CPU s (all threads, one call)": time.process_time() - cpu})
        print(out[-1], flush=True)
    torch.set_num_threads(before)
    return out


def batch_rows(size: int, count: int = 8) -> list[dict]:
    """project_batch: seconds per gradient when 8 gradients share the regenerated randoms."""
    vectors = torch.randn(count, size)
    projector = fastfood.FastfoodProjector(fastfood.FastfoodConfig(dim=DIM), size)
    one, one_cpu = median_seconds(lambda: projector.project(vectors[0]), 3)
    batch, batch_cpu = median_seconds(lambda: projector.project_batch(vectors), 1)
    out = [{"entries": f"{size:.0e}", "mode": "one at a time", "seconds per gradient": one, "CPU s per gradient": one_cpu},
           {"entries": f"{size:.0e}", "mode": f"project_batch of {count}", "seconds per gradient": batch / count,
            "CPU s per gradient": batch_cpu / count}]
    print(out, flush=True)
    return out


# ------------------------------------------------------------------------------------------ on a GPU


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_seconds(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median wall seconds of ``repeats`` calls after a warm-up, waiting for the device each time."""
    fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def device_peak_mib(fn: Callable[[], object], device: torch.device) -> float | None:
    """Peak GPU memory allocated beyond what was in use before one call (None off CUDA)."""
    if device.type != "cuda":
        return None
    synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2 ** 20


def device_rows(device: torch.device, sizes: list[int], full: bool) -> list[dict]:
    """Ours (with the Hadamard kernel when installed, and with the torch butterfly), the count-sketches and
    the read floor on ``device``; up to 1e7 entries also the largest difference from the CPU projection."""
    config = fastfood.FastfoodConfig(dim=DIM)
    hadamard = "fast_hadamard_transform kernel" if fast_kernel_available() else "torch butterfly, no kernel"
    variants = [(f"Fastfood (ours; {hadamard})", fastfood.FastfoodProjector, streamed),
                ("Fastfood, torch butterfly forced",
                 lambda *args: fastfood.FastfoodProjector(*args, hadamard=butterfly_rows), streamed),
                ("count-sketch (one-sparse JL)", CountSketchProjector, streamed),
                ("block count-sketch (table hashes)", BlockSketchProjector, streamed)]
    cases = [(size, torch.float32) for size in sizes] + ([(WAN_PARAMETERS, torch.bfloat16)] if full else [])
    rows = []
    for size, dtype in cases:
        vector = torch.randn(size, device=device, dtype=dtype).unsqueeze(0)
        repeats = 3 if size <= 10 ** 8 else 1
        floor = device_seconds(lambda: vector.sum(), device, repeats)
        rows.append({"entries": f"{size:.2e}", "input": str(dtype).removeprefix("torch."),
                     "method": "read floor (sum)", "seconds": floor, "× floor": 1.0})
        for name, build, project in variants:
            projector = build(config, size, device)
            seconds = device_seconds(lambda: project(projector, vector), device, repeats)
            row = {"entries": f"{size:.2e}", "input": str(dtype).removeprefix("torch."), "method": name,
                   "seconds": seconds, "× floor": seconds / floor,
                   "peak extra MiB": device_peak_mib(lambda: project(projector, vector), device)}
            if size <= 10 ** 7:
                on_device = project(projector, vector)[0].cpu()
                on_cpu = build(config, size, "cpu").project(vector[0].cpu())
                row["max |device − CPU| / max |CPU|"] = float((on_device - on_cpu).abs().max() / on_cpu.abs().max())
            rows.append(row)
            print(row, flush=True)
        del vector
    columns = ["entries", "input", "method", "seconds", "× floor", "peak extra MiB", "max |device − CPU| / max |CPU|"]
    return [{column: row.get(column, "–") for column in columns} for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7, 1e8])
    parser.add_argument("--skip-full", action="store_true", help="skip the 1.42e9-entry streamed case")
    parser.add_argument("--device", default="cpu", help="cpu (the comparison) or cuda (ours on the GPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.device != "cpu":
        device = torch.device(args.device)
        rows = device_rows(device, [int(s) for s in args.sizes], not args.skip_full)
        save("projection_cuda", {f"Projection to D′ = 512 on {torch.cuda.get_device_name(device)}": rows},
             [f"torch {torch.__version__}; seconds: median of 3 calls after a warm-up (one call at 1.42e9, fed "
              f"as {CHUNK}-entry chunks of a bf16 vector), waiting for the GPU; peak extra: allocator peak "
              "beyond the input. The last column compares with the same projection on the CPU."],
             {"machine": {"gpu": torch.cuda.get_device_name(device), "torch": torch.__version__}})
        return
    load_before = os.getloadavg()
    methods_, notes = methods()
    rows = []
    for size in (int(s) for s in args.sizes):
        gradients = synthetic_gradients(size, FIDELITY_GRADIENTS if size <= 10 ** 7 else 8)
        exact = pair_cosines(gradients)
        floor, floor_cpu = median_seconds(lambda: gradients[0].sum(), 5)
        rows.append({"entries": f"{size:.0e}", "method": "read floor (sum)", "seconds": floor, "CPU s": floor_cpu,
                     "CPU × floor": 1.0})
        rows += measure_size(size, methods_, floor_cpu, gradients, exact)
        del gradients
    if not args.skip_full:
        rows += full_size_rows(args.threads)
    threads = thread_rows(10 ** 7)
    batches = batch_rows(10 ** 7)
    load_after = os.getloadavg()
    machine = {"platform": platform.platform(), "torch": torch.__version__, "threads": args.threads,
               "load_average_1min_before": load_before[0], "load_average_1min_after": load_after[0]}
    notes = [f"torch {machine['torch']}, {args.threads} CPU thread(s), no GPU; load average (1 min) "
             f"{load_before[0]:.1f} before and {load_after[0]:.1f} after the run on a 2-core machine shared with "
             "other jobs, so wall seconds are noisy (compare rows of one run). Seconds: wall time for one "
             f"gradient fed in {CHUNK}-entry chunks (median of 3 after a warm-up); CPU s: CPU time of the one "
             "working thread over the same calls, which waiting for a core does not inflate; CPU × floor: CPU s "
             "over the CPU seconds of one read of the gradient (its sum). TRAK and dattri: one call projecting all the "
             "fidelity gradients at once, an upper bound for one gradient (their cost is generating the "
             "D × 512 Gaussian matrix block by block, whatever the number of gradients). Peak extra "
             "memory: resident-set growth sampled every 0.5 ms during the first call. Random state: what "
             "the projector keeps (Fastfood: its permutation, plus the randoms cached for models under 8.4M "
             "entries; count-sketch: only its seed; block count-sketch: its column and row tables). Spearman ρ: exact vs projected cosines of the 66 pairs "
             f"of {FIDELITY_GRADIENTS} synthetic gradients (28 pairs of 8 at 1e8)."] + notes
    columns = ["entries", "method", "seconds", "CPU s", "CPU × floor", "peak extra MiB", "random state MiB",
               "Spearman ρ"]
    rows = [{column: row.get(column, "–") for column in columns} for row in rows]
    save("projection", {"Projection to D′ = 512 on the CPU": rows,
                        "Fastfood on one and two torch threads": threads,
                        "Fastfood per gradient, one at a time vs project_batch": batches},
         notes, {"machine": machine})


if __name__ == "__main__":
    main()
