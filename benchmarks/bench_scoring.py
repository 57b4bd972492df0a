"""Scoring cost (paper §2.8: 46 ms for 10k clips, 139 ms for a 50-query majority vote over 10k clips).

Times cosine_scores (Eq. 10) over 10k × 512 float32 vectors in memory and 1M × 512 memory-mapped from a
temporary .npy, and majority_vote (Eq. 18) for 50 queries × 10k clips. Prints a table and saves
benchmarks/results/scoring.{json,md}. Run from the repository root: python -m benchmarks.bench_scoring
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common.results import save
from motive_core.attribution.scoring import cosine_scores, majority_vote, top_and_bottom

DIM = 512


def unit_rows(count: int, rng: np.random.Generator) -> np.ndarray:
    rows = rng.standard_normal((count, DIM), dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def timed(fn, repeats: int, warmup: int = 3) -> dict:
    """Median, 10th and 90th percentile of wall time in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return {"median_ms": statistics.median(times), "p10_ms": times[len(times) // 10],
            "p90_ms": times[(9 * len(times)) // 10], "repeats": repeats}


def mapped_index(path: Path, count: int, rng: np.random.Generator) -> np.ndarray:
    """Write a (count, 512) float32 .npy in slices and open it memory-mapped, read-only."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(count, DIM))
    for start in range(0, count, 65536):
        out[start:start + 65536] = unit_rows(min(65536, count - start), rng)
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def run(large: int) -> list[dict]:
    rng = np.random.default_rng(0)
    small = unit_rows(10_000, rng)
    query = rng.standard_normal(DIM).astype(np.float32)
    in_memory = timed(lambda: cosine_scores(small, query), 500)
    results = [{"case": "cosine_scores 10k × 512 (in memory)", **in_memory}]
    scores = cosine_scores(small, query)
    results.append({"case": "top_and_bottom k=50 over 10k", **timed(lambda: top_and_bottom(scores, 50), 200)})
    matrix = np.stack([cosine_scores(small, q) for q in unit_rows(50, rng)])
    results.append({"case": "majority_vote 50 queries × 10k", **timed(lambda: majority_vote(matrix), 100)})
    with tempfile.TemporaryDirectory() as folder:
        index = mapped_index(Path(folder) / "vectors.npy", large, rng)
        results.append({"case": f"cosine_scores {large // 1000}k × 512 (memory-mapped, page cache warm)",
                        **timed(lambda: cosine_scores(index, query), 10, warmup=1)})
        del index
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=1_000_000, help="rows of the memory-mapped index")
    args = parser.parse_args()
    machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "numpy": np.__version__,
               "load_average_1min": os.getloadavg()[0]}
    results = run(args.large)
    save("scoring", {"Scoring (Eq. 10) and majority vote (Eq. 18), milliseconds": results},
         [f"numpy {machine['numpy']}, load average {machine['load_average_1min']:.1f} at start. "
          "Paper (A100 host): 46 ms for 10k clips, 139 ms for a 50-query vote over 10k clips."], {"machine": machine})


if __name__ == "__main__":
    main()
