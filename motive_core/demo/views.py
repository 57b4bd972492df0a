"""Varied views of the demo's training clips: the same motion in other colours, at another pace, mirrored, reframed.

A recipe with ``DemoRecipe.views > 1`` trains the demo generator on each clip and on views that change what a
second renderer would change (bench_retrain measures whether attribution through such a model carries across
renderers). Every view keeps the clip's motion category and a caption that stays true of what it shows.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from motive_core.data import Clip
from motive_core.demo.model import DemoVideoModel
from motive_core.demo.motionshapes import COLORS, DIRECTION_WORDS
from motive_core.errors import MotiveError
from motive_core.video import read_video, standardize

CHANGES: tuple[str, ...] = ("colour", "timing", "mirror", "reframe")  # what a varied view may change
FIRST_CHANGES: tuple[str, ...] = CHANGES[:3]  # the views bench_retrain's first models were trained on
DENSE = 4  # views are resampled from the clip standardised at this many times the model's frame rate
# A mirrored view swaps each direction word for its opposite (stretch's words name an axis, not a side).
MIRRORED = {a: b for pair in (DIRECTION_WORDS["slide"], DIRECTION_WORDS["spin"]) for a, b in (pair, pair[::-1])}


def recolour(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colours remixed (a random channel permutation blended with a random mix), contrast and brightness
    jittered, and a fixed grain added: the look changes, every pixel's motion stays."""
    mix = np.eye(3)[rng.permutation(3)] * rng.uniform(0.6, 1.0) + rng.uniform(0.0, 0.25, (3, 3))
    out = frames.astype(np.float32) @ mix.T.astype(np.float32)
    mean = out.mean()
    out = (out - mean) * rng.uniform(0.7, 1.3) + mean + rng.uniform(-30, 30)
    out += rng.normal(0.0, rng.uniform(0.0, 8.0), out.shape[1:]).astype(np.float32)[None]
    return np.clip(out, 0, 255).round().astype(np.uint8)


def retime(dense: np.ndarray, num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """``num_frames`` frames read from ``dense`` at another pace (0.7–1.4×), start and easing (time ** 0.6–1.6);
    a view that runs past the clip's end holds its last frame."""
    last = len(dense) - 1
    speed, easing = rng.uniform(0.7, 1.4), rng.uniform(0.6, 1.6)
    span = last * speed
    start = rng.uniform(0.0, max(0.0, last - span))
    positions = start + span * np.linspace(0.0, 1.0, num_frames) ** easing
    return dense[np.clip(positions.round().astype(int), 0, last)]


def reframe(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The clip seen closer or farther and off-centre (zoom 0.6–1.25×, shift up to 15 % of the frame, edges
    extended): where the motion happens, how large the object is and how far it travels change, not which motion
    it is or which way it goes."""
    height, width = frames.shape[1:3]
    zoom = rng.uniform(0.6, 1.25)
    shift = rng.uniform(-0.15, 0.15, 2) * (width, height)
    matrix = np.float32([[zoom, 0, (1 - zoom) * width / 2 + shift[0]], [0, zoom, (1 - zoom) * height / 2 + shift[1]]])
    return np.stack([cv2.warpAffine(frame, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE) for frame in frames])


def mirror(frames: np.ndarray, text: str) -> tuple[np.ndarray, str]:
    """Left and right swapped, in the frames and in the caption's direction words."""
    return np.ascontiguousarray(frames[:, :, ::-1]), " ".join(MIRRORED.get(w, w) for w in text.split())


def without_colour(text: str) -> str:
    """A recoloured view's caption: 'an orange star spinning …' → 'a star spinning …' (no shape name starts
    with a vowel)."""
    words = text.split()
    return " ".join(["a", *words[2:]]) if len(words) > 1 and words[1] in COLORS else text


def training_views(model: DemoVideoModel, clips: list[Clip], views: int, seed: int,
                   changes: tuple[str, ...] = FIRST_CHANGES) -> tuple[torch.Tensor, list[str]]:
    """Every clip as the demo trains on it (view 0, what ``load_training_tensors`` gives) plus ``views − 1`` varied
    views, each with the ``changes`` named (of CHANGES): uint8 (N·views, 3, T, H, W) and their captions.
    Deterministic given ``seed``."""
    if not clips:
        raise MotiveError("no clips to train on")
    if views < 1:
        raise MotiveError(f"views must be at least 1, the clip itself (got {views})")
    unknown = sorted(set(changes) - set(CHANGES))
    if unknown or (views > 1 and not changes):
        raise MotiveError(f"view changes must be some of {', '.join(CHANGES)} (got {', '.join(changes) or 'none'})")
    g = model.geometry
    rng = np.random.default_rng(seed)
    frames, captions = [], []
    for clip in clips:
        video = read_video(clip.file)
        plain = standardize(video, g.num_frames, g.fps, g.height, g.width)
        frames.append(plain)
        captions.append(clip.caption)
        dense = standardize(video, g.num_frames * DENSE, g.fps * DENSE, g.height, g.width) if views > 1 else None
        for _ in range(views - 1):
            view, text = retime(dense, g.num_frames, rng) if "timing" in changes else plain, clip.caption
            if "reframe" in changes:
                view = reframe(view, rng)
            if "colour" in changes:
                view, text = recolour(view, rng), without_colour(text)
            if "mirror" in changes and rng.random() < 0.5:
                view, text = mirror(view, text)
            frames.append(view)
            captions.append(text)
    return torch.from_numpy(np.stack(frames)).permute(0, 4, 1, 2, 3).contiguous(), captions
