"""Many reviewers at once: latency of /attribute and the server's peak memory, 8 and 16 concurrent users.

    python -m benchmarks.bench_load                     # the precomputed demo world, 1, 8 and 16 reviewers
    python -m benchmarks.bench_load --users 8 --calls 2 # a shorter run

Starts ``app.py`` as its own process on 127.0.0.1 (nothing else is contacted), then runs reviewers as
threads, each a separate ``gradio_client`` session. Light reviewers attribute example clips (each call
uploads its clip and attributes it); two heavy reviewers upload long 720p clips (59 s, written once with
the project's video writer and kept in the temp folder) whose motion sits in their first 4 s. Every call
sends a clip the server has not seen (``fresh_copy``), so no cache answers it. Every request loop is
bounded (``--calls`` each). Crowds run back to back (a stress test) and with pauses between a reviewer's
calls (``--think``, as in a review). Reports, per crowd: p50/p95 latency of /attribute for light and heavy
reviewers, the light p95 against the single-reviewer p95, the queue's first ETA against what was really
left, errors, and the server's peak memory (its resident set plus its children's unique memory, sampled
every 0.2 s). Saved to benchmarks/results/load.md (benchmarks.common.results).
"""

from __future__ import annotations

import argparse
import itertools
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
    """Peak memory of a process and its children, sampled in a thread: the process's resident set plus each
    child's unique set. A child caught between fork and exec (the video writer starting its encoder) maps the
    app's own pages; counting its resident set would count the app twice."""

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
                total += proc.memory_info().rss if proc is self.process else proc.memory_full_info().uss
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
    """One /attribute call: its latency (upload included), any error, and the first ETA the server announced
    with what was really left at that moment (the upload comes before any announcement)."""
    from gradio_client import handle_file

    start = time.perf_counter()
    job = client.submit(handle_file(str(clip)), prompt, "", 5, False, "", api_name="/attribute")
    first_eta = announced_at = None
    while not job.done():
        status = job.status()
        if first_eta is None and status.eta is not None:
            first_eta, announced_at = float(status.eta), time.perf_counter()
        time.sleep(0.05)
    error = None
    try:
        job.result()
    except Exception as err:  # noqa: BLE001 - reported, not raised
        error = f"{type(err).__name__}: {str(err)[:120]}"
    end = time.perf_counter()
    return {"latency": end - start, "eta": first_eta, "left": None if announced_at is None else end - announced_at,
            "error": error}


def fresh_copy(clip: Path, folder: Path) -> Path:
    """A copy of ``clip`` with a few unique bytes after its end: it decodes the same, but its content hash is
    new, so the server prepares it from scratch as it would a clip it has never seen."""
    copy = folder / f"{clip.stem}-{next(FRESH)}{clip.suffix}"
    copy.write_bytes(clip.read_bytes() + os.urandom(8))
    return copy


FRESH = itertools.count()


