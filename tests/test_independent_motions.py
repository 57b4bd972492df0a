"""The independent renderer: every motion shows its defining property in the pixels, deterministically.

Each check reads the rendered frames only: the object is found by its colour and its marking by the
marking's colour (both far from every background tone), then its centroid path, bounding box, marking
angle and spread are measured.
"""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.independent_motions import (COLOURS, FPS, Scene, caption, caption_no_motion, independent_queries,
                                            motion_phrase, render_motion, render_scene, scene_for)
from motive_core.demo.motionshapes import DIRECTION_WORDS, MOTION_WORDS, MOTIONS

SEEDS = range(4)
_TOLERANCE = 45  # per-channel distance within which a pixel counts as a colour (anti-aliased edges drop out)


def _near(frames: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.abs(frames.astype(np.int16) - np.array(rgb, np.int16)).max(axis=-1) < _TOLERANCE


def _measure(motion: str, seed: int) -> tuple[Scene, dict[str, np.ndarray]]:
    """Per-frame centroid, bounding box, marking angle and spread of the object in a rendered clip."""
    scene = scene_for(motion, seed)
    frames = render_scene(scene)
    body, mark = _near(frames, COLOURS[scene.colour]), _near(frames, scene.mark_rgb)
    whole = body | mark
    stats: dict[str, list] = {k: [] for k in ("x", "y", "top", "bottom", "left", "right", "angle", "spread", "pieces")}
    for b, m, w in zip(body, mark, whole):
        ys, xs = np.nonzero(w)
        assert len(xs) > 20, f"{motion} seed {seed}: object not found in a frame"
        cx, cy = xs.mean(), ys.mean()
        my, mx = np.nonzero(m) if m.any() else (np.array([cy]), np.array([cx]))
        stats["x"].append(cx)
        stats["y"].append(cy)
        stats["top"].append(ys.min())
        stats["bottom"].append(ys.max())
        stats["left"].append(xs.min())
        stats["right"].append(xs.max())
        stats["angle"].append(np.arctan2(my.mean() - cy, mx.mean() - cx))
        stats["spread"].append(np.sqrt(((xs - cx) ** 2 + (ys - cy) ** 2).mean()))
        stats["pieces"].append(cv2.connectedComponents(b.astype(np.uint8))[0] - 1)
    out = {k: np.array(v, float) for k, v in stats.items()}
    out["angle"] = np.unwrap(out["angle"])
    return scene, out


def _reversals(series: np.ndarray, hysteresis: float) -> int:
    """How often a series turns back by more than ``hysteresis`` from its latest extreme."""
    count, trend, low, high = 0, 0, series[0], series[0]
    for value in series[1:]:
        if trend == 0:
            low, high = min(low, value), max(high, value)
            trend = 1 if value - low > hysteresis else -1 if high - value > hysteresis else 0
            extreme = value
        elif trend * (value - extreme) > 0:
            extreme = value
        elif abs(value - extreme) > hysteresis:
            count, trend, extreme = count + 1, -trend, value
    return count


def test_reversal_count():
    assert _reversals(np.array([0, 1, 2, 3, 2.5, 2, 1, 0.5, 1.2, 2.4, 2.2]), 1.0) == 2
    assert _reversals(np.array([5, 4.5, 4, 3.6, 3.8, 4.4, 5.0]), 1.0) == 1
    assert _reversals(np.linspace(0, 9, 10), 1.0) == 0


def _check_bounce(scene: Scene, m: dict[str, np.ndarray]) -> None:
    y = m["y"]
    contacts = [i for i in range(1, len(y) - 1) if y[i] >= y[i - 1] and y[i] > y[i + 1]
                and y[:i].min() < y[i] - 3 and y[i + 1:].min() < y[i] - 3]
    assert len(contacts) >= 2, f"seed {scene.seed}: {len(contacts)} rebounds, y = {np.round(y).tolist()}"
    first = contacts[0]
    assert y[first] - y[0] > 30 and y[first] - y[first + 1:].min() > 10  # a real drop, a real rebound
    assert (m["bottom"][contacts] >= m["bottom"].max() - 12).all()  # every rebound from the floor (frames
    # are 1/16 s apart, so a sampled contact can sit a little above it)
    peaks = [y[a:b].min() for a, b in zip(contacts, contacts[1:])]
    assert all(later > earlier for earlier, later in zip(peaks, peaks[1:]))  # each hop lower than the last
    assert (m["x"][-1] - m["x"][0]) * scene.direction > 15  # drifting the named way


def _check_free_fall(scene: Scene, m: dict[str, np.ndarray]) -> None:
    y = m["y"]
    vy = np.diff(y)
    assert y[-1] - y[0] > 50
    assert vy.min() > -0.5  # never rises
    assert np.polyfit(np.arange(len(vy)), vy, 1)[0] > 0.1  # speeding up
    assert vy[-5:].mean() > vy[:10].mean() + 3
    assert y[-1] == y.max()  # no rebound at the end


def _check_float(scene: Scene, m: dict[str, np.ndarray]) -> None:
    dy = np.diff(m["y"])
    assert m["y"][-1] < m["y"][0] - 15
    assert np.abs(dy).max() < 3 and dy.max() < 0.7  # slow, never sinking
    assert np.ptp(m["x"]) > 5 and _reversals(m["x"], 1.5) >= 1


def _check_slide(scene: Scene, m: dict[str, np.ndarray]) -> None:
    assert np.ptp(m["y"]) <= 1 and np.ptp(m["bottom"]) <= 1
    assert (m["x"][-1] - m["x"][0]) * scene.direction > 35
    assert np.ptp(m["angle"]) < 0.15


def _check_roll(scene: Scene, m: dict[str, np.ndarray]) -> None:
    travel = m["x"][-1] - m["x"][0]
    turned = m["angle"][-1] - m["angle"][0]
    assert travel * scene.direction > 40 and np.ptp(m["y"]) <= 1
    expected = travel / (scene.radius * 128)  # clockwise (growing angle, y down) when moving right
    assert turned == pytest.approx(expected, rel=0.12), f"turned {turned:.2f}, expected {expected:.2f}"


def _check_spin(scene: Scene, m: dict[str, np.ndarray]) -> None:
    wander = np.hypot(m["x"] - m["x"].mean(), m["y"] - m["y"].mean())
    assert wander.max() < 3
    turned = (m["angle"][-1] - m["angle"][0]) * scene.direction  # clockwise for direction +1
    assert turned > 0.8 * 2 * np.pi
    assert (np.diff(m["angle"]) * scene.direction > -0.05).all()  # one way only


def _check_compress(scene: Scene, m: dict[str, np.ndarray]) -> None:
    height, width = m["bottom"] - m["top"] + 1, m["right"] - m["left"] + 1
    flat = int(np.argmin(height))
    assert height[flat] / height[0] < 0.7 and width[flat] / width[0] > 1.15
    assert abs(height[-1] / height[0] - 1) < 0.08
    assert np.ptp(m["bottom"]) <= 2 and np.ptp(m["x"]) <= 2  # pressed against the ground, not moved


def _check_stretch(scene: Scene, m: dict[str, np.ndarray]) -> None:
    height, width = m["bottom"] - m["top"] + 1, m["right"] - m["left"] + 1
    aspect = width / height if scene.direction == 1 else height / width  # long side over short side
    assert aspect.max() / aspect[0] > 1.8, f"seed {scene.seed}: aspect {np.round(aspect, 2).tolist()}"
    assert abs(aspect[-1] / aspect[0] - 1) < 0.1
    assert np.ptp(m["x"]) <= 2.5 and np.ptp(m["y"]) <= 2.5  # in place (thin strokes flicker at their edges)


def _check_swing(scene: Scene, m: dict[str, np.ndarray]) -> None:
    x, y = m["x"], m["y"]
    design = np.stack([x, y, np.ones_like(x)], axis=1)
    d, e, f = np.linalg.lstsq(design, -(x ** 2 + y ** 2), rcond=None)[0]  # x² + y² + dx + ey + f = 0
    cx, cy = -d / 2, -e / 2
    radius = np.sqrt(cx ** 2 + cy ** 2 - f)
    residual = np.sqrt(((np.hypot(x - cx, y - cy) - radius) ** 2).mean())
    assert residual < 1.5 and 0.4 * 128 < radius < 0.65 * 128
    assert cy < y.min() - 40  # the arc's centre is well above the object
    assert np.ptp(x) > 40 and _reversals(x, 2) >= 2  # back and forth
    assert np.sign(x[2] - x[0]) == -scene.direction  # 'swinging left' goes left first


def _check_explode(scene: Scene, m: dict[str, np.ndarray]) -> None:
    assert m["pieces"][0] <= 2 and m["pieces"][-1] >= 6
    assert m["spread"].max() > 2.5 * m["spread"][0]
    assert m["spread"][len(m["spread"]) // 2:].min() > 2 * m["spread"][0]  # the pieces stay apart (some leave)


def test_clip_shape_dtype_and_determinism():
    for motion in MOTIONS:
        clip = render_motion(motion, 7)
        assert clip.shape == (33, 128, 128, 3) and clip.dtype == np.uint8
        assert np.array_equal(clip, render_motion(motion, 7))
        assert not np.array_equal(clip, render_motion(motion, 8))
    assert render_motion("spin", 1, num_frames=9, size=64).shape == (9, 64, 64, 3)


def test_bad_names_are_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="'hover'.*compress, bounce, roll.*swing"):
        render_motion("hover", 0)
    with pytest.raises(ValueError, match="shape='cube'"):
        replace(scene_for("spin", 0), shape="cube")
    with pytest.raises(ValueError, match="letter"):
        replace(scene_for("spin", 0), shape="letter", letter="")
    with pytest.raises(ValueError, match="per_motion"):
        independent_queries(0)


def test_queries_carry_captions_with_and_without_the_motion_words():
    queries = independent_queries(2, seed=5)
    assert len(queries) == 2 * len(MOTIONS)
    motion_words = set(MOTION_WORDS.values()) | {w for pair in DIRECTION_WORDS.values() for w in pair}
    for motion in MOTIONS:
        mine = [q for q in queries if q["motion"] == motion]
        assert len(mine) == 2
        if motion in DIRECTION_WORDS:  # both ways of a two-way motion appear
            assert {q["caption"].split(" on a ")[0].split()[-1] for q in mine} == set(DIRECTION_WORDS[motion])
    for query in queries:
        assert set(query) == {"frames", "fps", "motion", "caption", "caption_no_motion"}
        assert query["fps"] == FPS == 16.0 and query["frames"].shape == (33, 128, 128, 3)
        assert MOTION_WORDS[query["motion"]] in query["caption"].split()
        assert not motion_words & set(query["caption_no_motion"].split())
        kept = [w for w in query["caption"].split() if w not in motion_words]
        assert " ".join(kept) == query["caption_no_motion"]
    again = independent_queries(2, seed=5)
    assert [q["caption"] for q in again] == [q["caption"] for q in queries]
    assert all(np.array_equal(a["frames"], b["frames"]) for a, b in zip(again, queries))
    assert [q["caption"] for q in independent_queries(2, seed=6)] != [q["caption"] for q in queries]


def test_caption_follows_the_motionshapes_pattern():
    scene = Scene("swing", "letter", "gold", "grain", 0, 0.12, 1, 3, letter="K")
    assert motion_phrase(scene) == "swinging left"
    assert caption(scene) == "a gold letter swinging left on a grainy background"
    assert caption_no_motion(scene) == "a gold letter on a grainy background"
    assert caption(replace(scene, motion="float", shape="ring", letter="", colour="sky")) == \
        "a sky ring floating on a grainy background"


def test_only_names_and_words_come_from_motionshapes():
    """The renderer is independent: nothing of MotionShapes' drawing or trajectories is imported."""
    tree = ast.parse((Path(__file__).parents[1] / "benchmarks" / "independent_motions.py").read_text())
    borrowed = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == "motive_core.demo.motionshapes" for alias in node.names}
    assert borrowed <= {"MOTIONS", "MOTION_WORDS", "DIRECTION_WORDS"}
    assert not any(isinstance(node, ast.Import) and any("motionshapes" in a.name for a in node.names)
                   for node in ast.walk(tree))


