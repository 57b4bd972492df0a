"""MotionShapes: each motion measured on the rendered pixels, plus labels, balance, splits and determinism."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from motive_core.data import load_clip_folder
from motive_core.demo.model import DemoModelConfig, tokenize
from motive_core.demo.motionshapes import (LABEL_KEYS, MOTION_WORDS, MOTIONS, ShapeSpec, caption, heldout_appearance,
                                           render_clip, sample_specs, train_appearance, write_clip_folder)
from motive_core.errors import MotiveError
from motive_core.video import read_video

T, SIZE = 32, 64


def plain(motion: str, **overrides) -> ShapeSpec:
    """A red circle on a plain background: the object is every pixel that differs from the background."""
    fields = dict(shape="circle", color="red", background="plain", size=0.12, seed=7)
    return ShapeSpec(motion, **{**fields, **overrides})


def weights(frames: np.ndarray) -> np.ndarray:
    """(T,H,W) soft object mask: how far each pixel is from the (plain) background colour, in [0, 1]."""
    distance = np.abs(frames.astype(np.float32) - frames[0, 0, 0].astype(np.float32)).sum(-1)
    return np.clip(distance / 150, 0, 1)


def centroids(frames: np.ndarray) -> np.ndarray:
    """(T, 2) object centre (x, y) in pixels."""
    w = weights(frames)
    ys, xs = np.mgrid[0:w.shape[1], 0:w.shape[2]]
    total = w.sum(axis=(1, 2))
    return np.stack([(w * xs).sum(axis=(1, 2)) / total, (w * ys).sum(axis=(1, 2)) / total], axis=1)


def extents(frames: np.ndarray) -> np.ndarray:
    """(T, 2) object width and height in pixels (columns/rows the object covers)."""
    mask = weights(frames) > 0.5
    return np.stack([mask.any(axis=1).sum(axis=1), mask.any(axis=2).sum(axis=1)], axis=1).astype(float)


def marking_angles(frames: np.ndarray) -> np.ndarray:
    """(T,) unwrapped direction (radians) from the object centre to its white marking."""
    mark = (frames.min(axis=-1) > 170).astype(np.float32)
    ys, xs = np.mgrid[0:frames.shape[1], 0:frames.shape[2]]
    mx = (mark * xs).sum(axis=(1, 2)) / mark.sum(axis=(1, 2))
    my = (mark * ys).sum(axis=(1, 2)) / mark.sum(axis=(1, 2))
    centre = centroids(frames)
    return np.unwrap(np.arctan2(my - centre[:, 1], mx - centre[:, 0]))


def signs(velocity: np.ndarray, floor: float = 0.3) -> list[int]:
    """Sign sequence of the clearly non-zero velocities, consecutive repeats merged."""
    out: list[int] = []
    for v in velocity[np.abs(velocity) > floor]:
        if not out or out[-1] != np.sign(v):
            out.append(int(np.sign(v)))
    return out


def test_bounce_goes_down_then_up():
    vy = np.diff(centroids(render_clip(plain("bounce"), T, SIZE))[:, 1])
    assert signs(vy)[:3] == [1, -1, 1]  # y grows downwards: falls, rebounds at the floor, falls again


def test_free_fall_accelerates_downward_to_the_bottom():
    y = centroids(render_clip(plain("free_fall"), T, SIZE))[:, 1]
    vy = np.diff(y)
    assert (vy > 0).all()
    assert (np.diff(vy) > -0.05).all() and vy[-4:].mean() > 3 * vy[:8].mean()
    assert y[-1] > 0.75 * SIZE and y[-1] - y[0] > 0.6 * SIZE


def test_slide_moves_sideways_at_constant_speed_without_turning():
    frames = render_clip(plain("slide", direction=-1), T, SIZE)
    centre = centroids(frames)
    vx = np.diff(centre[:, 0])
    assert (vx < 0).all() and vx.std() < 0.1 * abs(vx.mean()) and abs(centre[-1, 0] - centre[0, 0]) > 0.5 * SIZE
    assert np.ptp(centre[:, 1]) < 0.5
    assert np.ptp(marking_angles(frames)) < 0.3  # sub-pixel noise only; a roll turns ~5 rad


def test_roll_translates_and_turns_like_a_wheel():
    frames = render_clip(plain("roll"), T, SIZE)
    centre = centroids(frames)
    assert (np.diff(centre[:, 0]) > 0).all() and np.ptp(centre[:, 1]) < 1.0
    turned = marking_angles(frames)[-1] - marking_angles(frames)[0]
    rolled = (centre[-1, 0] - centre[0, 0]) / (0.12 * SIZE)  # distance / radius
    assert turned > 0 and abs(turned - rolled) < 0.25 * rolled


def test_spin_turns_in_place():
    frames = render_clip(plain("spin", direction=-1), T, SIZE)
    assert centroids(frames).std(axis=0).max() < 0.5
    angles = marking_angles(frames)
    assert (np.diff(angles) < 0).all() and angles[0] - angles[-1] > 2 * np.pi


def test_compress_shrinks_height_and_widens():
    width, height = extents(render_clip(plain("compress"), T, SIZE)).T
    squashed = T // 4  # the first squash peaks a quarter of the way through
    assert height[squashed] < 0.65 * height[0] and width[squashed] > 1.25 * width[0]
    assert abs(height[T // 2] - height[0]) <= 1  # and springs back


@pytest.mark.parametrize("direction, axis", [(1, 0), (-1, 1)])
def test_stretch_elongates_along_one_axis(direction, axis):
    size = extents(render_clip(plain("stretch", direction=direction), T, SIZE))
    assert size[T // 2, axis] > 1.7 * size[0, axis] and size[T // 2, 1 - axis] <= size[0, 1 - axis]


def test_explode_scatters_fragments():
    w = weights(render_clip(plain("explode"), T, SIZE))
    ys, xs = np.nonzero(w[0] > 0.5)
    spread_start = np.hypot(xs.std(), ys.std())
    ys, xs = np.nonzero(w[-1] > 0.5)
    assert np.hypot(xs.std(), ys.std()) > 2.5 * spread_start


def test_swing_reverses_horizontally_and_draws_the_string():
    frames = render_clip(plain("swing"), T, SIZE)
    assert len(signs(np.diff(centroids(frames)[:, 0]))) >= 3
    assert (frames[:, 2:6].min(axis=-1) > 150).any(axis=(1, 2)).all()  # the light string near the pivot


def test_float_rises_slowly():
    y = centroids(render_clip(plain("float"), T, SIZE))[:, 1]
    assert 0.2 * SIZE < y[0] - y[-1] < 0.45 * SIZE
    assert np.abs(np.diff(y)).max() < 1.5


def test_static_frames_are_identical():
    frames = render_clip(plain("static", background="noise"), 8, 32)
    assert (frames == frames[0]).all()


def shift_between(a: np.ndarray, b: np.ndarray, most: int = 30) -> int:
    """Horizontal shift s (pixels) with b[:, x] ≈ a[:, x + s]."""
    errors = {s: np.abs(a[:, max(s, 0):a.shape[1] + min(s, 0)].astype(int)
                        - b[:, max(-s, 0):b.shape[1] - max(s, 0)]).mean() for s in range(-most, most + 1)}
    return min(errors, key=errors.get)


def test_camera_pan_moves_the_background_and_keeps_the_object():
    still = render_clip(plain("spin", background="noise", seed=2), 8, SIZE)
    panned = render_clip(plain("spin", background="noise", seed=2, camera="pan"), 8, SIZE)
    top = slice(0, 8)  # rows the object never reaches
    assert (still[:, top] == still[0, top]).all()
    shifts = [abs(shift_between(panned[0, top], frame[top])) for frame in panned]
    assert shifts == sorted(shifts) and abs(shifts[-1] - 0.4 * SIZE) <= 1
    inside = np.all(still == np.array([230, 40, 40], np.uint8), axis=-1)  # fully covered object pixels
    assert inside.sum() > 50 and (panned[inside] == still[inside]).all()


def test_textures_survive_at_32_pixels():
    for background in ("stripes", "checks", "noise", "dots"):
        frame = render_clip(plain("static", background=background), 2, 32)[0]
        assert frame[:6].astype(float).std() > 8, background


def test_rendering_is_deterministic():
    spec = sample_specs(3, seed=4, pan_fraction=1.0)[2]
    assert (render_clip(spec, 8, 32) == render_clip(spec, 8, 32)).all()


def test_motion_categories_are_ten_in_the_papers_order():
    assert MOTIONS == ("compress", "bounce", "roll", "explode", "float", "free_fall", "slide", "spin", "stretch",
                       "swing")


def test_caption_names_motion_direction_colour_shape_and_pan():
    spec = ShapeSpec("free_fall", "star", "blue", "stripes", camera="pan")
    assert caption(spec) == "a blue star falling on a striped background, camera panning"
    assert caption(ShapeSpec("static", "circle", "orange", "noise")) == "an orange circle resting on a noisy background"
    assert caption(ShapeSpec("slide", "square", "red", "plain", direction=-1)) == \
        "a red square sliding left on a plain background"
    for spec in sample_specs(60, seed=0, pan_fraction=0.5):
        text = caption(spec)
        assert MOTION_WORDS[spec.motion] in text and spec.color in text and spec.shape in text
        assert len(tokenize(text)) <= DemoModelConfig.max_words, text  # the demo model reads no further


@pytest.mark.parametrize("motion", ["bounce", "roll", "slide", "swing", "stretch", "spin"])
def test_direction_word_says_which_way_the_object_moves(motion):
    for direction in (1, -1):
        spec = plain(motion, direction=direction)
        frames = render_clip(spec, T, SIZE)
        word = caption(spec).split()[4]
        if motion == "stretch":
            width, height = extents(frames)[T // 2]
            assert word == ("horizontally" if width > height else "vertically")
        elif motion == "spin":  # image y points down, so a growing angle turns clockwise on screen
            assert word == ("clockwise" if marking_angles(frames)[-1] > marking_angles(frames)[0] else "anticlockwise")
        else:
            x = centroids(frames)[:, 0]
            assert word == ("right" if x[4] > x[0] else "left"), (caption(spec), x[:5])


def test_specs_are_balanced_and_appearance_is_crossed_with_motion():
    specs = sample_specs(400, seed=1, pan_fraction=0.1, static_fraction=0.02)
    motions = Counter(s.motion for s in specs)
    assert motions["static"] == 8 and {motions[m] for m in MOTIONS} <= {39, 40}
    look = train_appearance()
    for motion in MOTIONS:
        group = [s for s in specs if s.motion == motion]
        for field, values in (("shape", look.shapes), ("color", look.colors), ("background", look.backgrounds)):
            counts = Counter(getattr(s, field) for s in group)
            assert set(counts) == set(values) and max(counts.values()) - min(counts.values()) <= 1
        pans = [s for s in group if s.camera == "pan"]
        assert len(pans) == 4 and all(s.background != "plain" for s in pans)
    assert all(s.camera == "static" for s in specs if s.motion == "static")
    assert sample_specs(400, seed=1) == specs and sample_specs(400, seed=2) != specs


def test_heldout_values_never_appear_in_training_specs():
    train, held = train_appearance(), heldout_appearance()
    assert len(held.colors) >= 2 and 1 <= len(held.shapes) <= 2 and len(held.backgrounds) >= 1
    assert len(train.colors) >= 8
    for field in ("shapes", "colors", "backgrounds"):
        assert not set(getattr(train, field)) & set(getattr(held, field))
    specs = sample_specs(300, seed=5)
    assert not {s.shape for s in specs} & set(held.shapes)
    assert not {s.color for s in specs} & set(held.colors)
    assert not {s.background for s in specs} & set(held.backgrounds)
    queries = sample_specs(20, seed=5, appearance="heldout")
    assert {s.color for s in queries} == set(held.colors) and {s.shape for s in queries} == set(held.shapes)


def test_bad_specs_are_refused():
    with pytest.raises(MotiveError, match="motion='wobble'"):
        ShapeSpec("wobble", "circle", "red", "plain")
    with pytest.raises(MotiveError, match="appearance"):
        sample_specs(4, seed=0, appearance="test")
    with pytest.raises(MotiveError, match="sizes=.0.2, 0.1."):
        sample_specs(4, seed=0, sizes=(0.2, 0.1))
    with pytest.raises(MotiveError, match="size=0.3 must be between"):
        ShapeSpec("slide", "circle", "red", "plain", size=0.3)
    assert {0.16 <= s.size <= 0.2 for s in sample_specs(30, seed=0, sizes=(0.16, 0.2))} == {True}


def test_write_clip_folder_metadata_and_determinism(tmp_path):
    specs = sample_specs(4, seed=9, pan_fraction=0.5)
    clips = write_clip_folder(tmp_path / "a", specs, num_frames=8, size=32, fps=8)
    write_clip_folder(tmp_path / "b", specs, num_frames=8, size=32, fps=8)
    text = (tmp_path / "a" / "metadata.jsonl").read_text()
    assert text == (tmp_path / "b" / "metadata.jsonl").read_text()
    rows = [json.loads(line) for line in text.splitlines()]
    assert [set(row) for row in rows] == [{"file_name", "text", *LABEL_KEYS}] * 4
    assert [row["motion"] for row in rows] == [s.motion for s in specs]
    assert [row["text"] for row in rows] == [caption(s) for s in specs]
    assert [c.to_dict() for c in clips] == [c.to_dict() for c in load_clip_folder(tmp_path / "a")]
    for clip in clips:
        video_a, video_b = read_video(clip.file), read_video(tmp_path / "b" / clip.file_name)
        assert video_a.frames.shape == (8, 32, 32, 3) and video_a.fps == 8
        assert (video_a.frames == video_b.frames).all()
    rendered = render_clip(specs[0], 8, 32).astype(int)
    assert np.abs(read_video(clips[0].file).frames.astype(int) - rendered).mean() < 6  # H.264 keeps the picture