def run_crowd(url: str, users: int, heavy: int, calls: int, examples: list[dict], long_clips: list[Path],
              think: float, copies: Path) -> list[dict]:
    """``users`` reviewers at once (``heavy`` of them with long clips), each making ``calls`` calls, each call
    with a clip the server has not seen (``fresh_copy``); with ``think`` > 0 a reviewer looks at each result
    for a random while (exponential, mean ``think`` s, seeded per reviewer) before the next call, and starts
    after one such pause, as people in a review do."""
    from gradio_client import Client

    def reviewer(number: int) -> list[dict]:
        client = Client(url, verbose=False)
        pauses = np.random.default_rng(number).exponential(think, calls) if think > 0 else np.zeros(calls)
        out = []
        for call in range(calls):
            time.sleep(pauses[call])
            if number < heavy:
                clip, prompt, kind = long_clips[number % len(long_clips)], "", "heavy"
            else:
                example = examples[(number + call) % len(examples)]
                clip, prompt, kind = example["path"], example["prompt"], "light"
            out.append({"kind": kind, **attribute_once(client, fresh_copy(clip, copies), prompt)})
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
    parser.add_argument("--think", type=float, default=15.0,
                        help="mean seconds a reviewer looks at a result before the next call, for the crowds run "
                             "with pauses (0: only back-to-back crowds)")
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
            copies = Path(temp) / "copies"
            copies.mkdir()
            attribute_once(warm, fresh_copy(examples[0]["path"], copies), "")  # the first call loads lazily
            single = [attribute_once(warm, fresh_copy(e["path"], copies), e["prompt"]) for e in examples]
            single_p50, single_p95 = percentiles([r["latency"] for r in single])
            rows = [{"reviewers": 1, "heavy": 0, "think s": 0.0, "calls": len(single), "light p50 s": single_p50,
                     "light p95 s": single_p95, "heavy p50 s": float("nan"), "heavy p95 s": float("nan"),
                     "light p95 / single": 1.0, "ETA error p50 s": float("nan"),
                     "ETA error p95 s": float("nan"), "errors": 0,
                     "peak memory MB": sampler.rss() / 1e6}]
            crowds = [(u, h, 0.0) for u in args.users for h in (0, args.heavy)]
            crowds += [(u, args.heavy, args.think) for u in args.users] if args.think > 0 else []
            for users, heavy_users, think in crowds:
                with MemorySampler(server.pid) as sampler:
                    start = time.perf_counter()
                    results = run_crowd(url, users, heavy_users, args.calls, examples, long_clips, think, copies)
                    wall = time.perf_counter() - start
                light = [r["latency"] for r in results if r["kind"] == "light" and not r["error"]]
                heavy = [r["latency"] for r in results if r["kind"] == "heavy" and not r["error"]]
                eta_error = [r["left"] - r["eta"] for r in results if r["eta"] is not None and not r["error"]]
                errors = [r["error"] for r in results if r["error"]]
                light_p50, light_p95 = percentiles(light)
                heavy_p50, heavy_p95 = percentiles(heavy)
                rows.append({"reviewers": users, "heavy": heavy_users, "think s": think, "calls": len(results), "light p50 s": light_p50,
                             "light p95 s": light_p95, "heavy p50 s": heavy_p50, "heavy p95 s": heavy_p95,
                             "light p95 / single": light_p95 / single_p95,
                             "ETA error p50 s": percentiles(eta_error)[0], "ETA error p95 s": percentiles(eta_error)[1],
                             "errors": len(errors), "peak memory MB": sampler.peak / 1e6})
                print(f"{users} reviewers ({heavy_users} heavy, think {think:g} s): {wall:.1f} s, errors {errors[:3]}",
                      flush=True)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
    notes = [f"Light reviewers attribute the demo's example clips; in the rows with heavy > 0, {args.heavy} "
             "reviewers instead each upload a "
             f"{HEAVY_SECONDS:g} s {HEAVY_SIZE[1]}×{HEAVY_SIZE[0]} clip at {HEAVY_FPS:g} fps whose motion is in its "
             "first 4 s (window chosen automatically). Every call uploads its clip and runs /attribute to the end, "
             "and every clip is one the server has not seen (a copy with a few unique bytes after its end, so "
             "nothing is served from the caches: each call decodes, estimates motion and takes its gradients), "
             "for the single reviewer and the crowds alike.",
             f"Server idle memory {idle / 1e6:.0f} MB. 'ETA error' is what was really left of a call when the server "
             "first announced an ETA for it, minus that ETA (positive: longer than announced; the upload before it "
             "is not part of the queue's estimate)."
             " Latency is the whole call as the reviewer waits for it, upload included. Memory is the resident set of "
             "the app process plus the memory unique to each child process (an encoder; a child between fork and "
             "exec shares the app's pages and would otherwise count them twice). Aim: light p95 within 2× the single reviewer's, peak < 2 GB, "
             "no error. Each crowd size runs once without heavy reviewers (the control: what the crowd alone "
             "costs on these cores) and once with them (what the long uploads add), back to back (think 0 s: "
             "every reviewer calls again the moment a result arrives, a stress test), and once more with the "
             f"heavy reviewers and a pause of {args.think:g} s on average between a reviewer's calls (think "
             "s), as in a review. Back to back, N reviewers keep N calls in flight on 2 cores, so no server can "
             "keep their p95 within 2× of one reviewer's: each call then waits for about N/2 others."]
    save("load", {"Concurrent reviewers: /attribute latency and server memory": rows}, notes)


if __name__ == "__main__":
    main()
