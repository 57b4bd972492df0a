"""Which part of a long query clip to attribute: the window with the most motion, found cheaply.

A model sees ``num_frames`` frames at its own fps (a few seconds), so a longer clip is attributed on one
window of that span. Taking the centre silently misses motion elsewhere (a 20 s clip that moves only in
its first 4 s would look static). Instead the whole clip is scanned once at a tiny size (long side
``SCAN_SIDE`` px, sampled at the model's fps), its grey-level change per step is summed over every
window, and the largest sum wins. Only the chosen window is then decoded in full.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from motive_core.errors import MotiveError
from motive_core.video import read_video, resample_indices

SCAN_SIDE = 64
MOTION_FLOOR = 0.5  # mean absolute grey-level change per step (0-255) below which a scan step is still


@dataclass
class MotionProfile:
    """Mean absolute grey-level change between consecutive scan samples, at ``times`` (s, step midpoints)."""

    times: np.ndarray
    change: np.ndarray
    duration: float
    step: float

    def window_change(self, start: float, span: float) -> float:
        """Mean change inside [start, start + span) (0 when no step falls inside)."""
        inside = (self.times >= start) & (self.times < start + span)
        return float(self.change[inside].mean()) if inside.any() else 0.0


def motion_profile(path: str | Path, fps: float, max_seconds: float, side: int = SCAN_SIDE) -> MotionProfile:
    """Scan the whole clip at ``side`` px and ``fps`` samples per second (cheap: no motion estimation)."""
    video = read_video(path, max_seconds=max_seconds, max_side=side)
    samples = max(2, math.floor(video.duration * fps))
    index, _ = resample_indices(len(video.frames), video.fps, samples, fps)
    grey = video.frames[index].astype(np.float32).mean(axis=-1)
    change = np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2))
    times = video.start + (index[:-1] + index[1:]) / 2 / video.fps
    return MotionProfile(times, change, video.start + video.duration, 1.0 / fps)


def latest_start(duration: float, span: float) -> float:
    """The last start at which a whole window of ``span`` seconds fits in the clip."""
    return max(0.0, duration - span)


def most_moving_start(profile: MotionProfile, span: float) -> float:
    """Start (s) of the ``span``-second window with the largest summed change; the earliest on ties."""
    last = latest_start(profile.duration, span)
    if last <= 0 or len(profile.change) == 0:
        return 0.0
    candidates = np.arange(0.0, last + 1e-9, profile.step)
    totals = [profile.change[(profile.times >= s) & (profile.times < s + span)].sum() for s in candidates]
    return float(round(candidates[int(np.argmax(totals))], 3))


def check_start(start: float, duration: float, span: float) -> None:
    """Refuse a window start outside the clip (the window must fit: 0 ≤ start ≤ duration − span)."""
    last = latest_start(duration, span)
    if not math.isfinite(start) or start < 0 or start > last + 1e-6:
        raise MotiveError(f"The window start must be between 0 and {last:.2f} s for this {duration:.2f} s clip "
                          f"(the model attributes a {span:.2f} s window); got {start:g} s. Leave it empty to use "
                          "the window with the most motion.")


def motion_elsewhere(profile: MotionProfile, start: float, span: float) -> float | None:
    """When the window is still but the clip moves elsewhere, the start of its most moving window; else None."""
    best = most_moving_start(profile, span)
    inside, peak = profile.window_change(start, span), profile.window_change(best, span)
    if peak >= MOTION_FLOOR and peak > 4 * inside and abs(best - start) >= profile.step:
        return best
    return None


def outside_window_message(start: float, span: float, duration: float, best: float) -> str:
    """What to tell a user whose window is still while the clip moves elsewhere (not 'the clip is static')."""
    return (f"The motion lies outside the attributed window ({start:.2f}–{start + span:.2f} s of this "
            f"{duration:.2f} s clip): the window itself barely moves, but the clip moves most at "
            f"{best:.2f}–{best + span:.2f} s. Set the window start to {best:.2f} s, or leave it empty to use the "
            "window with the most motion.")
