"""Motion mask (Eq. 13), latent mapping (Eq. 14), motion statistics and overlays."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from motive_core.errors import MotiveError
from motive_core.mask import (MotionStats, camera_motion_score, grey_fade, heatmap, latent_frame_groups,
                              mask_to_latent, motion_mask, motion_stats)
from motive_core.motion import MotionField, OpenCVFlowEstimator


def render(frames: int = 6, side: int = 64, step: int = 0, pan: int = 0, square: int = 0) -> np.ndarray:
    """Textured background panned ``pan`` px/frame, with an optional textured square moving ``step`` px/frame."""
    rng = np.random.default_rng(1)
    background = cv2.GaussianBlur(rng.integers(0, 256, (side, 2 * side, 3), dtype=np.uint8), (5, 5), 0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (max(square, 3),) * 2 + (3,), dtype=np.uint8), (3, 3), 0)
    clip = []
    for f in range(frames):
        frame = background[:, pan * f:pan * f + side].copy()
        top, left = side // 2 - square // 2, 8 + step * f
        frame[top:top + square, left:left + square] = texture[:square, :square]
        clip.append(frame)
    return np.stack(clip)


# ---------------------------------------------------------------------------------------------- Eq. 13


def test_mask_range_and_extremes():
    magnitude = np.random.default_rng(0).uniform(0.3, 5.0, (4, 8, 8)).astype(np.float32)
    mask = motion_mask(magnitude)
    assert mask.dtype == np.float32 and mask.shape == magnitude.shape
    assert mask.min() == 0.0 and mask.max() == pytest.approx(1.0, abs=1e-5) and mask.max() <= 1.0
    assert mask.ravel()[magnitude.argmax()] == mask.max()


def test_static_clip_gives_zeros_not_nan():
    mask = motion_mask(np.full((3, 4, 4), 0.7, np.float32))
    assert np.all(mask == 0) and np.isfinite(mask).all()


def test_normalisation_is_global_not_per_frame():
    magnitude = np.zeros((2, 4, 4), np.float32)
    magnitude[0, 0, 0] = 10.0
    magnitude[1, 0, 0] = 1.0  # a frame with small motion keeps a small value
    mask = motion_mask(magnitude)
    assert mask[0, 0, 0] == pytest.approx(1.0) and mask[1, 0, 0] == pytest.approx(0.1, abs=1e-5)


def test_mask_is_soft():
    mask = motion_mask(np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 8, 8))
    assert len(np.unique(mask)) == 64


def test_nan_magnitude_is_refused():
    with pytest.raises(MotiveError, match="NaN"):
        motion_mask(np.array([[[0.0, np.nan]]]))


# ---------------------------------------------------------------------------------------------- Eq. 14


def test_wan_groups_for_81_frames():
    groups = latent_frame_groups(81, 4, True)
    assert len(groups) == 21
    assert list(groups[0]) == [0] and list(groups[1]) == [1, 2, 3, 4] and list(groups[-1]) == [77, 78, 79, 80]
    assert [f for g in groups for f in g] == list(range(81))


def test_pixel_model_and_plain_groups():
    assert [list(g) for g in latent_frame_groups(3, 1, False)] == [[0], [1], [2]]
    assert [list(g) for g in latent_frame_groups(8, 4, False)] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_80_frames_refused_for_wan():
    with pytest.raises(MotiveError, match="4n\\+1"):
        latent_frame_groups(80, 4, True)
    with pytest.raises(MotiveError, match="multiple of 4"):
        latent_frame_groups(9, 4, False)


def test_frame_3_lands_in_latent_frame_1_at_wan_resolution():
    mask = np.zeros((81, 480, 832), np.float32)
    mask[3] = 1.0
    latent = mask_to_latent(mask, (21, 60, 104), 4, True)
    assert latent.shape == (21, 60, 104) and latent.dtype == np.float32
    assert np.flatnonzero(latent.reshape(21, -1).max(axis=1)).tolist() == [1]
    assert np.allclose(latent[1], 0.25)  # one of the group's four frames


def test_latent_values_stay_in_unit_range_and_follow_space():
    mask = np.zeros((5, 16, 16), np.float32)
    mask[:, :8, :8] = 1.0  # top-left quadrant moves
    latent = mask_to_latent(mask, (2, 2, 2), 4, True)
    assert latent.min() >= 0 and latent.max() <= 1
    assert np.allclose(latent[:, 0, 0], 1.0) and np.allclose(latent[:, 1, 1], 0.0)
    mild = mask_to_latent(np.random.default_rng(0).random((2, 12, 12), np.float32), (2, 9, 9), 1, False)
    assert mild.shape == (2, 9, 9) and 0 <= mild.min() and mild.max() <= 1


def test_latent_frame_count_mismatch_is_refused():
    with pytest.raises(MotiveError, match="latent grid"):
        mask_to_latent(np.zeros((81, 8, 8), np.float32), (20, 1, 1), 4, True)


# ------------------------------------------------------------------------------------------ statistics


def test_camera_score_high_for_pan_low_for_small_object():
    estimator = OpenCVFlowEstimator()
    pan = motion_stats(estimator.estimate(render(pan=2)))
    small = motion_stats(estimator.estimate(render(step=2, square=12)))
    assert pan.camera_motion_score >= 0.8 and pan.is_camera_motion
    assert small.camera_motion_score <= 0.3 and not small.is_camera_motion
    assert not pan.is_near_static and not small.is_near_static


def test_static_clip_stats():
    stats = motion_stats(OpenCVFlowEstimator().estimate(render()))
    assert stats.is_near_static and not stats.is_camera_motion and stats.camera_motion_score == 0.0
    assert stats.motion_max < 0.5


def test_stats_values_and_json():
    displacement = np.zeros((3, 4, 5, 2), np.float32)
    displacement[1, :, :, 0] = 3.0
    displacement[2, 0, 0] = [3.0, 4.0]
    stats = motion_stats(MotionField(displacement))
    assert isinstance(stats, MotionStats)
    assert (stats.frames, stats.height, stats.width) == (3, 4, 5)
    assert stats.motion_max == 5.0 and stats.per_frame_mean == pytest.approx([0.0, 3.0, 0.25])
    assert stats.motion_mean == pytest.approx((60 + 5) / 60)
    assert json.loads(json.dumps(stats.to_dict())) == stats.to_dict()
    # frame 1 is uniform (score 1), frame 2 concentrated (score 0); weighted by motion 3 : 0.25
    assert camera_motion_score(MotionField(displacement).magnitude) == pytest.approx(3 / 3.25)


# -------------------------------------------------------------------------------------------- overlays


def test_grey_fade_extremes_and_low_res_mask():
    frames = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    assert np.all(grey_fade(frames, np.zeros((2, 16, 16))) == 128)
    assert np.array_equal(grey_fade(frames, np.ones((2, 16, 16))), frames)
    out = grey_fade(frames, np.ones((2, 2, 2), np.float32))  # latent-size mask resized to the frame
    assert out.shape == frames.shape and out.dtype == np.uint8 and np.array_equal(out, frames)


def test_heatmap_shapes_and_blending():
    frames = np.full((2, 8, 12, 3), 200, np.uint8)
    mask = np.zeros((2, 4, 6), np.float32)
    mask[:, :, 3:] = 1.0
    out = heatmap(frames, mask)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert not np.array_equal(out[:, :, 0], out[:, :, -1])  # cold and hot sides differ
    assert np.array_equal(heatmap(frames, mask, alpha=0.0), frames)
    with pytest.raises(MotiveError, match="frames"):
        heatmap(frames, np.zeros((3, 8, 12)))
