"""Motion masks (paper Eq. 13-14), motion statistics and mask overlays.

The mask W is soft and relative: min-max normalised over the whole clip, no threshold. Because a
near-static clip still spans [0, 1] after normalisation (paper §8.9), :func:`motion_stats` records the
raw magnitude and a camera-motion score (§8.8) so the UI can flag such clips.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from motive_core.errors import MotiveError
from motive_core.motion import MotionField

NEAR_STATIC_PX = 0.5
CAMERA_SCORE_THRESHOLD = 0.5
GREY = 128.0


def motion_mask(magnitude: np.ndarray, zeta: float = 1e-6) -> np.ndarray:
    """W = (M - min M) / (max M - min M + zeta), min/max over all frames and pixels (Eq. 13).

    A clip with no motion at all (M constant) gives W = 0 everywhere; zeta keeps it finite.
    """
    magnitude = np.asarray(magnitude, np.float64)
    if not np.isfinite(magnitude).all():
        raise MotiveError("The motion magnitude contains NaN or infinite values: the motion estimator failed "
                          "on this clip; try another estimator or re-export the clip.")
    low, high = magnitude.min(), magnitude.max()
    return ((magnitude - low) / (high - low + zeta)).astype(np.float32)


def latent_frame_groups(num_frames: int, temporal_factor: int, first_frame_alone: bool) -> list[range]:
    """Pixel frames behind each latent frame: Wan's VAE keeps frame 0 alone, then groups of 4 (§8.3).

    81 frames, factor 4, first alone → 21 groups [0], [1-4], ..., [77-80]; factor 1 → one frame each.
    """
    if temporal_factor < 1 or num_frames < 1:
        raise MotiveError(f"Cannot group {num_frames} frames by {temporal_factor}: both must be at least 1.")
    start = 1 if first_frame_alone else 0
    if (num_frames - start) % temporal_factor:
        rule = (f"{temporal_factor}n+1 frames (first frame alone, then groups of {temporal_factor})"
                if first_frame_alone else f"a multiple of {temporal_factor} frames")
        raise MotiveError(f"{num_frames} frames do not fit the model's frame grouping: it needs {rule}; "
                          "standardise the clip to such a frame count.")
    groups = [range(0, 1)] if first_frame_alone else []
    groups += [range(s, s + temporal_factor) for s in range(start, num_frames, temporal_factor)]
    return groups


def mask_to_latent(mask: np.ndarray, latent_shape: tuple[int, int, int], temporal_factor: int,
                   first_frame_alone: bool) -> np.ndarray:
    """W̃ on the latent grid (Eq. 14): mean over each VAE frame group, then a spatial resize.

    Bilinear as in the paper when the spatial factor is below 2; for larger factors (Wan's ÷8) area
    averaging, which is what bilinear approximates without aliasing (plain bilinear would sample only
    2x2 of each 8x8 block). Both are convex combinations, so values stay in [0, 1].
    """
    frames, height, width = latent_shape
    groups = latent_frame_groups(len(mask), temporal_factor, first_frame_alone)
    if len(groups) != frames:
        raise MotiveError(f"A {len(mask)}-frame mask makes {len(groups)} latent frames, but the model's latent "
                          f"grid has {frames}: standardise the clip to the model's frame count first.")
    pooled = np.stack([mask[g.start:g.stop].mean(axis=0) for g in groups]).astype(np.float32)
    src_h, src_w = pooled.shape[1:]
    large = src_h >= 2 * height or src_w >= 2 * width
    interpolation = cv2.INTER_AREA if large else cv2.INTER_LINEAR
    resized = np.stack([cv2.resize(frame, (width, height), interpolation=interpolation) for frame in pooled])
    return np.clip(resized, 0.0, 1.0)


# ------------------------------------------------------------------------------------------ statistics


@dataclass
class MotionStats:
    """Raw motion figures of a clip, kept beside the relative mask (paper §8.8-8.9)."""

    frames: int
    height: int
    width: int
    motion_mean: float
    motion_max: float
    per_frame_mean: list[float]
    camera_motion_score: float
    is_near_static: bool
    is_camera_motion: bool

    def to_dict(self) -> dict:
        return asdict(self)


def camera_motion_score(magnitude: np.ndarray) -> float:
    """How alike every pixel moves, in [0, 1]: 1 = uniform (a pan), 0 = motion concentrated.

    Per frame s_f = 1 - min(1, std(M_f) / mean(M_f)) (one minus the coefficient of variation of the
    magnitude, which equals that of W up to W's min offset); frames are averaged weighted by mean(M_f),
    so still frames do not count. Raw M rather than W: W's min subtraction would turn the tiny noise of
    a uniform pan into a full [0, 1] spread. A clip with no motion scores 0.
    """
    flat = magnitude.reshape(len(magnitude), -1).astype(np.float64)
    means = flat.mean(axis=1)
    if means.sum() <= 1e-9:
        return 0.0
    variation = flat.std(axis=1) / np.maximum(means, 1e-12)
    scores = 1.0 - np.minimum(1.0, variation)
    return float(np.sum(scores * means) / means.sum())


def motion_stats(field: MotionField) -> MotionStats:
    """Mean/max raw magnitude (px/frame), per-frame means and the camera-motion score of a clip.

    ``is_near_static``: max magnitude below NEAR_STATIC_PX (0.5 px/frame); ``is_camera_motion``: score
    at least CAMERA_SCORE_THRESHOLD (0.5) and not near-static.
    """
    magnitude = field.magnitude
    frames, height, width = magnitude.shape
    motion_max = float(magnitude.max())
    score = camera_motion_score(magnitude)
    near_static = motion_max < NEAR_STATIC_PX
    return MotionStats(frames=frames, height=height, width=width, motion_mean=float(magnitude.mean()),
                       motion_max=motion_max,
                       per_frame_mean=[float(v) for v in magnitude.mean(axis=(1, 2))],
                       camera_motion_score=score, is_near_static=bool(near_static),
                       is_camera_motion=bool(score >= CAMERA_SCORE_THRESHOLD and not near_static))


# -------------------------------------------------------------------------------------------- overlays


def _mask_like(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The mask as (T,H,W,1) float32 at the frames' size (bilinear when the mask is smaller)."""
    if mask.shape[0] != frames.shape[0]:
        raise MotiveError(f"The mask has {mask.shape[0]} frames but the clip has {frames.shape[0]}: "
                          "overlay a mask made for this clip.")
    height, width = frames.shape[1:3]
    mask = mask.astype(np.float32)
    if mask.shape[1:] != (height, width):
        mask = np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_LINEAR) for m in mask])
    return np.clip(mask, 0.0, 1.0)[..., None]


def grey_fade(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """W·frame + (1 - W)·grey: moving parts keep their colours, still parts fade to grey (paper Fig. 9)."""
    weight = _mask_like(frames, mask)
    out = weight * frames.astype(np.float32) + (1.0 - weight) * GREY
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def heatmap(frames: np.ndarray, mask: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The mask as an inferno colour map blended over the RGB frames with opacity ``alpha``."""
    weight = _mask_like(frames, mask)[..., 0]
    levels = np.rint(weight * 255).astype(np.uint8)
    colours = np.stack([cv2.cvtColor(cv2.applyColorMap(level, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
                        for level in levels])
    out = (1.0 - alpha) * frames.astype(np.float32) + alpha * colours.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
