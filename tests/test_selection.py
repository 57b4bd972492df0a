"""Space-time selection on a query: mask × selection, the latent mapping of a frame range, tracking,
refusals, the command-line flags and the "when" windows, on real rendered clips and a real demo model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from motive_core.cli import main
from motive_core.config import AttributionSettings
from motive_core.demo.motionshapes import ShapeSpec, render_clip
from motive_core.errors import MotiveError
from motive_core.featurize import Featurizer, PreparedClip
from motive_core.mask import mask_to_latent, motion_stats
from motive_core.models import VideoGeometry, load_model
from motive_core.motion import MotionField
from motive_core.segments import attribute_segments, time_windows
from motive_core.selection import (Box, QuerySelection, box_from_model, frames_from_model, parse_box, parse_frames,
                                   parse_selection, select, selection_weight)
from motive_core.video import Video, resample_indices, standardize, write_mp4

SLIDE = ShapeSpec("slide", "square", "red", "plain", size=0.16, direction=1)


@pytest.fixture(scope="module")
def featurizer(tiny_demo_dir) -> Featurizer:
    return Featurizer(load_model(str(tiny_demo_dir)), AttributionSettings(proj_dim=32, loss="temporal_diff",
                                                                           conditioning="null"))


@pytest.fixture(scope="module")
def slide(featurizer) -> PreparedClip:
    """A red square sliding right across a 64×64, 32-frame, 16 fps query (the model sees 8 frames at 32×32)."""
    return featurizer.prepare(Video(render_clip(SLIDE, 32, 64), 16.0, "slide"))


def wan_clip(frames: int = 9) -> PreparedClip:
    """A Wan-shaped (4n+1 frames, first frame alone) prepared clip whose every pixel moves 1 px per frame."""
    displacement = np.zeros((frames, 32, 32, 2), np.float32)
    displacement[..., 0] = 1.0
    field = MotionField(displacement)
    mask = np.ones((frames, 32, 32), np.float32)
    return PreparedClip(np.zeros((frames, 32, 32, 3), np.uint8), field, mask, mask[::4, ::8, ::8], motion_stats(field),
                        source={"frames": frames, "fps": 8.0, "height": 32, "width": 32})


WAN = VideoGeometry(num_frames=9, fps=8.0, height=32, width=32, temporal_factor=4, spatial_factor=8,
                    first_frame_alone=True)


# ----------------------------------------------------------------------------------------- the math


def test_box_multiplies_the_pixel_mask_before_the_latent_map(slide, featurizer):
    g = featurizer.adapter.geometry
    left = select(slide, QuerySelection((Box(0, 0, 32, 64),)), g)  # left half of the 64-px query
    assert np.array_equal(left.mask[:, :, :16], slide.mask[:, :, :16]) and not left.mask[:, :, 16:].any()
    expected = mask_to_latent(slide.mask * (np.arange(32) < 16)[None, None, :], g.latent_grid(), g.temporal_factor,
                              g.first_frame_alone)
    assert np.allclose(left.latent_mask, expected)
    assert slide.selection is None and left.selection["boxes"][0]["x1"] == 32.0  # the original clip is unchanged
    soft = select(slide, QuerySelection((Box(0, 0, 33, 64),)), g)  # half a model pixel more: column 16 at 0.5
    assert np.allclose(soft.mask[:, :, 16], 0.5 * slide.mask[:, :, 16])


def test_boxes_are_in_query_pixels_through_the_centre_crop():
    """A 64×128 query covers-and-crops to 32×32: a box drawn around a patch lands on that patch once standardised."""
    g = VideoGeometry(num_frames=4, fps=8.0, height=32, width=32)
    frames = np.zeros((4, 64, 128, 3), np.uint8)
    frames[:, 10:30, 50:90] = 255
    model_frames = standardize(Video(frames, 8.0, "wide"), 4, 8.0, 32, 32)
    moving = np.zeros((4, 32, 32, 2), np.float32)
    moving[..., 0] = 1.0
    weight, record = selection_weight(QuerySelection((Box(50, 10, 90, 30),)), {"frames": 4, "fps": 8.0, "height": 64,
                                                                              "width": 128}, g, MotionField(moving))
    assert record["boxes_on_model_frames"][0][0] == [9.0, 5.0, 29.0, 15.0]
    assert np.array_equal(weight[0] > 0.5, model_frames[0, ..., 0] > 127)
    with pytest.raises(MotiveError, match="centre crop"):
        selection_weight(QuerySelection((Box(0, 0, 20, 20),)), {"frames": 4, "fps": 8.0, "height": 64, "width": 128},
                         g, MotionField(moving))


def test_a_box_drawn_on_the_model_clip_maps_back_to_the_same_model_pixels(slide, featurizer):
    """What a viewer of the standardised clip draws (model pixels, model frames) selects exactly that."""
    g = featurizer.adapter.geometry
    box = box_from_model(4, 6, 20, 30, slide.source, g, model_frame=3)
    assert (box.x0, box.y0, box.x1, box.y1) == (8, 12, 40, 60)
    first, last = 2, 5
    chosen = select(slide, QuerySelection((box,), frames_from_model(first, last, slide.source, g)), g).selection
    assert chosen["model_frames"] == list(range(first, last + 1))
    assert chosen["boxes_on_model_frames"][0][3][:4] == [4.0, 6.0, 20.0, 30.0]
    with pytest.raises(MotiveError, match="model frames"):
        frames_from_model(5, 2, slide.source, g)


def test_frame_range_selects_the_model_frames_sampled_from_it(slide, featurizer):
    g = featurizer.adapter.geometry
    sampled, _ = resample_indices(32, 16.0, g.num_frames, g.fps)
    part = select(slide, QuerySelection(frames=(8, 20)), g)
    inside = (sampled >= 8) & (sampled < 20)
    assert part.selection["model_frames"] == np.flatnonzero(inside).tolist()
    assert part.selection["query_frames"] == sampled[inside].tolist()
    assert np.array_equal(part.mask[inside], slide.mask[inside]) and not part.mask[~inside].any()


@pytest.mark.parametrize("frames, latent", [((0, 1), [1, 0, 0]), ((1, 5), [0, 1, 0]), ((5, 9), [0, 0, 1]),
                                            ((3, 7), [0, 0.5, 0.5]), ((0, 9), [1, 1, 1])])
def test_frame_range_on_wans_4n_plus_1_grid(frames, latent):
    """Frame 0 is its own latent frame; then groups of 4 (1-4, 5-8): a range covering half a group weighs it 0.5."""
    selected = select(wan_clip(), QuerySelection(frames=frames), WAN)
    assert selected.latent_mask.shape == WAN.latent_grid() == (3, 4, 4)
    assert np.allclose(selected.latent_mask.mean(axis=(1, 2)), latent)


def test_a_box_drawn_on_a_frame_follows_the_object(slide, featurizer):
    g = featurizer.adapter.geometry
    red = (slide.frames[..., 0] > 150) & (slide.frames[..., 1] < 100)  # the red square on a dark blue background
    ys, xs = np.mgrid[0:g.height, 0:g.width] + 0.5
    track = np.stack([(red * xs).sum((1, 2)) / red.sum((1, 2)), (red * ys).sum((1, 2)) / red.sum((1, 2))], axis=1)
    start = track[0]
    box = Box(*(2 * (start - 5)), *(2 * (start + 5)), frame=int(resample_indices(32, 16.0, g.num_frames, g.fps)[0][0]))
    rects = np.array(select(slide, QuerySelection((box,)), g).selection["boxes_on_model_frames"][0])
    centres = (rects[:, :2] + rects[:, 2:]) / 2
    assert np.abs(centres - track).max() < 1.5, (centres, track)
    assert abs(track[-1, 0] - track[0, 0]) > 6  # the object travels most of the way out of a box that stays put


def test_selection_covering_everything_gives_the_unselected_vector(slide, featurizer, tiny_demo_dir):
    g = featurizer.adapter.geometry
    everything = QuerySelection((Box(0, 0, 64, 64),), (0, 32))
    whole = featurizer.vector(slide, "")
    assert np.array_equal(featurizer.vector(select(slide, everything, g), ""), whole)
    half = featurizer.vector(select(slide, QuerySelection(frames=(0, 16)), g), "")
    assert not np.allclose(half, whole)
    nomask = Featurizer(featurizer.adapter, AttributionSettings(proj_dim=32, loss="temporal_diff", conditioning="null",
                                                                use_mask=False))
    assert np.array_equal(nomask.vector(select(slide, everything, g, use_mask=False), ""), nomask.vector(slide, ""))
    assert not np.allclose(nomask.vector(select(slide, QuerySelection(frames=(0, 16)), g, use_mask=False), ""),
                           nomask.vector(slide, ""))


def test_isolating_hides_what_lies_outside_the_boxes_from_the_model(slide, featurizer):
    g = featurizer.adapter.geometry
    left = QuerySelection((Box(0, 0, 32, 64),))
    isolated = select(slide, QuerySelection(left.boxes, isolate=True), g)
    assert np.array_equal(isolated.frames[:, :, :16], slide.frames[:, :, :16])
    background = np.clip(np.rint(np.median(slide.frames, axis=0)), 0, 255).astype(np.uint8)
    outside = isolated.frames[:, :, 16:]
    assert np.array_equal(outside, np.broadcast_to(background[:, 16:], outside.shape))
    assert np.array_equal(isolated.mask, select(slide, left, g).mask)  # the loss weight is the same W ⊙ S
    assert not np.allclose(featurizer.vector(isolated, ""), featurizer.vector(select(slide, left, g), ""))
    everything = QuerySelection((Box(0, 0, 64, 64),), isolate=True)
    assert np.array_equal(featurizer.vector(select(slide, everything, g), ""), featurizer.vector(slide, ""))
    assert isolated.selection["isolate"] and "(isolated)" in isolated.selection["description"]


# -------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("make, message", [
    (lambda: Box(10, 0, 10, 5), "is empty"),
    (lambda: Box(0, 9, 5, 3), "is empty"),
    (lambda: Box(0, 0, float("nan"), 5), "finite"),
    (lambda: Box(0, 0, 5, 5, frame=-1), "frame"),
    (lambda: QuerySelection(), "selection is empty"),
    (lambda: QuerySelection(frames=(6, 6)), "empty"),
    (lambda: QuerySelection(frames=(-2, 4)), "empty or negative"),
    (lambda: parse_box("1,2,3"), "x0,y0,x1,y1"),
    (lambda: parse_box("1,2,3,4@x"), "x0,y0,x1,y1"),
    (lambda: parse_frames("4"), "A:B"),
    (lambda: QuerySelection(frames=(0, 8), isolate=True), "isolating needs a box"),
])
def test_bad_selections_are_refused_with_a_message(make, message):
    with pytest.raises(MotiveError, match=message):
        make()


@pytest.mark.parametrize("selection, message", [
    (QuerySelection((Box(70, 0, 90, 10),)), "outside the query's 64×64 frame"),
    (QuerySelection((Box(-20, -20, -1, 5),)), "outside"),
    (QuerySelection(frames=(40, 50)), "after the query's last frame"),
    (QuerySelection((Box(0, 0, 64, 64, frame=32),)), "query has frames 0 … 31"),
    (QuerySelection((Box(0, 0, 64, 12),)), "holds no motion"),
])
def test_selections_that_miss_the_clip_are_refused(slide, featurizer, selection, message):
    with pytest.raises(MotiveError, match=message):
        select(slide, selection, featurizer.adapter.geometry)


def test_a_range_between_the_sampled_frames_is_refused(slide, featurizer):
    g = featurizer.adapter.geometry
    sampled, _ = resample_indices(32, 16.0, g.num_frames, g.fps)
    gap = next(f for f in range(int(sampled[0]), 32) if f not in sampled)
    with pytest.raises(MotiveError, match="holds none of the 8 frames"):
        select(slide, QuerySelection(frames=(gap, gap + 1)), g)


def test_selecting_twice_is_an_api_error(slide, featurizer):
    once = select(slide, QuerySelection(frames=(0, 16)), featurizer.adapter.geometry)
    with pytest.raises(ValueError, match="already carries a selection"):
        select(once, QuerySelection(frames=(0, 8)), featurizer.adapter.geometry)


def test_parse_selection():
    assert parse_selection(None, None) is None
    chosen = parse_selection(["1,2,30,40@5", "0,0,8.5,8"], "3:9", isolate=True)
    assert chosen.boxes == (Box(1, 2, 30, 40, 5), Box(0, 0, 8.5, 8)) and chosen.frames == (3, 9) and chosen.isolate
    assert QuerySelection.from_dict(json.loads(json.dumps(chosen.to_dict()))) == chosen


# ---------------------------------------------------------------------------------- CLI and windows


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory, clip_folder, tiny_demo_dir):
    out = tmp_path_factory.mktemp("selection-index") / "idx"
    assert main(["build-index", "--data", str(clip_folder), "--model", str(tiny_demo_dir), "--out", str(out),
                 "--proj-dim", "32", "--preset", "motion", "--json"]) == 0
    return out


def test_query_flags_echo_the_selection(capsys, tmp_path, tiny_index):
    video = write_mp4(render_clip(SLIDE, 32, 64), tmp_path / "slide.mp4", 16.0)
    capsys.readouterr()
    code = main(["query", "--index", str(tiny_index), "--video", str(video), "--region", "0,20,40,60@8",
                 "--region", "30,20,64,60", "--frames", "4:28", "--top", "3", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    selection = json.loads(out)["selection"]
    assert selection["boxes"] == [{"x0": 0.0, "y0": 20.0, "x1": 40.0, "y1": 60.0, "frame": 8},
                                  {"x0": 30.0, "y0": 20.0, "x1": 64.0, "y1": 60.0, "frame": None}]
    assert selection["frames"] == [4, 28] and selection["query_frames"][0] >= 4
    assert len(selection["boxes_on_model_frames"]) == 2 and 0 < selection["motion_kept"] < 1
    code = main(["query", "--index", str(tiny_index), "--video", str(video), "--top", "3", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["selection"] is None
    code = main(["query", "--index", str(tiny_index), "--video", str(video), "--region", "0,0,40,64", "--isolate",
                 "--top", "3", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["selection"]["isolate"] is True


@pytest.mark.parametrize("flags, message", [(["--region", "1,2,3"], "x0,y0,x1,y1"), (["--frames", "9"], "A:B"),
                                            (["--region", "100,100,120,120"], "outside"),
                                            (["--frames", "20:10"], "empty")])
def test_query_flags_refuse_bad_selections_in_one_line(capsys, tmp_path, tiny_index, flags, message):
    video = write_mp4(render_clip(SLIDE, 32, 64), tmp_path / "slide.mp4", 16.0)
    capsys.readouterr()
    code = main(["query", "--index", str(tiny_index), "--video", str(video), *flags])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and message in lines[0] and "Traceback" not in err


def test_time_windows_cover_the_clip_on_whole_latent_frames():
    assert time_windows({"frames": 9, "fps": 8.0}, WAN, 3) == [(0, 1), (1, 5), (5, 9)]
    assert time_windows({"frames": 9, "fps": 8.0}, WAN, 2) == [(0, 5), (5, 9)]
    with pytest.raises(MotiveError, match="1 to 3 windows"):
        time_windows({"frames": 9, "fps": 8.0}, WAN, 4)


def test_each_window_is_ranked_and_a_still_window_says_so(tiny_index, tiny_demo_dir):
    from motive_core.query import Attributor

    attributor = Attributor(tiny_index, model=str(tiny_demo_dir))
    frames = render_clip(SLIDE, 16, 64)
    still_then_moving = np.concatenate([np.repeat(frames[:1], 16, axis=0), frames])  # 1 s still, then 1 s slide
    prepared = attributor.featurizer.prepare(Video(still_then_moving, 16.0, "late"))
    segments = attribute_segments(attributor, prepared, count=2, top=3)
    assert [(s.start, s.stop) for s in segments] == [(0, segments[1].start), (segments[1].start, 32)]
    assert segments[0].result is None and "holds no motion" in segments[0].note
    moving = segments[1].result
    assert moving is not None and len(moving.positives) == 3
    assert moving.to_dict()["selection"]["frames"] == [segments[1].start, 32]
    assert segments[1].to_dict()["positives"][0]["id"] == moving.positives[0]["id"]


def test_each_window_keeps_the_box_and_its_isolation(tiny_index, tiny_demo_dir):
    """The "when" view of a boxed, isolated query ranks each stretch as the same query restricted to that
    stretch would be: isolation is not dropped on the way."""
    from motive_core.query import Attributor

    attributor = Attributor(tiny_index, model=str(tiny_demo_dir))
    prepared = attributor.featurizer.prepare(Video(render_clip(SLIDE, 32, 64), 16.0, "slide"))
    box = (Box(0, 16, 64, 48),)
    isolated = attribute_segments(attributor, prepared, count=2, top=3, boxes=box, isolate=True)
    plain = attribute_segments(attributor, prepared, count=2, top=3, boxes=box)
    for segment, other in zip(isolated, plain):
        alone = attributor.attribute(prepared, "", 3, QuerySelection(box, (segment.start, segment.stop), True))
        assert segment.to_dict()["selection"]["isolate"] is True
        assert np.allclose(segment.result.scores, alone.scores)
        assert not np.allclose(segment.result.scores, other.result.scores)


def test_query_windows_flag_ranks_each_window(capsys, tmp_path, tiny_index):
    video = write_mp4(render_clip(SLIDE, 32, 64), tmp_path / "slide.mp4", 16.0)
    capsys.readouterr()
    code = main(["query", "--index", str(tiny_index), "--video", str(video), "--windows", "2", "--top", "2", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    windows = json.loads(out)["windows"]
    assert [w["frames"][1] for w in windows][-1] == 32 and windows[0]["frames"][1] == windows[1]["frames"][0]
    assert all(len(w["positives"]) == 2 and w["selection"]["frames"] == w["frames"] for w in windows)
    code = main(["query", "--index", str(tiny_index), "--video", str(video), "--windows", "2", "--frames", "0:8"])
    assert code == 2 and "drop --frames" in capsys.readouterr().err
