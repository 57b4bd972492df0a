"""MotionShapes: the demo world's procedurally rendered clips of the paper's ten motion categories.

Every motion has its own trajectory or deformation over time, so the categories differ by motion alone,
while appearance (shape, colour, background pattern and palette, size, position, direction) is drawn
independently of the motion: a retrieval that ranks same-motion clips first cannot be riding on looks.
Some appearance values are held out of training so that evaluation queries can show unseen looks.
Frames are drawn anti-aliased at 4x the output size and area-averaged down.
A spec may carry a planted motion artifact (jitter or stutter, see ``ARTIFACTS``): a defect of the clip,
never of its caption; clean specs render exactly as they did before artifacts existed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from motive_core.data import Clip, load_clip_folder, write_metadata
from motive_core.errors import MotiveError
from motive_core.video import write_mp4

MOTIONS: tuple[str, ...] = ("compress", "bounce", "roll", "explode", "float", "free_fall", "slide", "spin",
                            "stretch", "swing")
STATIC = "static"
MOTION_WORDS: dict[str, str] = {
    "compress": "compressing", "bounce": "bouncing", "roll": "rolling", "explode": "exploding",
    "float": "floating", "free_fall": "falling", "slide": "sliding", "spin": "spinning",
    "stretch": "stretching", "swing": "swinging", STATIC: "resting"}
# The word after the motion word for ShapeSpec.direction +1 and -1: the way the object first moves.
# Without it these motions are two-way in the captions (a slide goes left or right at random), and a small
# generator prompted with "sliding" learns the mean of both ways, an object that stays in place.
DIRECTION_WORDS: dict[str, tuple[str, str]] = {
    "bounce": ("right", "left"), "roll": ("right", "left"), "slide": ("right", "left"),
    "swing": ("left", "right"), "spin": ("clockwise", "anticlockwise"), "stretch": ("horizontally", "vertically")}
COLORS: dict[str, tuple[int, int, int]] = {  # RGB, bright enough to stand out on every (dark) background
    "red": (230, 40, 40), "orange": (250, 140, 20), "yellow": (245, 225, 40), "green": (40, 190, 60),
    "cyan": (30, 210, 230), "blue": (50, 100, 250), "purple": (150, 70, 230), "pink": (250, 120, 190),
    "white": (245, 245, 245), "lime": (170, 240, 40)}
SHAPES: tuple[str, ...] = ("square", "circle", "triangle", "diamond", "hexagon", "star", "pentagon", "cross")
BACKGROUNDS: tuple[str, ...] = ("plain", "stripes", "checks", "noise", "gradient", "dots")
PALETTES: tuple[tuple[tuple[int, int, int], tuple[int, int, int]], ...] = (  # (base, pattern) RGB
    ((28, 32, 70), (62, 74, 140)), ((38, 38, 42), (96, 96, 104)),
    ((26, 58, 40), (62, 110, 78)), ((70, 30, 36), (128, 66, 72)))
LABEL_KEYS: tuple[str, ...] = ("motion", "shape", "color", "background", "camera")

_BACKGROUND_WORDS = {"plain": "plain", "stripes": "striped", "checks": "checkered", "noise": "noisy",
                     "gradient": "gradient", "dots": "dotted"}
MIN_SIZE, MAX_SIZE = 0.05, 0.22  # object radius as a fraction of the frame; larger ones leave the frame
SIZES = (0.16, 0.2)  # radii drawn for datasets: 5–6 px at 32 px, big enough for a small model to draw
_SUPERSAMPLE = 4
_SHIFT = 4  # fractional bits for sub-pixel polygon vertices
_PERIOD = 1 / 8  # texture period as a fraction of the frame: 8 px at 64, 4 px at 32
_PAN_TRAVEL = 0.4  # background travel during a pan, as a fraction of the frame width
_EXPLODE_AT = 0.3  # clip fraction at which an exploding object breaks apart
_STRING_RGB = (215, 215, 215)
# Planted artifacts live on a grid of ARTIFACT_TICKS instants spread over the clip (the demo model's 16
# frames): a clip rendered at any frame count and resampled to the model's geometry keeps them intact.
ARTIFACTS: tuple[str, ...] = ("none", "jitter", "stutter")
ARTIFACT_TICKS = 16
JITTER_SHIFT = 0.06  # jitter: sideways shake of ±6 % of the frame (±1.9 px at 32 px), flipping every tick
STUTTER_TICKS = (7, 11)  # stutter: frozen at tick 7's pose through tick 10, back on its path at tick 11


@dataclass(frozen=True)
class Appearance:
    """The shape, colour and background values a set of clips may draw from."""

    shapes: tuple[str, ...]
    colors: tuple[str, ...]
    backgrounds: tuple[str, ...]


def train_appearance() -> Appearance:
    """Appearance values used for training clips (everything except the held-out values)."""
    held = heldout_appearance()
    return Appearance(tuple(s for s in SHAPES if s not in held.shapes),
                      tuple(c for c in COLORS if c not in held.colors),
                      tuple(b for b in BACKGROUNDS if b not in held.backgrounds))


def heldout_appearance() -> Appearance:
    """Appearance values never seen in training: evaluation queries drawn from them look new."""
    return Appearance(shapes=("pentagon", "cross"), colors=("white", "lime"), backgrounds=("dots",))


@dataclass(frozen=True)
class ShapeSpec:
    """Everything that determines one clip; rendering is a pure function of it.

    ``size`` is the object's radius (of the equal-area circle) as a fraction of the frame; ``jitter``
    moves the start position within a safe range ([-1, 1] each); ``direction`` (+1/-1) picks left/right
    travel, spin sense, swing side, or (stretch) horizontal/vertical; ``palette`` indexes PALETTES;
    ``seed`` fixes the rest (orientation, texture layout, fragments, pan direction).
    """

    motion: str
    shape: str
    color: str
    background: str
    camera: str = "static"
    size: float = 0.12
    jitter: tuple[float, float] = (0.0, 0.0)
    direction: int = 1
    palette: int = 0
    seed: int = 0
    # Kept out of repr so that names derived from clean specs' reprs (benchmark caches) stay as they were.
    artifact: str = field(default="none", repr=False)

    def __post_init__(self) -> None:
        checks = {"motion": (self.motion, MOTIONS + (STATIC,)), "shape": (self.shape, SHAPES),
                  "color": (self.color, tuple(COLORS)), "background": (self.background, BACKGROUNDS),
                  "camera": (self.camera, ("static", "pan")), "direction": (self.direction, (1, -1)),
                  "palette": (self.palette, tuple(range(len(PALETTES)))), "artifact": (self.artifact, ARTIFACTS)}
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise MotiveError(f"ShapeSpec {name}={value!r} is not one of {', '.join(map(str, allowed))}")
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise MotiveError(f"ShapeSpec size={self.size} must be between {MIN_SIZE} and {MAX_SIZE} "
                              "(fraction of the frame)")
        if len(self.jitter) != 2 or max(abs(j) for j in self.jitter) > 1:
            raise MotiveError(f"ShapeSpec jitter={self.jitter} must be two numbers in [-1, 1]")

    def labels(self) -> dict[str, str]:
        """The label fields written to metadata.jsonl (``artifact`` only when one is planted)."""
        planted = {"artifact": self.artifact} if self.artifact != "none" else {}
        return {**{key: getattr(self, key) for key in LABEL_KEYS}, **planted}


def motion_phrase(spec: ShapeSpec) -> str:
    """The motion word, and its direction word where the motion has one: 'sliding left', 'falling'."""
    words = DIRECTION_WORDS.get(spec.motion)
    return MOTION_WORDS[spec.motion] + (f" {words[0 if spec.direction == 1 else 1]}" if words else "")


def caption(spec: ShapeSpec) -> str:
    """The clip's text prompt, e.g. 'a red square bouncing left on a striped background'."""
    article = "an" if spec.color[0] in "aeiou" else "a"
    text = (f"{article} {spec.color} {spec.shape} {motion_phrase(spec)} "
            f"on a {_BACKGROUND_WORDS[spec.background]} background")
    return text + (", camera panning" if spec.camera == "pan" else "")


