"""The varied views a demo recipe with views > 1 trains on (motive_core/demo/views.py): each keeps the clip's
motion and caption truthful while changing what the independent renderer changes (colours, pace, side, framing)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from benchmarks.common.results import DEMO_CLIPS, DEMO_MODEL
from motive_core.data import load_clip_folder
from motive_core.demo.model import DemoVideoModel
from motive_core.demo.train import TrainConfig, load_training_tensors
from motive_core.demo.views import DENSE, mirror, recolour, reframe, retime, training_views, without_colour
from motive_core.demo.world import DemoRecipe
from motive_core.errors import MotiveError
from motive_core.models import load_model
from motive_core.video import Video, read_video, standardize


def moving_square(frames: int = 12, size: int = 16) -> np.ndarray:
    video = np.full((frames, size, size, 3), 40, np.uint8)
    for t in range(frames):
        video[t, 4:8, t % (size - 4):t % (size - 4) + 4] = (200, 60, 30)
    return video


def test_retime_reads_the_clip_forwards_at_another_pace():
    dense = np.arange(64)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)  # frame i holds the value i
    rng = np.random.default_rng(0)
    for _ in range(20):
        view = retime(dense, 16, rng)
        order = view[:, 0, 0, 0].astype(int)
        assert view.shape == (16, 2, 2, 3)
        assert np.all(np.diff(order) >= 0) and order[-1] > order[0]  # forwards in time, never backwards
        assert 0 <= order.min() and order.max() <= 63


def test_recolour_changes_the_look_and_keeps_still_pixels_still():
    video = moving_square()
    view = recolour(video, np.random.default_rng(1))
    assert view.shape == video.shape and view.dtype == np.uint8
    assert not np.array_equal(view, video)
    still = np.all(video[1:] == video[:-1], axis=-1)  # pixels that do not change between two frames
    assert np.all(np.all(view[1:] == view[:-1], axis=-1)[still])  # the grain is fixed, so they stay still
    moved = ~still
    assert np.any(np.any(view[1:] != view[:-1], axis=-1)[moved])


def test_reframe_scales_the_object_and_its_travel_alike_and_keeps_the_way_it_goes():
    video = np.full((6, 64, 64, 3), 40, np.uint8)
    for t in range(6):
        video[t, 28:36, 26 + 2 * t:34 + 2 * t] = 220  # an 8 px square moving right 2 px a frame, kept in view
    rng = np.random.default_rng(3)
    for _ in range(10):
        view = reframe(video, rng)
        assert view.shape == video.shape and view.dtype == np.uint8
        bright = view[..., 0] > 130
        zoom = np.sqrt(bright.sum(axis=(1, 2)).mean() / 64)
        xs = [np.nonzero(frame)[1].mean() for frame in bright]
        assert 0.55 < zoom < 1.3 and abs((xs[-1] - xs[0]) / 5 - 2 * zoom) < 0.3  # travel scales with size
    still = np.repeat(video[:1], 6, axis=0)
    held = reframe(still, rng)
    assert np.all(held == held[:1]) and not np.array_equal(held, still)  # every frame alike: still stays still


def test_mirror_flips_the_frames_and_the_direction_words():
    video = moving_square()
    flipped, text = mirror(video, "a red square sliding left on a plain background")
    assert np.array_equal(flipped, video[:, :, ::-1])
    assert text == "a red square sliding right on a plain background"
    assert mirror(video, "a star spinning clockwise")[1] == "a star spinning anticlockwise"
    assert mirror(video, "a star stretching horizontally")[1] == "a star stretching horizontally"  # an axis
    back, again = mirror(flipped, text)
    assert np.array_equal(back, video) and again == "a red square sliding left on a plain background"


@pytest.mark.parametrize("text, expected", [
    ("an orange star spinning clockwise on a plain background", "a star spinning clockwise on a plain background"),
    ("a red square sliding left on a noisy background", "a square sliding left on a noisy background"),
    ("a square sliding left", "a square sliding left"),
])
def test_a_recoloured_view_drops_the_colour_word(text, expected):
    assert without_colour(text) == expected


def test_the_first_view_of_each_clip_is_the_clip_as_the_committed_model_trained_on_it():
    model = load_model(DEMO_MODEL, device="cpu")
    clips = load_clip_folder(DEMO_CLIPS)[:2]
    views, captions = training_views(model, clips, views=3, seed=0)
    g = model.geometry
    assert views.shape == (6, 3, g.num_frames, g.height, g.width) and len(captions) == 6
    plain, plain_captions = load_training_tensors(model, clips)
    assert np.array_equal(views[0::3].numpy(), plain.numpy()) and captions[0::3] == plain_captions
    assert not np.array_equal(views[1].numpy(), views[0].numpy())
    assert all(c in (without_colour(captions[0]), mirror(views[0].numpy(), without_colour(captions[0]))[1])
               for c in captions[1:3])


def test_views_refuse_what_they_cannot_make(clip_folder):
    model = load_model(DEMO_MODEL, device="cpu")
    with pytest.raises(MotiveError, match="no clips"):
        training_views(model, [], views=2, seed=0)
    with pytest.raises(MotiveError, match="views must be at least 1"):
        training_views(model, load_clip_folder(clip_folder), views=0, seed=0)


def test_a_recipe_with_views_trains_on_them_and_one_view_trains_as_before(clip_folder, tiny_geometry):
    """views=1 is the committed recipe's training, step for step; views=2 sees other clips and learns otherwise."""
    from motive_core.demo.train import train
    from motive_core.demo.world import train_demo_model

    recipe = DemoRecipe(geometry=tiny_geometry, train=TrainConfig(steps=3, batch_size=2, log_every=1),
                        transformer=dict(patch_size=(2, 4, 4), num_layers=1, num_attention_heads=2,
                                         attention_head_dim=8, ffn_dim=32))
    clips = load_clip_folder(clip_folder)
    one = train_demo_model(recipe, clips)
    plain = DemoVideoModel.create(sorted({w for c in clips for w in c.caption.lower().replace(",", " ").split()}),
                                  tiny_geometry, seed=recipe.model_seed, transformer=recipe.transformer,
                                  prediction=recipe.prediction, coordinates=recipe.coordinates)
    train(plain, clips, recipe.train, progress=False)
    assert one.identity()["weight_hash"] == plain.identity()["weight_hash"]
    two = train_demo_model(replace(recipe, views=2), clips)
    assert two.identity()["weight_hash"] != one.identity()["weight_hash"]


