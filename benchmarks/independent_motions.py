"""A second renderer of the ten motions, written apart from MotionShapes, for queries the demo never saw.

MotionShapes queries share their motion curves with the training clips, so retrieving them says little
about whether "the same motion" survives a change of renderer. This module draws the same ten motions
with its own physics and easing (a simulated bounce with restitution, a drop after a hold, a slide that
stops by friction, a roll that speeds up, a spin that winds up and down, one press with an elastic
recovery, a rubber-band stretch that snaps back, a damped pendulum on a bead chain, shards flying out
with drag), its own shapes (disc, ring, six-pointed star, capsule, stroked letters), colours, background
patterns and drawing code. Only the motion names and the caption vocabulary come from MotionShapes.
The clips live beside the benchmarks and never enter the demo's training data.

This module is a data source, not a benchmark: benchmarks (bench_retrieval) and tests import its renderer
(``independent_queries``, ``render_motion``, ``render_scene``). Run as a module, it is also the
flow-descriptor check below (``main``), which nothing imports; that command part reaches the shared helpers
of ``benchmarks.common`` only inside its function, so importing the renderer stays light.

Clips are 128 px square, 33 frames at 16 fps (two seconds), uint8 RGB (T, H, W, 3), deterministic from
the seed. Positions are fractions of the frame, y pointing down; an angle grows clockwise on screen.

  python -m benchmarks.independent_motions [--per-motion 10]  (flow-descriptor check against the demo clips)
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from typing import Callable

import cv2
import numpy as np

from motive_core.demo.motionshapes import DIRECTION_WORDS, MOTION_WORDS, MOTIONS

FPS = 16.0
NUM_FRAMES = 33
SIZE = 128
DURATION = (NUM_FRAMES - 1) / FPS  # seconds; a clip of another length samples the same two seconds
SHAPES: tuple[str, ...] = ("disc", "ring", "star", "capsule", "letter")
ROUND_SHAPES: tuple[str, ...] = ("disc", "ring", "star")  # the ones that roll: a rolling letter would tumble
COLOURS: dict[str, tuple[int, int, int]] = {  # RGB, saturated, far from every background tone
    "gold": (250, 196, 20), "coral": (255, 112, 84), "magenta": (232, 40, 196), "sky": (96, 178, 255),
    "mint": (120, 240, 160), "crimson": (214, 24, 48), "violet": (150, 96, 255)}
MARK_LIGHT, MARK_DARK = (255, 255, 255), (8, 8, 8)
BACKGROUNDS: dict[str, str] = {  # pattern name -> caption word
    "plain": "plain", "grain": "grainy", "grid": "tiled", "waves": "wavy", "glow": "hazy", "horizon": "layered"}
PALETTES: tuple[tuple[tuple[int, int, int], tuple[int, int, int]], ...] = (  # (base, accent) RGB, muted
    ((58, 66, 82), (92, 104, 124)), ((62, 68, 44), (100, 106, 70)), ((66, 48, 70), (104, 80, 110)),
    ((112, 100, 80), (140, 128, 104)), ((44, 62, 66), (74, 98, 100)))
FLOOR_RGB, CHAIN_RGB = (180, 180, 170), (200, 200, 190)
LETTERS: dict[str, tuple[tuple[tuple[float, float], tuple[float, float]], ...]] = {  # strokes in unit coords
    "L": (((-0.45, -0.85), (-0.45, 0.85)), ((-0.45, 0.85), (0.6, 0.85))),
    "T": (((-0.75, -0.8), (0.75, -0.8)), ((0.0, -0.8), (0.0, 0.9))),
    "F": (((-0.45, -0.85), (-0.45, 0.9)), ((-0.45, -0.85), (0.6, -0.85)), ((-0.45, 0.0), (0.4, 0.0))),
    "Z": (((-0.6, -0.8), (0.6, -0.8)), ((0.6, -0.8), (-0.6, 0.8)), ((-0.6, 0.8), (0.6, 0.8))),
    "N": (((-0.55, 0.85), (-0.55, -0.85)), ((-0.55, -0.85), (0.55, 0.85)), ((0.55, 0.85), (0.55, -0.85))),
    "K": (((-0.5, -0.9), (-0.5, 0.9)), ((-0.5, 0.15), (0.55, -0.9)), ((-0.2, -0.15), (0.55, 0.9)))}
_STROKE = 0.17  # half-width of a letter stroke, unit coords
_SUPERSAMPLE = 2
_SHIFT = 3  # fractional bits of polygon vertices


@dataclass(frozen=True)
class Scene:
    """Everything one clip is drawn from; rendering is a pure function of it.

    ``radius`` is the object's outer radius as a fraction of the frame; ``direction`` (+1/-1) is the way a
    two-way motion goes, read with MotionShapes' DIRECTION_WORDS (right/left travel, left/right first swing,
    clockwise/anticlockwise spin, horizontal/vertical stretch); ``seed`` fixes orientation, texture and
    the motion's own speeds and amplitudes.
    """

    motion: str
    shape: str
    colour: str
    background: str
    palette: int
    radius: float
    direction: int
    seed: int
    letter: str = ""

    def __post_init__(self) -> None:
        checks = {"motion": (self.motion, MOTIONS), "shape": (self.shape, SHAPES),
                  "colour": (self.colour, tuple(COLOURS)), "background": (self.background, tuple(BACKGROUNDS)),
                  "palette": (self.palette, tuple(range(len(PALETTES)))), "direction": (self.direction, (1, -1)),
                  "letter": (self.letter, tuple(LETTERS) if self.shape == "letter" else ("",))}
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(f"Scene {name}={value!r} is not one of {', '.join(map(repr, allowed))}")
        if not 0.06 <= self.radius <= 0.18:
            raise ValueError(f"Scene radius={self.radius} must be between 0.06 and 0.18 (fraction of the frame)")

    @property
    def mark_rgb(self) -> tuple[int, int, int]:
        """The marking's colour: white on dark objects, near-black on light ones."""
        r, g, b = COLOURS[self.colour]
        return MARK_DARK if 0.299 * r + 0.587 * g + 0.114 * b > 130 else MARK_LIGHT