# ---------------------------------------------------------------- shapes (unit: equal-area radius 1)

def _regular(corners: int, start_deg: float, radii: Sequence[float] = (1.0,)) -> np.ndarray:
    count = corners * len(radii)
    angles = np.deg2rad(start_deg) + 2 * np.pi * np.arange(count) / count
    radius = np.resize(np.asarray(radii, float), count)
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _cross(half_width: float = 0.32) -> np.ndarray:
    w = half_width
    return np.array([(w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w),
                     (-w, -w), (-w, -1)], float)


def _unit_area(points: np.ndarray) -> np.ndarray:
    """Scale a polygon to the area of the unit circle, so every shape of one size covers as many pixels."""
    x, y = points[:, 0], points[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    return points * np.sqrt(np.pi / area)


_OUTLINES = {name: _unit_area(points) for name, points in {
    "square": _regular(4, 45), "circle": _regular(48, 0), "triangle": _regular(3, -90),
    "diamond": _regular(4, -90) * (0.7, 1.0), "hexagon": _regular(6, 0), "star": _regular(5, -90, (1.0, 0.45)),
    "pentagon": _regular(5, -90), "cross": _cross()}.items()}


def _radius_at(outline: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Distance from the centre to the outline along each angle (every outline is star-shaped)."""
    ray = np.stack([np.cos(angles), np.sin(angles)], axis=1)[:, None, :]
    p, q = outline, np.roll(outline, -1, axis=0)
    edge = q - p
    denom = ray[..., 0] * edge[:, 1] - ray[..., 1] * edge[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (p[:, 0] * edge[:, 1] - p[:, 1] * edge[:, 0]) / denom
        s = (p[:, 0] * ray[..., 1] - p[:, 1] * ray[..., 0]) / denom
    t = np.where((s >= 0) & (s <= 1) & (t > 0), t, np.inf)
    return t.min(axis=1)


def _marking(outline: np.ndarray) -> np.ndarray:
    """An off-centre wedge pointing along local +x: it makes rotation visible on every shape."""
    reach = _radius_at(outline, np.zeros(1))[0]
    return np.array([(-0.1, -0.34), (0.85, 0.0), (-0.1, 0.34)]) * reach


def _fragments(outline: np.ndarray, sectors: int = 10, arc: int = 3) -> list[np.ndarray]:
    """Cut the outline into pie pieces, each split into an inner and an outer part."""
    pieces = []
    for k in range(sectors):
        angles = 2 * np.pi * (k + np.linspace(0, 1, arc + 1)) / sectors
        edge = _radius_at(outline, angles)[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        pieces.append(np.vstack([[0.0, 0.0], 0.5 * edge]))
        pieces.append(np.vstack([edge, 0.5 * edge[::-1]]))
    return pieces


# ---------------------------------------------------------------- motions

@dataclass(frozen=True)
class _Pose:
    """Object centre (fraction of frame), scale along screen x/y, and rotation (radians, clockwise)."""

    x: float
    y: float
    sx: float = 1.0
    sy: float = 1.0
    angle: float = 0.0


@dataclass(frozen=True)
class _Extent:
    """How far the object reaches from its centre (fraction of frame): in any direction, up, and down."""

    reach: float
    above: float
    below: float


def _bounce(spec: ShapeSpec, ext: _Extent, tau: float) -> _Pose:
    """Parabolic arcs from a drop height, reversing at the floor twice, drifting sideways a little."""
    floor = 0.95 - ext.below
    top = 0.08 + ext.above + 0.06 * (spec.jitter[1] + 1)
    phase = 2 * tau + 0.5
    height = 4 * (phase % 1) * (1 - phase % 1) * 0.8 ** np.floor(phase)
    x = 0.5 + 0.1 * spec.jitter[0] + spec.direction * 0.2 * (tau - 0.5)
    return _Pose(x, floor - (floor - top) * height)


def _free_fall(spec: ShapeSpec, ext: _Extent, tau: float) -> _Pose:
    """Released at the top, accelerating all the way down, lying at the bottom at the end."""
    top, floor = 0.04 + ext.above, 0.96 - ext.below
    return _Pose(0.5 + 0.25 * spec.jitter[0], top + (floor - top) * tau ** 2)


def _float(spec: ShapeSpec, ext: _Extent, tau: float) -> _Pose:
    """A slow rise with a gentle sideways sway, bob and rocking."""
    sway = np.sin(2 * np.pi * tau)
    y = 0.96 - ext.below - 0.04 * (spec.jitter[1] + 1) - 0.36 * tau + 0.02 * np.sin(4 * np.pi * tau)
    return _Pose(0.5 + 0.18 * spec.jitter[0] + spec.direction * 0.07 * sway, y, angle=0.15 * sway)


def _travel_x(spec: ShapeSpec, tau: float) -> float:
    return 0.5 + spec.direction * 0.28 * (2 * tau - 1)


def _slide(spec: ShapeSpec, ext: _Extent, tau: float) -> _Pose:
    """Constant-speed horizontal translation, no rotation."""
    return _Pose(_travel_x(spec, tau), 0.64 + 0.12 * spec.jitter[1])


def _roll(spec: ShapeSpec, ext: _Extent, tau: float) -> _Pose:
    """Horizontal translation turning as it goes: rotation = distance / radius (rolling without slipping)."""
    x = _travel_x(spec, tau)
    return _Pose(x, 0.64 + 0.12 * spec.jitter[1], angle=(x - _travel_x(spec, 0.0)) / spec.size)


def _spin(spec: ShapeSpec, ext: _Extent, tau: float) -> _Pose:
    """Rotation in place, one and a quarter turns."""
    return _Pose(0.5 + 0.15 * spec.jitter[0], 0.5 + 0.15 * spec.jitter[1],
                 angle=spec.direction * 2.5 * np.pi * tau)


def _compress(spec: ShapeSpec, ext: _Extent, tau: float) -> _Pose:
    """Squashed from above twice: height shrinks, width grows, the bottom stays put."""
    squash = np.sin(2 * np.pi * tau) ** 2
    sy, bottom = 1 - 0.55 * squash, 0.8 + 0.1 * spec.jitter[1]
    return _Pose(0.5 + 0.15 * spec.jitter[0], bottom - ext.below * sy, sx=1 + 0.5 * squash, sy=sy)


def _stretch(spec: ShapeSpec, ext: _Extent, tau: float) -> _Pose:
    """One slow elongation about the centre and back: horizontal (direction +1) or vertical (-1)."""
    pull = np.sin(np.pi * tau) ** 2
    long, thin = 1 + 0.9 * pull, 1 - 0.25 * pull
    sx, sy = (long, thin) if spec.direction == 1 else (thin, long)
    return _Pose(0.5 + 0.06 * spec.jitter[0], 0.5 + 0.06 * spec.jitter[1], sx=sx, sy=sy)


_PIVOT, _STRING = (0.5, 0.05), 0.46


def _swing(spec: ShapeSpec, ext: _Extent, tau: float) -> _Pose:
    """A pendulum hanging from a pivot: one and a quarter swings of ±38°, turning with the string."""
    theta = spec.direction * np.deg2rad(38) * np.cos(2 * np.pi * 1.25 * tau)
    return _Pose(_PIVOT[0] + _STRING * np.sin(theta), _PIVOT[1] + _STRING * np.cos(theta), angle=-theta)


def _explode(spec: ShapeSpec, ext: _Extent, tau: float) -> _Pose:
    """In place, swelling slightly before it bursts (the burst itself is drawn by the renderer)."""
    swell = 1 + 0.15 * min(tau / _EXPLODE_AT, 1.0) ** 2
    return _Pose(0.5 + 0.12 * spec.jitter[0], 0.5 + 0.12 * spec.jitter[1], sx=swell, sy=swell)


def _static(spec: ShapeSpec, ext: _Extent, tau: float) -> _Pose:
    return _Pose(0.5 + 0.25 * spec.jitter[0], 0.5 + 0.25 * spec.jitter[1])


_POSES: dict[str, Callable[[ShapeSpec, _Extent, float], _Pose]] = {
    "compress": _compress, "bounce": _bounce, "roll": _roll, "explode": _explode, "float": _float,
    "free_fall": _free_fall, "slide": _slide, "spin": _spin, "stretch": _stretch, "swing": _swing, STATIC: _static}


# ---------------------------------------------------------------- rendering

def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _place(local: np.ndarray, pose: _Pose, radius: float) -> np.ndarray:
    """Local unit coordinates → frame fractions: rotate, scale along the screen axes, move."""
    return (local @ _rotation(pose.angle).T) * (pose.sx * radius, pose.sy * radius) + (pose.x, pose.y)


def _marking_rgb(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (25, 25, 25) if luma > 140 else (240, 240, 240)


def _segment(a: np.ndarray, b: np.ndarray, half_width: float) -> np.ndarray:
    normal = np.array([a[1] - b[1], b[0] - a[0]])
    normal *= half_width / max(np.hypot(*normal), 1e-9)
    return np.array([a + normal, b + normal, b - normal, a - normal])


class _Scene:
    """Per-clip constants (orientation, colours, fragment paths) and the polygons for one instant."""

    def __init__(self, spec: ShapeSpec):
        rng = np.random.default_rng([spec.seed, 1])
        turn = _rotation(rng.uniform(0, 2 * np.pi)).T
        self.spec = spec
        self.outline = _OUTLINES[spec.shape] @ turn
        self.mark = _marking(_OUTLINES[spec.shape]) @ turn
        self.extent = _Extent(spec.size * np.hypot(*self.outline.T).max(), -spec.size * self.outline[:, 1].min(),
                              spec.size * self.outline[:, 1].max())
        self.rgb = COLORS[spec.color]
        self.mark_rgb = _marking_rgb(self.rgb)
        self.pieces = _fragments(self.outline)
        self.centres = np.array([piece.mean(axis=0) for piece in self.pieces])
        self.flight = rng.uniform(0.4, 0.6, len(self.pieces)) * np.hypot(*self.centres.T)
        self.tumble = rng.uniform(-4, 4, len(self.pieces))

    def polygons(self, tau: float) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
        """(polygon in frame fractions, RGB) to fill, back to front."""
        spec = self.spec
        tick = int(np.floor(tau * (ARTIFACT_TICKS - 1) + 0.5))
        if spec.artifact == "stutter" and STUTTER_TICKS[0] <= tick < STUTTER_TICKS[1]:
            tau = STUTTER_TICKS[0] / (ARTIFACT_TICKS - 1)
        pose = _POSES[spec.motion](spec, self.extent, tau)
        if spec.artifact == "jitter":
            pose = replace(pose, x=pose.x + (JITTER_SHIFT if tick % 2 == 0 else -JITTER_SHIFT))
        if spec.motion == "explode" and tau > _EXPLODE_AT:
            return self._burst(pose, (tau - _EXPLODE_AT) / (1 - _EXPLODE_AT))
        parts = []
        if spec.motion == "swing":
            pivot = np.array(_PIVOT)
            parts += [(_segment(pivot, np.array([pose.x, pose.y]), 0.012), _STRING_RGB),
                      (pivot + _regular(12, 0) * 0.025, _STRING_RGB)]
        return parts + [(_place(self.outline, pose, spec.size), self.rgb),
                        (_place(self.mark, pose, spec.size), self.mark_rgb)]

    def _burst(self, pose: _Pose, progress: float) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
        """Fragments flying radially outward, fast at first, each tumbling about its own centre."""
        travel = 1 - (1 - progress) ** 2
        radius = self.spec.size * pose.sx
        parts = []
        for piece, centre, flight, tumble in zip(self.pieces, self.centres, self.flight, self.tumble):
            heading = centre / max(np.hypot(*centre), 1e-9)
            local = (piece - centre) @ _rotation(tumble * progress).T
            where = np.array([pose.x, pose.y]) + centre * radius + heading * flight * travel
            parts.append((local * radius + where, self.rgb))
        return parts


def _background(spec: ShapeSpec, height: int, width: int) -> np.ndarray:
    """The pattern at render resolution; a pan renders it wider and slides a window across."""
    rng = np.random.default_rng([spec.seed, 2])
    base, ink = (np.array(c, np.float32) for c in PALETTES[spec.palette])
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) / height  # in frame heights
    angle = rng.uniform(0.6, 1.2) if spec.background in ("stripes", "gradient") else 0.0
    u = x * np.cos(angle) + y * np.sin(angle)  # never horizontal stripes, so a horizontal pan shows
    if spec.background == "plain":
        weight = np.zeros_like(x)
    elif spec.background == "stripes":
        weight = (u % _PERIOD < _PERIOD / 2).astype(np.float32)
    elif spec.background == "checks":
        weight = ((np.floor(x / _PERIOD) + np.floor(y / _PERIOD)) % 2).astype(np.float32)
    elif spec.background == "noise":
        cell = height // 16
        grid = rng.random((-(-height // cell), -(-width // cell))).astype(np.float32)
        weight = np.repeat(np.repeat(grid, cell, axis=0), cell, axis=1)[:height, :width]
    elif spec.background == "gradient":
        ramp = u / (np.cos(angle) + np.sin(angle))  # 0 → 1 across the frame's diagonal
        weight = 1 - np.abs(ramp % 2 - 1)
    else:  # dots
        near = np.hypot((x % _PERIOD) - _PERIOD / 2, (y % _PERIOD) - _PERIOD / 2)
        weight = (near < 0.035).astype(np.float32)
    image = base + weight[..., None] * (ink - base)
    return np.ascontiguousarray(np.round(image).astype(np.uint8))


def _pan_offsets(spec: ShapeSpec, num_frames: int, extra: int) -> list[int]:
    """Window offset (render pixels) per frame; sense from the seed, independent of the object's direction."""
    sense = 1 if np.random.default_rng([spec.seed, 3]).random() < 0.5 else -1
    steps = np.round(np.linspace(0, extra, num_frames)).astype(int)
    return list(steps if sense == 1 else extra - steps)


def render_clip(spec: ShapeSpec, num_frames: int = 32, size: int = 64) -> np.ndarray:
    """Render a clip as (T, H, W, 3) uint8 RGB; the whole motion spans the clip whatever its length."""
    if num_frames < 2 or size < 8:
        raise MotiveError(f"render_clip needs at least 2 frames and 8 pixels (got {num_frames} frames, {size} px)")
    full = size * _SUPERSAMPLE
    extra = int(round(_PAN_TRAVEL * full)) if spec.camera == "pan" else 0
    background = _background(spec, full, full + extra)
    scene = _Scene(spec)
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    scale = full * (1 << _SHIFT)
    for t, offset in enumerate(_pan_offsets(spec, num_frames, extra)):
        canvas = background[:, offset:offset + full].copy()
        for polygon, rgb in scene.polygons(t / (num_frames - 1)):
            cv2.fillPoly(canvas, [np.round(polygon * scale).astype(np.int32)], rgb, cv2.LINE_AA, _SHIFT)
        frames[t] = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    return frames


# ---------------------------------------------------------------- datasets

def _appearance(appearance: str | Appearance) -> Appearance:
    if isinstance(appearance, Appearance):
        return appearance
    if appearance == "train":
        return train_appearance()
    if appearance == "heldout":
        return heldout_appearance()
    raise MotiveError(f"appearance must be 'train', 'heldout' or an Appearance, not {appearance!r}")


def _balanced(values: Sequence, count: int, rng: np.random.Generator) -> list:
    """``count`` values, each value appearing equally often (±1), in random order."""
    rounds = -(-count // len(values))
    drawn = [values[i] for _ in range(rounds) for i in rng.permutation(len(values))]
    return drawn[:count]


def sample_specs(n: int, seed: int, appearance: str | Appearance = "train", pan_fraction: float = 0.1,
                 static_fraction: float = 0.02, sizes: tuple[float, float] = SIZES) -> list[ShapeSpec]:
    """``n`` clip specs balanced over the ten motions, each appearance factor balanced within every motion.

    A ``pan_fraction`` of each motion's clips get a camera pan (on textured backgrounds only: a pan over a
    plain background is invisible); ``static_fraction`` of all clips are motionless ("static"); object
    radii are drawn uniformly from ``sizes`` (fractions of the frame).
    """
    if n < 1 or not (0 <= pan_fraction <= 1 and 0 <= static_fraction <= 1):
        raise MotiveError(f"sample_specs needs n >= 1 and fractions in [0, 1] (got n={n}, "
                          f"pan_fraction={pan_fraction}, static_fraction={static_fraction})")
    if not MIN_SIZE <= sizes[0] <= sizes[1] <= MAX_SIZE:
        raise MotiveError(f"sample_specs sizes={sizes} must be an increasing pair within [{MIN_SIZE}, {MAX_SIZE}]")
    look = _appearance(appearance)
    rng = np.random.default_rng(seed)
    n_static = int(round(n * static_fraction))
    motions = _balanced(MOTIONS, n - n_static, rng) + [STATIC] * n_static
    specs: list = [None] * n
    for motion in MOTIONS + (STATIC,):
        slots = [i for i, m in enumerate(motions) if m == motion]
        for i, spec in zip(slots, _motion_specs(motion, len(slots), look, rng, pan_fraction, sizes)):
            specs[i] = spec
    return specs


def _motion_specs(motion: str, count: int, look: Appearance, rng: np.random.Generator,
                  pan_fraction: float, sizes: tuple[float, float]) -> list[ShapeSpec]:
    shapes, colors = _balanced(look.shapes, count, rng), _balanced(look.colors, count, rng)
    backgrounds, directions = _balanced(look.backgrounds, count, rng), _balanced((1, -1), count, rng)
    textured = [i for i, b in enumerate(backgrounds) if b != "plain"]
    n_pan = 0 if motion == STATIC else min(int(round(pan_fraction * count)), len(textured))
    panned = set(rng.choice(textured, size=n_pan, replace=False).tolist()) if n_pan else set()
    return [ShapeSpec(motion, shapes[i], colors[i], backgrounds[i], "pan" if i in panned else "static",
                      size=round(float(rng.uniform(*sizes)), 4),
                      jitter=(round(float(rng.uniform(-1, 1)), 4), round(float(rng.uniform(-1, 1)), 4)),
                      direction=directions[i], palette=int(rng.integers(len(PALETTES))),
                      seed=int(rng.integers(2 ** 31)))
            for i in range(count)]


def write_clip_folder(folder: str | Path, specs: Iterable[ShapeSpec], num_frames: int = 32, size: int = 64,
                      fps: float = 16, scale: int = 1, artifact_labels: bool = False) -> list[Clip]:
    """Render every spec to ``NNNNN_<motion>.mp4`` and write metadata.jsonl (caption + labels) beside them.

    ``artifact_labels`` writes the ``artifact`` label on every row, "none" included (worlds with planted
    artifacts); otherwise only planted clips carry it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, spec in enumerate(specs):
        name = f"{index:05d}_{spec.motion}.mp4"
        write_mp4(render_clip(spec, num_frames, size), folder / name, fps=fps, scale=scale)
        labels = {**spec.labels(), **({"artifact": spec.artifact} if artifact_labels else {})}
        rows.append({"file_name": name, "text": caption(spec), **labels})
    if not rows:
        raise MotiveError("write_clip_folder got no specs; pass at least one ShapeSpec")
    write_metadata(folder, rows)
    return load_clip_folder(folder)
