"""Dense motion estimators on rendered clips, the AllTracker adapter's path messages and its track conversion."""

from __future__ import annotations


import cv2
import numpy as np
import pytest

from motive_core.errors import MotiveError, TrackerUnavailableError
from motive_core.motion import (AllTrackerEstimator, MotionEstimator, MotionField, OpenCVFlowEstimator,
                                get_estimator, resize_flow, tracks_to_displacement)

SIZE, START_X = 16, 8


def render(frames: int = 8, side: int = 64, step: int = 2, pan: int = 0, square: int = SIZE) -> np.ndarray:
    """A textured square moving ``step`` px/frame right over a textured background panned ``pan`` px/frame."""
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 256, (2 * side, 3 * side, 3), dtype=np.uint8), (5, 5), 0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8), (3, 3), 0)
    clip = []
    for f in range(frames):
        frame = background[:side, pan * f:pan * f + side].copy()
        top, left = side // 2 - square // 2, START_X + step * f
        frame[top:top + square, left:left + square] = texture[:square, :square]
        clip.append(frame)
    return np.stack(clip)


def square_interior(field: MotionField, f: int, side: int, square: int = SIZE, step: int = 2) -> np.ndarray:
    top, left = side // 2 - square // 2, START_X + step * f
    return field.displacement[f, top + 3:top + square - 3, left + 3:left + square - 3]


@pytest.mark.parametrize("side", [32, 64])
def test_moving_square(side):
    square = SIZE if side == 64 else 8
    field = OpenCVFlowEstimator().estimate(render(side=side, square=square))
    assert field.displacement.shape == (8, side, side, 2) and field.displacement.dtype == np.float32
    for f in range(8):  # frame 0 holds the forward motion 0→1, the others the motion that arrived
        inside = square_interior(field, f, side, square)
        assert np.abs(inside[..., 0] - 2).mean() < 0.2 and np.abs(inside[..., 1]).mean() < 0.2
    top = side // 2 - square // 2
    assert field.magnitude[:, :top - 4].mean() < 0.05  # background rows above the square


def test_static_clip_has_no_motion():
    field = OpenCVFlowEstimator().estimate(render(step=0, square=0))
    assert field.magnitude.max() < 0.05


def test_pan_moves_everything_left():
    field = OpenCVFlowEstimator().estimate(render(pan=2, square=0))
    inner = field.displacement[:, 8:-8, 8:-8]
    assert np.abs(inner[..., 0] + 2).mean() < 0.1 and np.abs(inner[..., 1]).mean() < 0.1


def test_deterministic_and_settings():
    clip = render()
    first, second = OpenCVFlowEstimator().estimate(clip), OpenCVFlowEstimator().estimate(clip)
    assert np.array_equal(first.displacement, second.displacement)
    estimator = get_estimator("opencv", preset="fast")
    assert isinstance(estimator, MotionEstimator) and estimator.name == "opencv"
    assert estimator.settings() == {"preset": "fast", "min_side": 128}


def test_estimator_refuses_single_frame():
    with pytest.raises(MotiveError, match="at least 2"):
        OpenCVFlowEstimator().estimate(render(frames=1))


def test_unknown_names():
    with pytest.raises(MotiveError, match="alltracker, opencv"):
        get_estimator("raft")
    with pytest.raises(MotiveError, match="preset"):
        OpenCVFlowEstimator(preset="slow")


def test_resize_flow_rescales_vectors():
    flow = np.full((32, 64, 2), [4.0, 2.0], np.float32)
    small = resize_flow(flow, 8, 16)
    assert small.shape == (8, 16, 2) and np.allclose(small, [1.0, 0.5])


def test_magnitude_is_euclidean_norm():
    field = MotionField(np.full((2, 3, 3, 2), [3.0, 4.0]))
    assert field.displacement.dtype == np.float32 and np.allclose(field.magnitude, 5.0)
    with pytest.raises(MotiveError):
        MotionField(np.zeros((2, 3, 3)))