def test_bench_retrain_can_start_from_a_saved_model(clip_folder, tiny_geometry, tmp_path):
    """--from-committed trains on from the base's weights: no steps keep them, steps move them but not to a
    fresh model's, and the result is kept for the next run."""
    from benchmarks.bench_retrain import retrained_model
    from motive_core.demo.world import train_demo_model

    recipe = DemoRecipe(geometry=tiny_geometry, views=2, train=TrainConfig(steps=2, batch_size=2, log_every=1),
                        transformer=dict(patch_size=(2, 4, 4), num_layers=1, num_attention_heads=2,
                                         attention_head_dim=8, ffn_dim=32))
    clips = load_clip_folder(clip_folder)
    base = train_demo_model(replace(recipe, views=1), clips)
    base.save(tmp_path / "base")
    base_hash = base.identity()["weight_hash"]
    kept = retrained_model(replace(recipe, train=replace(recipe.train, steps=0)), clips, tmp_path / "kept",
                           base=tmp_path / "base")
    assert kept.identity()["weight_hash"] == base_hash
    moved = retrained_model(recipe, clips, tmp_path / "moved", base=tmp_path / "base")
    fresh = train_demo_model(recipe, clips)
    assert len({moved.identity()["weight_hash"], base_hash, fresh.identity()["weight_hash"]}) == 3
    again = retrained_model(recipe, clips, tmp_path / "moved", base=tmp_path / "base")
    assert again.identity()["weight_hash"] == moved.identity()["weight_hash"]
    seen = retrained_model(recipe, clips, tmp_path / "seen", base=tmp_path / "base", seen_per_motion=1)
    assert seen.identity()["weight_hash"] not in (moved.identity()["weight_hash"], base_hash)