def _check_motion(motion: str) -> None:
    if motion not in MOTIONS:
        raise ValueError(f"unknown motion {motion!r}; the valid motions are {', '.join(MOTIONS)}")


def scene_for(motion: str, seed: int) -> Scene:
    """The scene a seed draws for a motion: shape, colour, background, size and direction."""
    _check_motion(motion)
    rng = np.random.default_rng([seed, MOTIONS.index(motion), 11])
    shapes = ROUND_SHAPES if motion == "roll" else SHAPES
    shape = shapes[rng.integers(len(shapes))]
    letters = tuple(LETTERS)
    return Scene(motion=motion, shape=shape, colour=tuple(COLOURS)[rng.integers(len(COLOURS))],
                 background=tuple(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))],
                 palette=int(rng.integers(len(PALETTES))), radius=round(float(rng.uniform(0.12, 0.17)), 4),
                 direction=int(rng.choice((1, -1))), seed=int(seed),
                 letter=letters[rng.integers(len(letters))] if shape == "letter" else "")


def _shape_words(scene: Scene) -> str:
    """'a gold ring': article, colour and one shape word, the order MotionShapes captions use."""
    return f"{'an' if scene.colour[0] in 'aeiou' else 'a'} {scene.colour} {scene.shape}"


def motion_phrase(scene: Scene) -> str:
    """The motion word, and its direction word where MotionShapes uses one: 'rolling left', 'falling'."""
    words = DIRECTION_WORDS.get(scene.motion)
    return MOTION_WORDS[scene.motion] + (f" {words[0 if scene.direction == 1 else 1]}" if words else "")


def caption(scene: Scene) -> str:
    """A MotionShapes-style caption: 'a gold ring bouncing left on a grainy background'."""
    return f"{_shape_words(scene)} {motion_phrase(scene)} on a {BACKGROUNDS[scene.background]} background"


def caption_no_motion(scene: Scene) -> str:
    """The caption without its motion and direction words: 'a gold ring on a grainy background'."""
    return f"{_shape_words(scene)} on a {BACKGROUNDS[scene.background]} background"


# ------------------------------------------------------------------------- shapes (unit outer radius 1)

def _circle(radius: float = 1.0, centre: tuple[float, float] = (0.0, 0.0), points: int = 48) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, points, endpoint=False)
    return np.stack([centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)], axis=1)