# ------------------------------------------------------------------------------------------- AllTracker


def test_alltracker_without_paths_says_what_to_provide(monkeypatch):
    monkeypatch.delenv("ALLTRACKER_REPO", raising=False)
    monkeypatch.delenv("ALLTRACKER_CKPT", raising=False)
    with pytest.raises(TrackerUnavailableError, match="ALLTRACKER_REPO is not set.*github.com/aharley/alltracker"):
        get_estimator("alltracker")


def test_alltracker_reports_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setenv("ALLTRACKER_REPO", str(tmp_path / "clone"))
    with pytest.raises(TrackerUnavailableError, match=f"looked in {tmp_path / 'clone'}.*nets/alltracker.py"):
        AllTrackerEstimator()
    (tmp_path / "clone" / "nets").mkdir(parents=True)
    (tmp_path / "clone" / "nets" / "alltracker.py").write_text("")
    monkeypatch.delenv("ALLTRACKER_CKPT", raising=False)
    with pytest.raises(TrackerUnavailableError, match="ALLTRACKER_CKPT is not set"):
        AllTrackerEstimator()
    with pytest.raises(TrackerUnavailableError, match=f"looked in {tmp_path / 'missing.pth'}"):
        AllTrackerEstimator(checkpoint=tmp_path / "missing.pth")
    (tmp_path / "alltracker.pth").write_bytes(b"weights")
    estimator = AllTrackerEstimator(checkpoint=tmp_path / "alltracker.pth")
    settings = estimator.settings()
    assert settings["query_frame"] == 0 and len(settings["checkpoint_sha256"]) == 16
    assert settings["image_size"] == 1024 and settings["window_len"] == 16 and settings["model"] == "full"


def grid_points(height: int, width: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)


def test_tracks_of_a_translating_square_become_per_frame_steps():
    height = width = 16
    frames, step = 4, 2.0
    grid = grid_points(height, width)
    in_square = (grid[:, 0] >= 2) & (grid[:, 0] < 6) & (grid[:, 1] >= 6) & (grid[:, 1] < 10)
    tracks = np.stack([grid + np.where(in_square[:, None], [step * f, 0.0], 0.0) for f in range(frames)])
    visibility = np.ones((frames, height * width))
    for f in range(frames):  # background points under the square are occluded
        x, y = tracks[f, :, 0], tracks[f, :, 1]
        visibility[f, ~in_square & (x >= 2 + step * f) & (x < 6 + step * f) & (y >= 6) & (y < 10)] = 0
    field = tracks_to_displacement(tracks, height, width, visibility=visibility)
    assert field.displacement.shape == (frames, height, width, 2)
    dx = field.displacement[..., 0]
    assert np.all(field.displacement[..., 1] == 0)
    for f in range(frames):
        left = 2 + int(step) * f
        assert np.all(dx[f, 6:10, left:left + 4] == step)  # the square, on frame f's grid
        assert np.all(dx[f, :5] == 0) and np.all(dx[f, 11:] == 0)  # background away from the square
        assert np.all(dx[f, 6:10, left + 5:] == 0)  # background ahead of the square
    assert np.all(field.visibility[1:] == 1)
    # frame 0's displacement is the step 0 -> 1, so it carries frame 1's visibility: the background the
    # square covers at frame 1 is occluded there
    assert np.all(field.visibility[0, 6:10, 6:8] == 0) and np.all(field.visibility[0, :5] == 1)


def test_tracks_of_a_pan_fill_entering_pixels_from_neighbours():
    grid = grid_points(8, 8)
    tracks = np.stack([grid + [-1.5 * f, 0.5 * f] for f in range(3)])
    field = tracks_to_displacement(tracks, 8, 8)
    assert np.allclose(field.displacement, [-1.5, 0.5]) and field.visibility is None


def test_tracks_shape_is_checked():
    with pytest.raises(MotiveError, match="Tracks must be"):
        tracks_to_displacement(np.zeros((1, 64, 2)), 8, 8)
