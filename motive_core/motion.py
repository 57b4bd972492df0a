"""Dense motion estimators: per-pixel displacement for every frame (paper §3.4, Eq. 12).

Convention shared by every estimator (:class:`MotionField`): ``displacement[f]`` lives on frame f's own
pixel grid and, for f >= 1, is the motion that brought each pixel of frame f there from frame f-1;
``displacement[0]`` is the forward motion 0 -> 1 on frame 0's grid. Units are pixels of the input frames.

* :class:`OpenCVFlowEstimator` ("opencv", default): OpenCV's DIS optical flow, no weights needed.
* :class:`AllTrackerEstimator` ("alltracker"): the paper's tracker, run from the user's own clone of
  https://github.com/aharley/alltracker and its checkpoint (never bundled here).
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import cv2
import numpy as np

from motive_core.errors import MotiveError, TrackerUnavailableError


@dataclass
class MotionField:
    """Per-frame displacement (T,H,W,2) float32 as (dx, dy) pixels; optional (T,H,W) visibility/confidence."""

    displacement: np.ndarray
    visibility: np.ndarray | None = None
    confidence: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.displacement.ndim != 4 or self.displacement.shape[-1] != 2:
            raise MotiveError(f"A motion field must be (T,H,W,2), got {self.displacement.shape}.")
        self.displacement = self.displacement.astype(np.float32, copy=False)

    @property
    def magnitude(self) -> np.ndarray:
        """M_f(h, w) = ||D_f(h, w)||_2 in pixels, (T,H,W) float32 (paper §3.4)."""
        return np.hypot(self.displacement[..., 0], self.displacement[..., 1]).astype(np.float32)


@runtime_checkable
class MotionEstimator(Protocol):
    """Anything that turns uint8 RGB frames (T,H,W,3) into a :class:`MotionField`."""

    name: str

    def settings(self) -> dict:
        """Everything that changes the output (recorded in an index's config)."""

    def estimate(self, frames: np.ndarray) -> MotionField:
        """Displacement for every frame, under the module's convention."""


def _check_frames(frames: np.ndarray) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) < 2:
        raise MotiveError(f"Motion needs at least 2 RGB frames shaped (T,H,W,3), got {frames.shape}.")


def resize_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resample an (h,w,2) flow to (height,width) and rescale its vectors to the new pixel units."""
    src_h, src_w = flow.shape[:2]
    if (src_h, src_w) == (height, width):
        return flow
    shrinking = height < src_h or width < src_w
    resized = cv2.resize(flow, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return resized * np.array([width / src_w, height / src_h], np.float32)


# ------------------------------------------------------------------------------------------------ OpenCV


class OpenCVFlowEstimator:
    """DIS optical flow (OpenCV) on grayscale consecutive pairs; deterministic, CPU only.

    Frames whose short side is below ``min_side`` are upscaled for the flow (DIS works on 8x8 patches
    and is poor on 32x32 demo clips); the flow is resized back and its vectors rescaled to input pixels.
    """

    name = "opencv"
    PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}

    def __init__(self, preset: str = "medium", min_side: int = 128):
        if preset not in self.PRESETS:
            raise MotiveError(f"Unknown DIS preset {preset!r}: use one of {', '.join(self.PRESETS)}.")
        self.preset = preset
        self.min_side = int(min_side)

    def settings(self) -> dict:
        return {"preset": self.preset, "min_side": self.min_side}

    def estimate(self, frames: np.ndarray) -> MotionField:
        """displacement[0] = flow 0->1; displacement[f] = -(flow f->f-1), both on the frame's own grid."""
        _check_frames(frames)
        height, width = frames.shape[1:3]
        scale = max(1.0, self.min_side / min(height, width))
        size = (round(width * scale), round(height * scale))
        grays = [self._gray(frame, size) for frame in frames]
        dis = cv2.DISOpticalFlow_create(self.PRESETS[self.preset])
        flows = [dis.calc(grays[0], grays[1], None)]
        flows += [-dis.calc(grays[f], grays[f - 1], None) for f in range(1, len(grays))]
        return MotionField(np.stack([resize_flow(flow, height, width) for flow in flows]))

    @staticmethod
    def _gray(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        if (gray.shape[1], gray.shape[0]) != size:
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_LINEAR)
        return gray


# -------------------------------------------------------------------------------------------- AllTracker