def _star(tips: int = 6, inner: float = 0.52) -> np.ndarray:
    angles = np.pi * np.arange(2 * tips) / tips
    radii = np.where(np.arange(2 * tips) % 2 == 0, 1.0, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _capsule(half_height: float = 0.48) -> np.ndarray:
    reach = 1 - half_height
    right = np.linspace(-np.pi / 2, np.pi / 2, 16)
    left = right + np.pi
    return np.vstack([np.stack([reach + half_height * np.cos(right), half_height * np.sin(right)], axis=1),
                      np.stack([-reach + half_height * np.cos(left), half_height * np.sin(left)], axis=1)])


def _stroke(a: tuple[float, float], b: tuple[float, float]) -> np.ndarray:
    """A letter stroke as a quad, extended by its half-width at both ends so joints close."""
    a, b = np.asarray(a), np.asarray(b)
    along = (b - a) / np.hypot(*(b - a)) * _STROKE
    across = np.array([-along[1], along[0]])
    return np.array([a - along + across, b + along + across, b + along - across, a - along - across])


def _sector(inner: float, outer: float, half_angle: float, points: int = 12) -> np.ndarray:
    """The part of an annulus (or, with inner 0, of a disc) within ``half_angle`` of local +x."""
    angles = np.linspace(-half_angle, half_angle, points)
    rim = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.vstack([outer * rim, inner * rim[::-1]]) if inner > 0 else np.vstack([[0.0, 0.0], outer * rim])


@dataclass(frozen=True)
class _Body:
    """A shape's filled contours (several: a hole or separate strokes) and its marking.

    The marking, a large off-centre patch in a contrasting colour (a quarter of a disc, a stretch of a ring,
    one arm of a star, one end of a capsule, the start of a letter's first stroke), makes rotation visible
    even at the 32 px the demo model sees.
    """

    contours: tuple[np.ndarray, ...]
    holes: bool  # fill all contours as one even-odd region (a ring) rather than each on its own
    mark: np.ndarray


def _body(scene: Scene) -> _Body:
    if scene.shape == "disc":
        return _Body((_circle(),), False, _sector(0.0, 1.0, np.pi / 4))
    if scene.shape == "ring":
        return _Body((_circle(), _circle(0.58)[::-1]), True, _sector(0.58, 1.0, np.deg2rad(40)))
    if scene.shape == "star":
        star = _star()
        return _Body((star,), False, np.vstack([[0.0, 0.0], star[-1], star[0], star[1]]))
    if scene.shape == "capsule":
        cap = _capsule()
        return _Body((cap,), False, cap[cap[:, 0] >= 0.52 - 1e-9])
    strokes = LETTERS[scene.letter]
    quads = [_stroke(a, b) for a, b in strokes]
    middle = _centroid(quads)
    start, end = np.asarray(strokes[0][0]), np.asarray(strokes[0][1])
    mark = _stroke(start, start + 0.3 * (end - start))
    # centred on the strokes' centroid, so that a letter turns and scales about its middle
    return _Body(tuple(q - middle for q in quads), False, mark - middle)


def _centroid(polygons: list[np.ndarray], grid: int = 256) -> np.ndarray:
    """Centre of mass of the union of polygons (unit coords within [-1.2, 1.2]), found by filling a grid."""
    canvas = np.zeros((grid, grid), np.uint8)
    scale = grid / 2.4
    cv2.fillPoly(canvas, [np.round((p + 1.2) * scale).astype(np.int32) for p in polygons], 1)
    ys, xs = np.nonzero(canvas)
    return np.array([xs.mean(), ys.mean()]) / scale - 1.2


def _turn(scene: Scene) -> float:
    """The object's resting orientation (radians): near upright for letters; square to the screen where the
    motion scales along the screen's axes (else a squash would read as a shear); any otherwise."""
    rng = np.random.default_rng([scene.seed, 41])
    if scene.motion in ("compress", "stretch"):
        return 0.0 if scene.shape == "letter" else float(np.pi / 2 * rng.integers(4))
    if scene.shape == "letter":
        return float(rng.uniform(-0.3, 0.3))
    return float(rng.uniform(0, 2 * np.pi))


def _below(scene: Scene) -> float:
    """How far the object reaches below its centre when unturned (fraction of the frame)."""
    a = _turn(scene)
    return scene.radius * max(float((c @ np.array([np.sin(a), np.cos(a)])).max()) for c in _body(scene).contours)


# ------------------------------------------------------------------------------------------- motions

@dataclass
class _Track:
    """Per-frame pose of the object (centre, scale along screen x/y, clockwise turn), plus the props.

    ``visible`` is False where the object is gone (after an explosion); ``shards`` holds, per frame, the
    fragment polygons in frame fractions; ``floor`` is the y of a drawn ground line; ``pivot`` the fixed
    point a pendulum hangs from.
    """

    x: np.ndarray
    y: np.ndarray
    sx: np.ndarray
    sy: np.ndarray
    angle: np.ndarray
    visible: np.ndarray
    floor: float | None = None
    pivot: tuple[float, float] | None = None
    shards: list[list[np.ndarray]] = field(default_factory=list)


def _track(t: np.ndarray, x, y, sx=1.0, sy=1.0, angle=0.0, **props) -> _Track:
    full = [np.broadcast_to(np.asarray(v, float), t.shape).copy() for v in (x, y, sx, sy, angle)]
    return _Track(*full, visible=np.ones(t.shape, bool), **props)


def _smoothstep(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 0, 1)
    return s * s * (3 - 2 * s)


def _bounce(scene: Scene, rng: np.random.Generator, t: np.ndarray) -> _Track:
    """Dropped from rest; gravity and a restitution below one give shrinking hops; a steady sideways drift."""
    r = scene.radius
    floor = rng.uniform(0.8, 0.9)
    rest = floor - _below(scene)
    drop = rng.uniform(0.42, min(0.58, rest - r - 0.04))
    first_hit = rng.uniform(0.35, 0.5)  # seconds
    gravity, restitution = 2 * drop / first_hit ** 2, rng.uniform(0.62, 0.78)
    height = np.zeros_like(t)  # above the resting height; it comes to rest once a hop is shorter than 0.05 s
    start, speed = first_hit, restitution * gravity * first_hit  # each hop: start time, take-off speed
    height[t <= first_hit] = drop - 0.5 * gravity * t[t <= first_hit] ** 2
    while start < t[-1] and 2 * speed / gravity > 0.05:
        hop = 2 * speed / gravity
        inside = (t > start) & (t <= start + hop)
        tau = t[inside] - start
        height[inside] = speed * tau - 0.5 * gravity * tau ** 2
        start, speed = start + hop, speed * restitution
    travel = rng.uniform(0.18, 0.32)
    x0 = 0.5 - scene.direction * travel / 2 + rng.uniform(-0.05, 0.05)
    return _track(t, x0 + scene.direction * travel * t / t[-1], rest - height, floor=floor)


def _free_fall(scene: Scene, rng: np.random.Generator, t: np.ndarray) -> _Track:
    """Held still for a moment, then released: the drop speeds up all the way and never rebounds."""
    r = scene.radius
    hold, top = rng.uniform(0.1, 0.35), r + rng.uniform(0.03, 0.1)
    bottom = 1 - r - rng.uniform(0.03, 0.08)
    falling = np.clip(t - hold, 0, None)
    gravity = 2 * (bottom - top) / (t[-1] - hold) ** 2
    drift = rng.uniform(-0.03, 0.03)
    return _track(t, rng.uniform(0.3, 0.7) + drift * falling, top + 0.5 * gravity * falling ** 2,
                  angle=rng.uniform(-0.4, 0.4) * falling)


def _float(scene: Scene, rng: np.random.Generator, t: np.ndarray) -> _Track:
    """A slow, eased rise with a sideways sway and a matching tilt, like a balloon in still air."""
    rise, start = rng.uniform(0.2, 0.32), rng.uniform(0.72, 0.8) - scene.radius * 0.5
    frequency, phase, sway = rng.uniform(0.6, 0.9), rng.uniform(0, 2 * np.pi), rng.uniform(0.04, 0.07)
    wave = np.sin(2 * np.pi * frequency * t + phase)
    lift = 0.35 * t / t[-1] + 0.65 * _smoothstep(t / t[-1])
    return _track(t, rng.uniform(0.38, 0.62) + sway * wave, start - rise * lift,
                  angle=0.18 * np.cos(2 * np.pi * frequency * t + phase))


def _on_floor(scene: Scene, rng: np.random.Generator, reach: float | None = None) -> tuple[float, float]:
    """A ground line and the centre height at which the object (reaching ``reach`` below) stands on it."""
    floor = rng.uniform(0.66, 0.84)
    return floor, floor - (_below(scene) if reach is None else reach)


def _slide(scene: Scene, rng: np.random.Generator, t: np.ndarray) -> _Track:
    """Pushed once along the ground, slowing by friction to a stop; it never turns."""
    floor, y = _on_floor(scene, rng)
    distance, stop = rng.uniform(0.36, 0.5), rng.uniform(1.5, 2.1)
    s = np.clip(t / stop, 0, 1)
    x0 = 0.5 - scene.direction * distance / 2
    return _track(t, x0 + scene.direction * distance * (1 - (1 - s) ** 2), y, floor=floor)


def _roll(scene: Scene, rng: np.random.Generator, t: np.ndarray) -> _Track:
    """Rolling along the ground with growing speed; the turn equals distance over radius (no slipping)."""
    floor, y = _on_floor(scene, rng, reach=scene.radius)
    distance, linear = rng.uniform(0.4, 0.52), rng.uniform(0.3, 0.6)
    s = t / t[-1]
    x0 = 0.5 - scene.direction * distance / 2
    x = x0 + scene.direction * distance * (linear * s + (1 - linear) * s ** 2)
    return _track(t, x, y, angle=(x - x0) / scene.radius, floor=floor)


def _spin(scene: Scene, rng: np.random.Generator, t: np.ndarray) -> _Track:
    """Turning in place, winding up to speed and back down; about one turn in all."""
    turns, ease = rng.uniform(0.85, 1.2), rng.uniform(0.3, 0.6)
    s = t / t[-1]
    angle = scene.direction * 2 * np.pi * turns * (s - ease * np.sin(2 * np.pi * s) / (2 * np.pi))
    return _track(t, rng.uniform(0.35, 0.65), rng.uniform(0.35, 0.65), angle=angle)


def _settle(t: np.ndarray, start: float, rng: np.random.Generator) -> np.ndarray:
    """1 until ``start``, then an elastic return to 0 with a small, quickly damped overshoot."""
    after = np.clip(t - start, 0, None)
    wobble = np.exp(-rng.uniform(6, 8) * after) * np.cos(2 * np.pi * rng.uniform(1.2, 1.5) * after)
    return np.where(t < start, 1.0, wobble)


def _compress(scene: Scene, rng: np.random.Generator, t: np.ndarray) -> _Track:
    """Pressed down once against the ground, held, then let go: height springs back, width follows area."""
    floor, _ = _on_floor(scene, rng)
    depth, press_at, press_for = rng.uniform(0.4, 0.52), rng.uniform(0.1, 0.3), rng.uniform(0.3, 0.45)
    release = press_at + press_for + rng.uniform(0.15, 0.3)
    pressed = _smoothstep((t - press_at) / press_for) * _settle(t, release, rng)
    sy = 1 - depth * pressed
    return _track(t, rng.uniform(0.35, 0.65), floor - _below(scene) * sy, sx=1 / np.sqrt(sy), sy=sy, floor=floor)


def _stretch(scene: Scene, rng: np.random.Generator, t: np.ndarray) -> _Track:
    """Pulled out along one axis like a rubber band, slowly, then let go to snap back; thins as it grows."""
    gain, pull_for = rng.uniform(0.75, 1.0), rng.uniform(0.9, 1.25)
    pull_from = rng.uniform(0.05, 0.2)
    pulled = ((np.clip(t - pull_from, 0, None) / pull_for).clip(0, 1) ** 1.5) * _settle(t, pull_from + pull_for, rng)
    long = 1 + gain * pulled
    thin = 1 / np.sqrt(long)
    sx, sy = (long, thin) if scene.direction == 1 else (thin, long)
    return _track(t, rng.uniform(0.42, 0.58), rng.uniform(0.42, 0.58), sx=sx, sy=sy)


def _swing(scene: Scene, rng: np.random.Generator, t: np.ndarray) -> _Track:
    """A damped pendulum set going from rest at the bottom; the object hangs rigidly from a bead chain."""
    pivot, length = (rng.uniform(0.42, 0.58), rng.uniform(0.05, 0.1)), rng.uniform(0.45, 0.6)
    room = (min(pivot[0], 1 - pivot[0]) - 0.03 - scene.radius) / length  # sine of the widest angle in frame
    amplitude = min(np.deg2rad(rng.uniform(28, 40)), np.arcsin(room))
    period, damping = rng.uniform(1.3, 1.8), rng.uniform(0.1, 0.3)
    theta = -scene.direction * amplitude * np.sin(2 * np.pi * t / period) * np.exp(-damping * t)
    return _track(t, pivot[0] + length * np.sin(theta), pivot[1] + length * np.cos(theta), angle=-theta,
                  pivot=pivot)


def _explode(scene: Scene, rng: np.random.Generator, t: np.ndarray) -> _Track:
    """Swells briefly, then bursts into triangular shards that fly out from the centre, slowed by drag."""
    r, burst = scene.radius, rng.uniform(0.3, 0.55)
    centre = (rng.uniform(0.38, 0.62), rng.uniform(0.38, 0.62))
    swell = 1 + 0.12 * _smoothstep(t / burst)
    track = _track(t, centre[0], centre[1], sx=swell, sy=swell)
    track.visible = t < burst
    count = int(rng.integers(14, 22))
    spot = np.sqrt(rng.uniform(0.05, 0.75, count)) * 0.85
    bearing = rng.uniform(0, 2 * np.pi, count)
    start = np.stack([spot * np.cos(bearing), spot * np.sin(bearing)], axis=1) * r * 1.12
    heading = bearing + rng.uniform(-0.3, 0.3, count)
    speed, drag, fall = rng.uniform(0.45, 0.8, count), rng.uniform(1.0, 2.0), rng.uniform(0.05, 0.15)
    turn, size = rng.uniform(-6, 6, count), rng.uniform(0.25, 0.42, count) * r
    corners = rng.uniform(0, 2 * np.pi, count)[:, None] + np.array([0, 2.1, 4.2]) + rng.uniform(-0.3, 0.3, (count, 3))
    reach = rng.uniform(0.6, 1.0, (count, 3))
    for time in t:
        after = time - burst
        if after < 0:
            track.shards.append([])
            continue
        flight = speed / drag * (1 - np.exp(-drag * after))
        centres = np.array(centre) + start + np.stack([np.cos(heading), np.sin(heading)], axis=1) * flight[:, None]
        centres[:, 1] += 0.5 * fall * after ** 2
        shrink = 1 - 0.35 * after / (t[-1] - burst + 1e-9)
        angles = corners + turn[:, None] * after
        pieces = np.stack([np.cos(angles), np.sin(angles)], axis=2) * (reach * size[:, None] * shrink)[..., None]
        track.shards.append(list(pieces + centres[:, None, :]))
    return track


_MOTIONS: dict[str, Callable[[Scene, np.random.Generator, np.ndarray], _Track]] = {
    "compress": _compress, "bounce": _bounce, "roll": _roll, "explode": _explode, "float": _float,
    "free_fall": _free_fall, "slide": _slide, "spin": _spin, "stretch": _stretch, "swing": _swing}


def _motion_track(scene: Scene, num_frames: int = NUM_FRAMES) -> _Track:
    """The scene's per-frame poses over the two seconds, sampled at ``num_frames`` instants."""
    times = np.linspace(0.0, DURATION, num_frames)
    return _MOTIONS[scene.motion](scene, np.random.default_rng([scene.seed, MOTIONS.index(scene.motion), 23]), times)


# ----------------------------------------------------------------------------------------- drawing

def _background(scene: Scene, side: int) -> np.ndarray:
    """The static backdrop at render resolution (float RGB)."""
    rng = np.random.default_rng([scene.seed, 31])
    base, accent = (np.array(c, np.float32) for c in PALETTES[scene.palette])
    y, x = (np.mgrid[0:side, 0:side].astype(np.float32) + 0.5) / side
    if scene.background == "plain":
        weight = np.zeros_like(x)
    elif scene.background == "grain":
        cells = cv2.resize(rng.random((side // 4, side // 4)).astype(np.float32), (side, side),
                           interpolation=cv2.INTER_NEAREST)
        weight = cells * 0.8
    elif scene.background == "grid":
        pitch = rng.uniform(1 / 7, 1 / 5)
        weight = (((x % pitch) < 0.012) | ((y % pitch) < 0.012)).astype(np.float32)
    elif scene.background == "waves":
        cycles, bend = rng.uniform(3, 5), rng.uniform(0.03, 0.06)
        weight = 0.5 + 0.5 * np.sin(2 * np.pi * cycles * (y + bend * np.sin(2 * np.pi * 2 * x)))
    elif scene.background == "glow":
        weight = np.clip(1 - np.hypot(x - rng.uniform(0.3, 0.7), y - rng.uniform(0.3, 0.7)) / 0.7, 0, 1)
    else:  # horizon
        weight = (y < rng.uniform(0.35, 0.6)).astype(np.float32)
    return base + weight[..., None] * (accent - base)


def _fixed(points: np.ndarray, side: int) -> np.ndarray:
    return np.round(points * side * (1 << _SHIFT)).astype(np.int32)


def _fill(canvas: np.ndarray, contours: list[np.ndarray], rgb: tuple[int, int, int], side: int) -> None:
    cv2.fillPoly(canvas, [_fixed(c, side) for c in contours], rgb, cv2.LINE_AA, _SHIFT)


def _props(canvas: np.ndarray, track: _Track, side: int) -> None:
    """Static furniture: the ground line and the pendulum's mount."""
    if track.floor is not None:
        y = track.floor + 0.006
        _fill(canvas, [np.array([(0.0, y - 0.006), (1.0, y - 0.006), (1.0, y + 0.006), (0.0, y + 0.006)])],
              FLOOR_RGB, side)
    if track.pivot is not None:
        px, py = track.pivot
        _fill(canvas, [np.array([(px - 0.05, py - 0.035), (px + 0.05, py - 0.035), (px + 0.05, py - 0.012),
                                 (px - 0.05, py - 0.012)])], CHAIN_RGB, side)


def _place(points: np.ndarray, track: _Track, i: int, turn: float, radius: float) -> np.ndarray:
    """Unit shape coordinates -> frame fractions: turn, scale along the screen axes, move."""
    a = track.angle[i] + turn
    rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (points @ rotation.T) * (track.sx[i] * radius, track.sy[i] * radius) + (track.x[i], track.y[i])


def _draw_object(canvas: np.ndarray, scene: Scene, body: _Body, track: _Track, i: int, turn: float,
                 side: int) -> None:
    if track.pivot is not None:  # the bead chain from the mount to the object's centre
        start, end = np.array(track.pivot), np.array([track.x[i], track.y[i]])
        for k in np.linspace(0, 1, 13)[:-1]:
            _fill(canvas, [_circle(0.014, tuple(start + k * (end - start)), 12)], CHAIN_RGB, side)
    placed = [_place(c, track, i, turn, scene.radius) for c in body.contours]
    if body.holes:
        _fill(canvas, placed, COLOURS[scene.colour], side)
    else:
        for contour in placed:
            _fill(canvas, [contour], COLOURS[scene.colour], side)
    _fill(canvas, [_place(body.mark, track, i, turn, scene.radius)], scene.mark_rgb, side)


def render_scene(scene: Scene, num_frames: int = NUM_FRAMES, size: int = SIZE) -> np.ndarray:
    """Draw a scene as uint8 RGB (num_frames, size, size, 3), anti-aliased at twice the size."""
    if num_frames < 2 or size < 16:
        raise ValueError(f"render_scene needs at least 2 frames and 16 pixels (got {num_frames} frames, {size} px)")
    side = size * _SUPERSAMPLE
    backdrop = np.round(_background(scene, side)).clip(0, 255).astype(np.uint8)
    track = _motion_track(scene, num_frames)
    _props(backdrop, track, side)
    body = _body(scene)
    turn = _turn(scene)
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    for i in range(num_frames):
        canvas = backdrop.copy()
        if track.visible[i]:
            _draw_object(canvas, scene, body, track, i, turn, side)
        for shard in track.shards[i] if track.shards else ():
            _fill(canvas, [shard], COLOURS[scene.colour], side)
        frames[i] = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    return frames


def render_motion(motion: str, seed: int, num_frames: int = NUM_FRAMES, size: int = SIZE) -> np.ndarray:
    """One clip of ``motion`` as uint8 RGB (T, H, W, 3); look, speeds and amplitudes drawn from ``seed``."""
    return render_scene(scene_for(motion, seed), num_frames, size)


def independent_queries(per_motion: int, seed: int = 0) -> list[dict]:
    """``per_motion`` clips of every motion, two-way motions alternating their direction, with captions.

    Each query: frames (T, 128, 128, 3) uint8, fps 16.0, motion, caption (shape, colour, motion phrase,
    background) and caption_no_motion (the same without the motion and direction words).
    """
    if per_motion < 1:
        raise ValueError(f"independent_queries needs per_motion >= 1 (got {per_motion})")
    rng = np.random.default_rng([seed, 53])
    queries = []
    for motion in MOTIONS:
        for k in range(per_motion):
            scene = replace(scene_for(motion, int(rng.integers(2 ** 31))), direction=1 if k % 2 == 0 else -1)
            queries.append({"frames": render_scene(scene), "fps": FPS, "motion": motion, "caption": caption(scene),
                            "caption_no_motion": caption_no_motion(scene)})
    return queries


# ------------------------------------------------------------------------- flow-descriptor check

def _flow_check(per_motion: int) -> None:
    """How far 'the same motion' carries across renderers for the model-free flow descriptor.

    Leave-one-out nearest neighbour among this renderer's clips, and P@10 by motion against the demo's
    training clips, every clip seen at the demo index's geometry (16 frames, 8 fps, 32 x 32).
    """
    from benchmarks.common.features import training_features
    from benchmarks.common.queries import nearest_same_label
    from benchmarks.common.results import REPO, save
    from motive_core.eval.metrics import clip_descriptor, descriptor_similarity, precision_at_k
    from motive_core.index import AttributionIndex
    from motive_core.models import VideoGeometry
    from motive_core.video import Video, standardize

    index = AttributionIndex(REPO / "precomputed" / "index-motion")
    geometry = VideoGeometry(**index.config["geometry"])
    kept = [i for i, clip in enumerate(index.clips) if clip["labels"]["motion"] in MOTIONS]
    train = training_features(index, geometry)[0][kept]
    train_labels = [index.clips[i]["labels"]["motion"] for i in kept]
    queries = independent_queries(per_motion)
    mine = np.stack([clip_descriptor(standardize(Video(q["frames"], q["fps"], "independent"), geometry.num_frames,
                                                 geometry.fps, geometry.height, geometry.width)) for q in queries])
    labels = [q["motion"] for q in queries]
    own = descriptor_similarity(mine, mine)  # standardised on these clips' own statistics
    np.fill_diagonal(own, -np.inf)
    nearest = list(nearest_same_label(own, labels))
    p10 = [precision_at_k([train_labels[i] for i in np.argsort(-descriptor_similarity(d, train), kind="stable")],
                          label, 10) for d, label in zip(mine, labels)]
    rows = [{"motion": motion, "queries": labels.count(motion),
             "nearest own clip same motion": float(np.mean([n for n, m in zip(nearest, labels) if m == motion])),
             "P@10 vs demo training clips": float(np.mean([p for p, m in zip(p10, labels) if m == motion]))}
            for motion in MOTIONS]
    rows.append({"motion": "all", "queries": len(labels), "nearest own clip same motion": float(np.mean(nearest)),
                 "P@10 vs demo training clips": float(np.mean(p10))})
    save("independent_flow", {"Flow descriptor (no model) on the independent renderer's clips": rows}, [
        f"{len(labels)} clips of the independent renderer (benchmarks/independent_motions.py, {per_motion} per "
        f"motion, seed 0) against {len(train_labels)} demo training clips, all at {geometry.num_frames} frames, "
        f"{geometry.fps:g} fps, {geometry.height}x{geometry.width}. No prompt enters: the descriptor reads flow "
        "only. 'Nearest own clip': leave-one-out nearest neighbour among the independent clips (descriptors "
        "standardised on them). P@10: the demo clips ranked by cosine of descriptors standardised on the demo "
        "clips; chance is about 0.1. This is the ceiling for what 'the same motion' means across the two "
        "renderers to a reader of flow alone."])
def main() -> None:
    parser = argparse.ArgumentParser(description="Flow-descriptor check of the independent renderer")
    parser.add_argument("--per-motion", type=int, default=10)
    _flow_check(parser.parse_args().per_motion)


if __name__ == "__main__":
    main()