CHECKS = {"bounce": _check_bounce, "free_fall": _check_free_fall, "float": _check_float, "slide": _check_slide,
          "roll": _check_roll, "spin": _check_spin, "compress": _check_compress, "stretch": _check_stretch,
          "swing": _check_swing, "explode": _check_explode}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("motion", MOTIONS)
def test_each_motion_shows_its_defining_property(motion, seed):
    CHECKS[motion](*_measure(motion, seed))


@pytest.mark.parametrize("motion", MOTIONS)
def test_no_other_motion_passes_a_motions_check(motion):
    """The checks tell the motions apart: each one fails on every other motion's clip."""
    for other in MOTIONS:
        if other != motion:
            measured = _measure(other, 0)
            with pytest.raises(AssertionError):
                CHECKS[motion](*measured)


def test_nearest_own_clip_asks_whether_each_clip_s_closest_other_clip_shares_its_label():
    from benchmarks.common.queries import nearest_same_label

    points = np.array([[0.0], [0.1], [5.0], [5.2], [9.0]])
    similarity = -np.abs(points - points.T)
    np.fill_diagonal(similarity, -np.inf)  # a clip is not its own neighbour
    labels = ["a", "a", "b", "b", "a"]  # the last one's closest other clip (5.2) is a "b"
    assert nearest_same_label(similarity, labels).tolist() == [True, True, True, True, False]