def tracks_to_displacement(tracks: np.ndarray, height: int, width: int, visibility: np.ndarray | None = None,
                           confidence: np.ndarray | None = None) -> MotionField:
    """Query-frame tracks → per-frame displacement on each frame's own grid (paper §8.2, per-frame option).

    ``tracks`` (T,N,2) are the (x, y) positions in every frame of the N = height*width points seeded on
    frame 0's grid in row-major order (AllTracker's flow from frame 0 plus the pixel grid); ``visibility``
    and ``confidence`` are optional (T,N). Frame 0's displacement is traj_1 - traj_0 at the seeds. For
    f >= 1 the step traj_f - traj_{f-1} is forward-splatted to the nearest pixel of frame f at traj_f:
    collisions are averaged, weighted by visibility when given (so occluded points do not dilute the
    occluder), and pixels no visible track lands on (content absent from frame 0, disocclusions) take
    the value of the nearest filled pixel. Visibility and confidence are carried the same way.
    """
    if tracks.ndim != 3 or len(tracks) < 2 or tracks.shape[1:] != (height * width, 2):
        raise MotiveError(f"Tracks must be (T>=2, {height * width}, 2), got {tracks.shape}.")
    count = len(tracks)
    weights = visibility if visibility is not None else np.ones(tracks.shape[:2])
    channels = [np.diff(tracks, axis=0, prepend=tracks[:1])]
    channels += [c[..., None] for c in (visibility, confidence) if c is not None]
    values = np.concatenate(channels, axis=2)
    values[0, :, :2] = tracks[1] - tracks[0]
    frames = [values[0].reshape(height, width, -1)]
    frames += [_splat(tracks[f], values[f], weights[f], height, width) for f in range(1, count)]
    stacked = np.stack(frames).astype(np.float32)
    extras = iter(np.moveaxis(stacked[..., 2:], -1, 0))
    return MotionField(stacked[..., :2], visibility=next(extras) if visibility is not None else None,
                       confidence=next(extras) if confidence is not None else None)


