"""Many reviewers at once: latency of /attribute and the server's peak memory, 8 and 16 concurrent users.

    python -m benchmarks.bench_load                     # the precomputed demo world, 1, 8 and 16 reviewers
    python -m benchmarks.bench_load --users 8 --calls 2 # a shorter run

Starts ``app.py`` as its own process on 127.0.0.1 (nothing else is contacted), then runs reviewers as
threads, each a separate ``gradio_client`` session. Light reviewers attribute example clips (each call
uploads its clip and attributes it); two heavy reviewers upload long 720p clips (59 s, written once with
the project's video writer and kept in the temp folder) whose motion sits in their first 4 s. Every
request loop is bounded (``--calls`` each). Reports, per crowd size: p50/p95 latency of /attribute for
light and heavy reviewers, the light p95 against the single-reviewer p95, the queue's first ETA against
the real wait, errors, and the server's peak resident memory (process and children, sampled every
0.2 s). Saved to benchmarks/results/load.md (benchmarks.common.results).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.common.results import REPO, save

HEAVY_SECONDS, HEAVY_FPS, HEAVY_SIZE = 59.0, 10.0, (720, 1280)
CLIPS = Path(tempfile.gettempdir()) / "motive-bench-load"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def long_720p_clip(path: Path, seed: int) -> Path:
    """A 59 s 1280×720 clip: a block slides for the first 4 s over a noisy background, then stays put."""
    from motive_core.video import write_mp4

    if path.is_file():
        return path
    rng = np.random.default_rng(seed)
    height, width = HEAVY_SIZE
    count = int(HEAVY_SECONDS * HEAVY_FPS)
    frames = np.repeat(rng.integers(40, 90, (1, height, width, 3), dtype=np.uint8), count, axis=0)
    for t in range(count):
        x = int(100 + 600 * min(t, 4 * HEAVY_FPS) / (4 * HEAVY_FPS))
        frames[t, 300:420, x:x + 120] = (230, 80, 40)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_mp4(frames, path, HEAVY_FPS)


class MemorySampler:
    """Peak resident memory of a process and its children, sampled in a thread."""

    def __init__(self, pid: int, every: float = 0.2):
        import psutil

        self.process, self.every, self.peak = psutil.Process(pid), every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        import psutil

        total = 0
        for proc in [self.process, *self.process.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.every)

    def __enter__(self) -> "MemorySampler":
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def start_server(port: int, temp: Path) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(temp / "gradio"),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = open(temp / "server.log", "w")
    server = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(port),
                               "--cache-dir", str(temp / "media")], cwd=REPO, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    from gradio_client import Client

    deadline = time.time() + 180
    while time.time() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the app exited early; see {temp / 'server.log'}")
        try:
            Client(f"http://127.0.0.1:{port}/", verbose=False).predict(api_name="/info")
            return server
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(1.0)
    server.kill()
    raise SystemExit("the app did not answer within 180 s")


def attribute_once(client, clip: Path, prompt: str) -> dict:
    """One /attribute call; latency, the first queue ETA the server announced, and any error."""
    from gradio_client import handle_file

    start = time.perf_counter()
    job = client.submit(handle_file(str(clip)), prompt, "", 5, False, "", api_name="/attribute")
    first_eta = None
    while not job.done():
        status = job.status()
        if first_eta is None and status.eta is not None:
            first_eta = float(status.eta)
        time.sleep(0.05)
    error = None
    try:
        job.result()
    except Exception as err:  # noqa: BLE001 - reported, not raised
        error = f"{type(err).__name__}: {str(err)[:120]}"
    return {"latency": time.perf_counter() - start, "eta": first_eta, "error": error}


def run_crowd(url: str, users: int, heavy: int, calls: int, examples: list[dict], long_clips: list[Path]) -> list[dict]:
    """``users`` reviewers at once (``heavy`` of them with long clips), each making ``calls`` calls."""
    from gradio_client import Client

    def reviewer(number: int) -> list[dict]:
        client = Client(url, verbose=False)
        out = []
        for call in range(calls):
            if number < heavy:
                clip, prompt, kind = long_clips[number % len(long_clips)], "", "heavy"
            else:
                example = examples[(number + call) % len(examples)]
                clip, prompt, kind = example["path"], example["prompt"], "light"
            out.append({"kind": kind, **attribute_once(client, clip, prompt)})
        return out

    with ThreadPoolExecutor(users) as pool:
        return [row for rows in pool.map(reviewer, range(users)) for row in rows]


def percentiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[8, 16], help="crowd sizes")
    parser.add_argument("--heavy", type=int, default=2, help="reviewers uploading long 720p clips")
    parser.add_argument("--calls", type=int, default=3, help="/attribute calls per reviewer")
    args = parser.parse_args(argv)

    import json

    from gradio_client import Client

    examples_dir = REPO / "assets" / "examples"
    examples = [{**e, "path": examples_dir / e["file"]}
                for e in json.loads((examples_dir / "examples.json").read_text())["examples"]]
    print("writing the long 720p clips (once) ...", flush=True)
    long_clips = [long_720p_clip(CLIPS / f"long_720p_{seed}.mp4", seed) for seed in range(2)]
    with tempfile.TemporaryDirectory(prefix="bench-load-") as temp:
        port = free_port()
        server = start_server(port, Path(temp))
        url = f"http://127.0.0.1:{port}/"
        try:
            sampler = MemorySampler(server.pid)
            idle = sampler.rss()
            warm = Client(url, verbose=False)
            attribute_once(warm, examples[0]["path"], examples[0]["prompt"])  # first call loads lazily
            single = [attribute_once(warm, e["path"], e["prompt"]) for e in examples[:max(3, args.calls)]]
            single_p50, single_p95 = percentiles([r["latency"] for r in single])
            rows = [{"reviewers": 1, "heavy": 0, "calls": len(single), "light p50 s": single_p50,
                     "light p95 s": single_p95, "heavy p50 s": float("nan"), "heavy p95 s": float("nan"),
                     "light p95 / single": 1.0, "ETA error p50 s": float("nan"), "errors": 0,
                     "peak memory MB": sampler.rss() / 1e6}]
            for users, heavy_users in [(u, h) for u in args.users for h in (0, args.heavy)]:
                with MemorySampler(server.pid) as sampler:
                    start = time.perf_counter()
                    results = run_crowd(url, users, heavy_users, args.calls, examples, long_clips)
                    wall = time.perf_counter() - start
                light = [r["latency"] for r in results if r["kind"] == "light" and not r["error"]]
                heavy = [r["latency"] for r in results if r["kind"] == "heavy" and not r["error"]]
                eta_error = [r["latency"] - r["eta"] for r in results if r["eta"] is not None and not r["error"]]
                errors = [r["error"] for r in results if r["error"]]
                light_p50, light_p95 = percentiles(light)
                heavy_p50, heavy_p95 = percentiles(heavy)
                rows.append({"reviewers": users, "heavy": heavy_users, "calls": len(results), "light p50 s": light_p50,
                             "light p95 s": light_p95, "heavy p50 s": heavy_p50, "heavy p95 s": heavy_p95,
                             "light p95 / single": light_p95 / single_p95,
                             "ETA error p50 s": percentiles(eta_error)[0] if eta_error else float("nan"),
                             "errors": len(errors), "peak memory MB": sampler.peak / 1e6})
                print(f"{users} reviewers ({heavy_users} heavy): {wall:.1f} s, errors {errors[:3]}", flush=True)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
    notes = [f"Light reviewers attribute the demo's example clips; in the rows with heavy > 0, {args.heavy} "
             "reviewers instead each upload a "
             f"{HEAVY_SECONDS:g} s {HEAVY_SIZE[1]}×{HEAVY_SIZE[0]} clip at {HEAVY_FPS:g} fps whose motion is in its "
             "first 4 s (window chosen automatically). Every call uploads its clip and runs /attribute to the end.",
             f"Server idle memory {idle / 1e6:.0f} MB. 'ETA error' is the real latency minus the first queue ETA "
             "the server announced (positive: the wait was longer than announced). Memory is the resident set of "
             "the app process and its children. Aim: light p95 within 2× the single reviewer's, peak < 2 GB, "
             "no error. Each crowd size runs once without heavy reviewers (the control: what the crowd alone "
             "costs on these cores) and once with them (what the long uploads add)."]
    save("load", {"Concurrent reviewers: /attribute latency and server memory": rows}, notes)


if __name__ == "__main__":
    main()