def test_bench_retrain_seed_and_depth_reach_the_recipe(clip_folder, tiny_geometry):
    """--seed sets the fresh weights' and the training draws' seed, --layers the blocks; each gets a cache folder
    of its own while the committed settings keep their folder; --layers cannot start from the committed weights."""
    from benchmarks.bench_retrain import arguments, study_recipe
    from motive_core.demo.world import train_demo_model

    committed, committed_folder = study_recipe(arguments(["--views", "1"]))
    recipe, folder = study_recipe(arguments(["--views", "1", "--seed", "1", "--layers", "2"]))
    assert (recipe.model_seed, recipe.train.seed, recipe.transformer["num_layers"]) == (1, 1, 2)
    assert {k: v for k, v in recipe.transformer.items() if k != "num_layers"} == {
        k: v for k, v in DemoRecipe().transformer.items() if k != "num_layers"}
    assert (committed.model_seed, committed.transformer) == (0, DemoRecipe().transformer)
    seeded_folder = study_recipe(arguments(["--views", "1", "--seed", "1"]))[1]
    assert len({committed_folder, folder, seeded_folder}) == 3
    with pytest.raises(SystemExit):
        arguments(["--from-committed", "--layers", "6"])
    small = DemoRecipe(geometry=tiny_geometry, train=TrainConfig(steps=1, batch_size=2, log_every=1),
                       transformer=dict(patch_size=(2, 4, 4), num_layers=1, num_attention_heads=2,
                                        attention_head_dim=8, ffn_dim=32))
    clips = load_clip_folder(clip_folder)
    one = train_demo_model(small, clips)
    other_seed = train_demo_model(replace(small, model_seed=1, train=replace(small.train, seed=1)), clips)
    deeper = train_demo_model(replace(small, transformer={**small.transformer, "num_layers": 2}), clips)
    assert other_seed.identity()["weight_hash"] != one.identity()["weight_hash"]
    sizes = [sum(p.numel() for p in model.transformer.parameters()) for model in (deeper, one, other_seed)]
    assert sizes[0] > sizes[1] == sizes[2]


def test_the_seen_independent_clips_are_not_the_queries():
    """--seen-independent trains on the independent renderer's clips of another seed than the queries'."""
    from benchmarks.bench_retrain import seen_independent
    from benchmarks.independent_motions import MOTIONS, independent_queries

    model = load_model(DEMO_MODEL, device="cpu")
    g = model.geometry
    frames, captions = seen_independent(model, 1)
    assert frames.shape == (len(MOTIONS), 3, g.num_frames, g.height, g.width) and frames.dtype == torch.uint8
    queries = independent_queries(1, seed=0)
    assert len(captions) == len(MOTIONS) and all(isinstance(c, str) and c for c in captions)
    query_frames = {standardize(Video(q["frames"], q["fps"], "query"), g.num_frames, g.fps, g.height, g.width)
                    .tobytes() for q in queries}
    assert not query_frames & {clip.permute(1, 2, 3, 0).numpy().tobytes() for clip in frames}


def test_each_change_can_be_made_alone():
    """A colour-only view keeps the clip's timing and side; a timing-only view keeps its colours and caption, and so
    does a reframed one."""
    model = load_model(DEMO_MODEL, device="cpu")
    clips = load_clip_folder(DEMO_CLIPS)[:1]
    plain = load_training_tensors(model, clips)[0][0].numpy()
    colour, colour_captions = training_views(model, clips, views=2, seed=0, changes=("colour",))
    view = colour[1].numpy()
    assert colour_captions[1] == without_colour(clips[0].caption)
    still_plain, still_view = (np.all(v[:, 1:] == v[:, :-1], axis=0) for v in (plain, view))
    assert np.all(still_view[still_plain])  # same timing: what is still in the clip is still in the view
    assert still_view[~still_plain].mean() < 0.1  # and what moves still moves (saturation may hide a little)
    timing, timing_captions = training_views(model, clips, views=2, seed=0, changes=("timing",))
    assert timing_captions[1] == clips[0].caption
    g = model.geometry
    dense = standardize(read_video(clips[0].file), g.num_frames * DENSE, g.fps * DENSE, g.height, g.width)
    source = {frame.tobytes() for frame in dense}
    retimed = timing[1].numpy().transpose(1, 2, 3, 0)  # (T, H, W, 3): every frame is one of the clip's own
    assert all(frame.tobytes() in source for frame in retimed)
    assert not np.array_equal(retimed, plain.transpose(1, 2, 3, 0))
    reframed, reframed_captions = training_views(model, clips, views=2, seed=0, changes=("reframe",))
    assert reframed_captions[1] == clips[0].caption and not np.array_equal(reframed[1].numpy(), plain)
    with pytest.raises(MotiveError, match="view changes must be some of"):
        training_views(model, clips, views=2, seed=0, changes=("blur",))
