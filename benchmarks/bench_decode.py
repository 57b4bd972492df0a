"""Per-clip decode time of the demo index build: in-process PyAV (read_video) vs the former ffmpeg subprocess.

The former path probed each clip with `ffmpeg -i` (parsing its report) and decoded it through a second
ffmpeg process piping raw RGB; it is rebuilt here from the bundled imageio-ffmpeg binary as the baseline.
Both read the same demo clips, interleaved clip by clip in one run so machine load hits both alike; the
table gives the median and mean milliseconds per clip, the speed-up, and the largest pixel difference
between the two decoders' frames. A second table times a 5 s window of a long clip against reading it
whole. Saves benchmarks/results/decode.{json,md}.
Run from the repository root: python -m benchmarks.bench_decode [--clips 120]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from benchmarks.common.results import DEMO_CLIPS, REPO, save
from motive_core.video import read_video

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def subprocess_read(path: Path) -> np.ndarray:
    """The former decoder: `ffmpeg -i` for the size (stderr parsed), then a piped rawvideo decode."""
    report = subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True,
                            text=True, errors="replace").stderr
    line = next(line for line in report.splitlines() if re.search(r"Stream #\S+.*: Video: ", line))
    width, height = map(int, re.search(r"[\s,](\d+)x(\d+)[\s,\[]", line + " ").groups())
    reader = imageio_ffmpeg.read_frames(str(path), input_params=["-nostdin"])
    w, h = next(reader)["size"]
    frames = [np.frombuffer(buffer, np.uint8).reshape(h, w, 3) for buffer in reader]
    reader.close()
    assert (w, h) == (width, height)
    return np.stack(frames)


def per_clip(clips: list[Path]) -> tuple[list[dict], dict]:
    """Milliseconds per clip for both decoders, interleaved, and the largest frame difference."""
    old, new, worst = [], [], 0
    for path in clips:
        start = time.perf_counter()
        reference = subprocess_read(path)
        old.append(time.perf_counter() - start)
        start = time.perf_counter()
        frames = read_video(path).frames
        new.append(time.perf_counter() - start)
        worst = max(worst, int(np.abs(frames.astype(np.int16) - reference).max()))
    rows = [{"decoder": name, "clips": len(times), "median ms per clip": 1000 * statistics.median(times),
             "mean ms per clip": 1000 * statistics.mean(times)}
            for name, times in (("ffmpeg subprocess (before)", old), ("PyAV in process (read_video)", new))]
    summary = {"speed-up (median)": statistics.median(old) / statistics.median(new),
               "speed-up (mean)": statistics.mean(old) / statistics.mean(new), "largest pixel difference": worst}
    return rows, summary


def window_rows(folder: Path) -> list[dict]:
    """A 5 s window 100 s into a 120 s, 320x240, 16 fps clip vs decoding the whole clip."""
    path = folder / "long.mp4"
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=320x240:rate=16", "-t", "120", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", str(path)], check=True)
    rows = []
    for label, kwargs in (("whole clip (120 s)", {}), ("window start=100 s, duration=5 s", {"start": 100.0, "duration": 5.0})):
        start = time.perf_counter()
        video = read_video(path, **kwargs)
        rows.append({"read": label, "frames": len(video.frames), "seconds": time.perf_counter() - start})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=120, help="demo clips to read (of precomputed/clips)")
    args = parser.parse_args()
    clips = sorted(DEMO_CLIPS.glob("*.mp4"))[: args.clips]
    if not clips:
        raise SystemExit(f"no demo clips in {DEMO_CLIPS.relative_to(REPO)}: run `python -m motive_core demo` first")
    load_before = os.getloadavg()[0]
    read_video(clips[0]), subprocess_read(clips[0])  # warm both (imports, page cache)
    rows, summary = per_clip(clips)
    for row in rows:
        print(row, flush=True)
    with tempfile.TemporaryDirectory() as folder:
        windows = window_rows(Path(folder))
    load_after = os.getloadavg()[0]
    notes = [f"Demo clips from precomputed/clips (32 frames, 64x64, H.264), read in name order, the two decoders "
             f"interleaved clip by clip in one run. Speed-up {summary['speed-up (median)']:.1f}x by median, "
             f"{summary['speed-up (mean)']:.1f}x by mean; the largest pixel difference between their frames is "
             f"{summary['largest pixel difference']} (same FFmpeg decoder and colour conversion). Load average "
             f"(1 min) {load_before:.1f} before and {load_after:.1f} after, on a 2-core machine shared with other "
             "jobs."]
    save("decode", {"Per-clip decode time of the demo index build": rows,
                    "Reading a window of a long clip": windows}, notes, {"summary": summary})


if __name__ == "__main__":
    main()
