"""Dense motion estimators on rendered clips, the AllTracker adapter's messages and its track conversion."""

from __future__ import annotations

import sys

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
    assert estimator.settings()["query_frame"] == 0 and len(estimator.settings()["checkpoint_sha256"]) == 16


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
    assert np.all(field.visibility == 1)


def test_tracks_of_a_pan_fill_entering_pixels_from_neighbours():
    grid = grid_points(8, 8)
    tracks = np.stack([grid + [-1.5 * f, 0.5 * f] for f in range(3)])
    field = tracks_to_displacement(tracks, 8, 8)
    assert np.allclose(field.displacement, [-1.5, 0.5]) and field.visibility is None


def test_tracks_shape_is_checked():
    with pytest.raises(MotiveError, match="Tracks must be"):
        tracks_to_displacement(np.zeros((1, 64, 2)), 8, 8)


FAKE_NET = '''
import torch


class Net(torch.nn.Module):
    """Stand-in with AllTracker's interface: every pixel of frame 0 moves (4, -2) px per frame."""

    def __init__(self, seqlen, **kwargs):
        super().__init__()
        self.seqlen = seqlen
        self.bias = torch.nn.Parameter(torch.zeros(1))

    def forward_sliding(self, images, iters=4, sw=None, is_training=False):
        batch, frames, _, height, width = images.shape
        assert images.max() > 1.0  # AllTracker takes 0-255 input and normalises inside
        steps = torch.arange(frames, dtype=torch.float32).view(1, frames, 1, 1, 1)
        flows = steps * torch.tensor([4.0, -2.0]).view(1, 1, 2, 1, 1).expand(batch, frames, 2, height, width)
        return flows + self.bias, torch.ones(batch, frames, 2, height, width), None, None
'''


def test_alltracker_adapter_runs_a_model_with_its_interface(monkeypatch, tmp_path):
    torch = pytest.importorskip("torch")
    clone = tmp_path / "clone"
    (clone / "nets").mkdir(parents=True)
    (clone / "nets" / "alltracker.py").write_text(FAKE_NET)
    monkeypatch.syspath_prepend(str(clone))
    torch.save({"model": {"bias": torch.zeros(1)}}, tmp_path / "ckpt.pth")
    estimator = AllTrackerEstimator(repo=clone, checkpoint=tmp_path / "ckpt.pth", device="cpu", min_side=64)
    try:
        field = estimator.estimate(render(frames=4, side=32, square=8))
    finally:
        sys.modules.pop("nets.alltracker", None)
        sys.modules.pop("nets", None)
    # run at 64x64 (short side raised to min_side), so (4, -2) there is (2, -1) px on the 32x32 input
    assert field.displacement.shape == (4, 32, 32, 2)
    assert np.allclose(field.displacement, [2.0, -1.0])
    assert np.allclose(field.visibility, 1.0) and np.allclose(field.confidence, 1.0)
