"""The artifact world: which clips carry a planted motion artifact, and a detector that reads it off pixels.

A real defect arrives with one data source, so each artifact kind is tied to one motion (``PLANTED``):
a share of that motion's clips in a fine-tuning pool shakes (jitter) or freezes and jumps (stutter), and
nothing in their captions says so. The detector works on any clip, rendered or generated, from the
object's track alone (the centroid of what differs from the clip's median frame), so the same measure
tells whether a pool clip is planted and whether a model's generation shows the artifact.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from motive_core.demo.motionshapes import ARTIFACTS, ShapeSpec
from motive_core.errors import MotiveError

PLANTED: dict[str, str] = {"jitter": "bounce", "stutter": "swing"}  # artifact kind → the motion it arrives with
TRACK_SIZE = 32  # tracks are measured in pixels of a 32-px frame, whatever the clip's size
# Detector thresholds (pixels of a 32-px frame), set between clean and planted rendered clips
# (bench_artifact.py reports the rates they give):
JITTER_RESIDUAL = 1.0  # median flip of a point's offset from its neighbours' midpoint: a shake's zig-zag
STUTTER_STILL, STUTTER_JUMP = 0.35, 2.5  # two near-still steps, then a step this large


def plant_artifacts(specs: Sequence[ShapeSpec], share: float, seed: int) -> list[ShapeSpec]:
    """``specs`` with ``share`` of each ``PLANTED`` motion's static-camera clips given that motion's artifact.

    Which clips are planted is drawn with ``seed``; everything else about every spec stays as it was.
    """
    if not 0 < share <= 1:
        raise MotiveError(f"planted share must be in (0, 1] (got {share})")
    rng = np.random.default_rng(seed)
    out = list(specs)
    for kind, motion in PLANTED.items():
        candidates = [i for i, s in enumerate(out) if s.motion == motion and s.camera == "static"]
        count = int(round(share * sum(s.motion == motion for s in out)))
        for i in rng.choice(candidates, size=min(count, len(candidates)), replace=False):
            out[i] = replace(out[i], artifact=kind)
    return out


def object_track(frames: np.ndarray) -> np.ndarray:
    """(T, 2) centre (x, y) of what moves, in pixels of a TRACK_SIZE frame; NaN where nothing differs.

    The background is the per-pixel median over time (a moving object covers any pixel for a few frames
    only); a pixel's weight ramps from 0 to 1 as its colour distance from the background goes 30 → 120.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) < 4:
        raise ValueError(f"object_track needs (T, H, W, 3) frames with T ≥ 4, got {frames.shape}")
    pixels = frames.astype(np.float32)
    distance = np.abs(pixels - np.median(pixels, axis=0)).sum(-1)
    weight = np.clip((distance - 30.0) / 90.0, 0.0, 1.0)
    ys, xs = np.mgrid[0:frames.shape[1], 0:frames.shape[2]].astype(np.float32)
    total = weight.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.stack([(weight * xs).sum(axis=(1, 2)) / total, (weight * ys).sum(axis=(1, 2)) / total], axis=1)
    centre[total < 1.0] = np.nan
    return (centre + 0.5) * (TRACK_SIZE / np.array([frames.shape[2], frames.shape[1]], np.float32))


def jitter_flips(track: np.ndarray) -> np.ndarray:
    """(T − 3,) size (px) of the frame-to-frame flip of each point's offset from its neighbours' midpoint
    (NaN where the object was not found): the shake, frame by frame."""
    offset = track[1:-1] - (track[:-2] + track[2:]) / 2
    return np.linalg.norm(offset[1:] - offset[:-1], axis=1) / 2


def jitter_score(track: np.ndarray) -> float:
    """Median of :func:`jitter_flips`.

    A shake puts the object ~2× its amplitude off that midpoint, on alternate sides every frame, so the
    offset flips by ~4× the amplitude; a smooth path, curved or not, changes its offset slowly, and a few
    sharp turns (a bounce's floor contacts) miss the median.
    """
    flip = jitter_flips(track)
    flip = flip[np.isfinite(flip)]
    return float(np.median(flip)) if len(flip) else 0.0


def stutter_score(track: np.ndarray) -> float:
    """Largest step (px) that follows two near-still steps (< STUTTER_STILL px each); 0 if none does, or if
    the object hardly moves at all (median step < 2 × STUTTER_STILL: an object in place is not stuttering)."""
    steps = np.linalg.norm(np.diff(track, axis=0), axis=1)
    moving = steps[np.isfinite(steps)]
    best = 0.0
    if len(moving) == 0 or np.median(moving) < 2 * STUTTER_STILL:
        return best
    for t in range(2, len(steps)):
        window = steps[t - 2:t + 1]
        if np.all(np.isfinite(window)) and window[0] < STUTTER_STILL and window[1] < STUTTER_STILL:
            best = max(best, float(window[2]))
    return best


@dataclass(frozen=True)
class ArtifactReading:
    """What the detector read off one clip: both scores and the verdict."""

    jitter: float
    stutter: float

    @property
    def kind(self) -> str:
        """"jitter", "stutter" or "none" (jitter first: a shaking object is never still for two steps)."""
        if self.jitter >= JITTER_RESIDUAL:
            return "jitter"
        if self.stutter >= STUTTER_JUMP:
            return "stutter"
        return "none"


def detect_artifact(frames: np.ndarray) -> ArtifactReading:
    """Read both artifacts off a clip's object track (frames at the model's geometry: one step = one tick)."""
    track = object_track(frames)
    return ArtifactReading(jitter=jitter_score(track), stutter=stutter_score(track))


def artifact_rate(readings: Sequence[ArtifactReading], kind: str) -> float:
    """Share of readings whose verdict is ``kind``."""
    if kind not in ARTIFACTS:
        raise ValueError(f"kind must be one of {', '.join(ARTIFACTS)} (got {kind!r})")
    return float(np.mean([r.kind == kind for r in readings])) if readings else float("nan")