def _splat(positions: np.ndarray, values: np.ndarray, weights: np.ndarray, height: int, width: int) -> np.ndarray:
    """Weighted mean of ``values`` (N,K) at the nearest pixel of ``positions`` (N,2); holes from nearest filled."""
    x = np.floor(positions[:, 0] + 0.5).astype(np.int64)
    y = np.floor(positions[:, 1] + 0.5).astype(np.int64)
    keep = (x >= 0) & (x < width) & (y >= 0) & (y < height) & (weights > 0)
    index, w = y[keep] * width + x[keep], weights[keep].astype(np.float64)
    total = np.bincount(index, w, minlength=height * width)
    sums = np.stack([np.bincount(index, w * values[keep, k], minlength=height * width)
                     for k in range(values.shape[1])], axis=1)
    filled = total > 0
    if not filled.any():
        return np.zeros((height, width, values.shape[1]))
    grid = sums / np.where(filled, total, 1.0)[:, None]
    if not filled.all():
        holes = (~filled).reshape(height, width).astype(np.uint8)
        _, labels = cv2.distanceTransformWithLabels(holes, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
        labels = labels.reshape(-1)
        source = np.zeros(labels.max() + 1, np.int64)
        source[labels[filled]] = np.flatnonzero(filled)
        grid = grid[source[labels]]
    return grid.reshape(height, width, -1)


def _resolve_user_path(value: str | Path | None, env: str, what: str, argument: str,
                       valid: Callable[[Path], bool], remedy: str) -> Path:
    """A path the user supplies (argument, else environment variable); the error says where we looked."""
    source = f"the {argument} argument" if value else f"the {env} environment variable"
    value = value or os.environ.get(env)
    if not value:
        raise TrackerUnavailableError(f"{what} not found: {env} is not set and no {argument} was given; {remedy}.")
    path = Path(value).expanduser()
    if not valid(path):
        raise TrackerUnavailableError(f"{what} not found: looked in {path.resolve()} (from {source}); {remedy}.")
    return path


class AllTrackerEstimator:
    """Adapter around the user's clone of AllTracker (Harley et al., 2025) and its checkpoint.

    Paths come from the arguments or the ALLTRACKER_REPO / ALLTRACKER_CKPT environment variables. The
    model tracks every pixel of frame 0 through the clip (``forward_sliding``: flows frame 0 -> t plus
    visibility/confidence); :func:`tracks_to_displacement` turns that into this module's per-frame
    convention. Frames are resized so the long side is at most ``max_side`` and both sides are multiples
    of 8 (as AllTracker's demo does), and small clips are upscaled so the short side reaches ``min_side``
    where ``max_side`` allows (stride-8 features see little of a 32x32 clip); results are resized back.
    """

    name = "alltracker"
    REPO_URL = "https://github.com/aharley/alltracker"
    CKPT_URL = "https://huggingface.co/aharley/alltracker"

    def __init__(self, repo: str | Path | None = None, checkpoint: str | Path | None = None,
                 device: str = "auto", window_len: int = 16, iters: int = 4, max_side: int = 1024,
                 min_side: int = 256, tiny: bool = False):
        self.repo = self._resolve_repo(repo)
        self.checkpoint = self._resolve_checkpoint(checkpoint)
        self.device = device
        self.window_len, self.iters, self.tiny = int(window_len), int(iters), tiny
        self.max_side, self.min_side = int(max_side), int(min_side)
        self._model = None
        self._ckpt_hash: str | None = None

    def _resolve_repo(self, repo: str | Path | None) -> Path:
        return _resolve_user_path(
            repo, "ALLTRACKER_REPO", "AllTracker code", "repo", lambda p: (p / "nets" / "alltracker.py").is_file(),
            f"clone {self.REPO_URL} and point ALLTRACKER_REPO at your clone (it must hold nets/alltracker.py)")

    def _resolve_checkpoint(self, checkpoint: str | Path | None) -> Path:
        return _resolve_user_path(
            checkpoint, "ALLTRACKER_CKPT", "AllTracker checkpoint", "checkpoint", Path.is_file,
            f"download alltracker.pth from {self.CKPT_URL} and point ALLTRACKER_CKPT at the file")

    def settings(self) -> dict:
        if self._ckpt_hash is None:
            digest = hashlib.sha256()
            with open(self.checkpoint, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            self._ckpt_hash = digest.hexdigest()[:16]
        return {"checkpoint_sha256": self._ckpt_hash, "window_len": self.window_len, "iters": self.iters,
                "max_side": self.max_side, "min_side": self.min_side, "tiny": self.tiny, "query_frame": 0,
                "displacement": "per-frame"}

    def _load(self):
        import torch

        if self._model is not None:
            return self._model
        if str(self.repo) not in sys.path:
            sys.path.insert(0, str(self.repo))
        try:
            from nets.alltracker import Net
        except ImportError as err:
            raise TrackerUnavailableError(
                f"AllTracker's code in {self.repo} could not be imported ({err}): install its requirements "
                f"(pip install -r {self.repo / 'requirements.txt'}).") from err
        model = Net(self.window_len, use_basicencoder=True, no_split=True) if self.tiny else Net(self.window_len)
        try:
            if self.checkpoint.suffix == ".safetensors":
                from safetensors.torch import load_file
                state = load_file(str(self.checkpoint))
            else:
                state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
            model.load_state_dict(state.get("model", state), strict=True)
        except Exception as err:
            raise TrackerUnavailableError(
                f"The AllTracker checkpoint {self.checkpoint} could not be loaded into the model ({err}): use "
                f"alltracker.pth from {self.CKPT_URL} (alltracker_tiny.pth needs tiny=True).") from err
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._model = model.to(device).eval()
        return self._model

    def estimate(self, frames: np.ndarray) -> MotionField:
        import torch

        _check_frames(frames)
        model = self._load()
        height, width = frames.shape[1:3]
        scale = min(self.max_side / max(height, width), max(1.0, self.min_side / min(height, width)))
        run_h, run_w = max(8, round(height * scale) // 8 * 8), max(8, round(width * scale) // 8 * 8)
        resized = np.stack([cv2.resize(f, (run_w, run_h), interpolation=cv2.INTER_AREA) for f in frames])
        device = next(model.parameters()).device
        rgbs = torch.from_numpy(resized).permute(0, 3, 1, 2)[None].float().to(device)
        with torch.no_grad():
            flows, visconf, _, _ = model.forward_sliding(rgbs, iters=self.iters, sw=None, is_training=False)
        flows = flows[0].float().cpu().numpy().reshape(len(frames), 2, -1).transpose(0, 2, 1)
        visconf = visconf[0].float().cpu().numpy().reshape(len(frames), 2, -1).transpose(0, 2, 1)
        ys, xs = np.mgrid[0:run_h, 0:run_w]
        tracks = flows + np.stack([xs.ravel(), ys.ravel()], axis=1)[None]
        field = tracks_to_displacement(tracks, run_h, run_w, visibility=visconf[..., 0], confidence=visconf[..., 1])
        return MotionField(np.stack([resize_flow(d, height, width) for d in field.displacement]),
                           visibility=_resize_maps(field.visibility, height, width),
                           confidence=_resize_maps(field.confidence, height, width))


def _resize_maps(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_LINEAR) for m in maps])


# ------------------------------------------------------------------------------------------------ lookup

ESTIMATORS = {"opencv": OpenCVFlowEstimator, "alltracker": AllTrackerEstimator}


def get_estimator(name: str, **options) -> MotionEstimator:
    """The estimator called ``name`` ("opencv" or "alltracker"), built with ``options``."""
    if name not in ESTIMATORS:
        raise MotiveError(f"Unknown motion estimator {name!r}: choose one of {', '.join(sorted(ESTIMATORS))}.")
    return ESTIMATORS[name](**options)
