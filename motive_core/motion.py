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
    def reliability(self) -> np.ndarray | None:
        """Visibility × confidence (T,H,W) where the estimator gives them (AllTracker), else None."""
        present = [m for m in (self.visibility, self.confidence) if m is not None]
        if not present:
            return None
        return np.prod(np.stack(present), axis=0).astype(np.float32)

    @property
    def magnitude(self) -> np.ndarray:
        """M_f(h, w) = ||D_f(h, w)||_2 in pixels, (T,H,W) float32 (paper §3.4).

        Where the estimator reports a reliability (visibility × confidence) the magnitude is weighted by
        it, so motion the tracker is unsure of counts less in the mask; the paper names confidence
        weighting as future work. Estimators without one (OpenCV) give the plain norm.
        """
        norm = np.hypot(self.displacement[..., 0], self.displacement[..., 1]).astype(np.float32)
        reliability = self.reliability
        return norm if reliability is None else (norm * np.clip(reliability, 0.0, 1.0)).astype(np.float32)


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

OCCLUSION_THRESHOLD = 0.6  # AllTracker's rule: a point is occluded where visibility × confidence < 0.6
MIN_RUN_SIDE = 128  # its 5-level correlation pyramid halves the stride-8 features 4 times: 128 px → 1 cell


def tracks_to_displacement(tracks: np.ndarray, height: int, width: int, visibility: np.ndarray | None = None,
                           confidence: np.ndarray | None = None,
                           occlusion_threshold: float = OCCLUSION_THRESHOLD) -> MotionField:
    """Query-frame tracks → per-frame displacement on each frame's own grid (paper §8.2, per-frame option).

    ``tracks`` (T,N,2) are the (x, y) positions in every frame of the N = height*width points seeded on
    frame 0's grid in row-major order (AllTracker's flow from frame 0 plus the pixel grid); ``visibility``
    and ``confidence`` are optional (T,N) values in [0, 1]. A track's reliability is their product, and a
    track whose reliability is below ``occlusion_threshold`` is occluded in that frame (AllTracker's own
    rule) and dropped there. Frame 0's displacement is traj_1 - traj_0 at the seeds, with frame 1's
    visibility and confidence. For f >= 1 the step traj_f - traj_{f-1} is forward-splatted to the nearest
    pixel of frame f at traj_f: collisions are averaged weighted by reliability, and pixels no unoccluded
    track lands on (content absent from frame 0, disocclusions) take the value of the nearest filled
    pixel. Visibility and confidence are carried the same way.
    """
    if tracks.ndim != 3 or len(tracks) < 2 or tracks.shape[1:] != (height * width, 2):
        raise MotiveError(f"Tracks must be (T>=2, {height * width}, 2), got {tracks.shape}.")
    count = len(tracks)
    reliability = np.ones(tracks.shape[:2])
    for values in (visibility, confidence):
        if values is not None:
            reliability = reliability * values
    weights = np.where(reliability >= occlusion_threshold, reliability, 0.0)
    channels = [np.diff(tracks, axis=0, prepend=tracks[:1])]
    channels += [c[..., None] for c in (visibility, confidence) if c is not None]
    values = np.concatenate(channels, axis=2)
    values[0] = values[1]
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


def demo_run_size(height: int, width: int, image_size: int) -> tuple[int, int]:
    """AllTracker's demo resizing: scale so the long side is ``image_size`` (up or down), then floor to ×8."""
    scale = min(image_size / height, image_size / width)
    return max(8, int(height * scale) // 8 * 8), max(8, int(width * scale) // 8 * 8)


def _import_remedy(err: Exception) -> str:
    """What to do about an import failure of AllTracker's model code, from its real cause."""
    if isinstance(err, ImportError):
        return "install what AllTracker's model code imports: pip install 'motive-studio[alltracker]'"
    if "torchvision" in str(err):
        return ("torchvision does not match the installed torch: install the torchvision release built for "
                "your torch from the same package index (a CPU-only torch needs the CPU torchvision)")
    return "check that the clone is AllTracker's repository and that its model code runs in this environment"


class AllTrackerEstimator:
    """Adapter around the user's clone of AllTracker (Harley et al., 2025) and its checkpoint.

    Paths come from the arguments or the ALLTRACKER_REPO / ALLTRACKER_CKPT environment variables, and
    ``device``, ``model`` and ``image_size`` default to ALLTRACKER_DEVICE / ALLTRACKER_MODEL /
    ALLTRACKER_IMAGE_SIZE when set (so index builds that name only "alltracker" can choose them). The
    model tracks every pixel of frame 0 through the clip (``forward_sliding``: flows frame 0 -> t plus
    visibility/confidence); :func:`tracks_to_displacement` turns that into this module's per-frame
    convention, dropping occluded tracks (visibility × confidence < 0.6, AllTracker's rule) and keeping
    the product as the field's reliability, which weights the mask (:attr:`MotionField.magnitude`).
    Frames are resized as AllTracker's demo does (long side to ``image_size``, bilinear, sides floored to
    multiples of 8); results are resized back to the input size.

    AllTracker's code is used as published: the network is built with ``init_weights=False`` (the
    checkpoint replaces every weight, so nothing is downloaded), its window must equal the checkpoint's
    time embedding, and the device is handled here — its feature step moves frames with ``.cuda()``, so
    on CUDA the call runs under the model's device and on any other device that step is given frames
    already on the model's device.
    """

    name = "alltracker"
    REPO_URL = "https://github.com/aharley/alltracker"
    CKPT_URL = "https://huggingface.co/aharley/alltracker"
    MODELS = ("full", "tiny")

    def __init__(self, repo: str | Path | None = None, checkpoint: str | Path | None = None,
                 device: str | None = None, model: str | None = None, window_len: int = 16, iters: int = 4,
                 image_size: int | None = None):
        device = device or os.environ.get("ALLTRACKER_DEVICE", "auto")
        model = model or os.environ.get("ALLTRACKER_MODEL", "full")
        image_size = int(image_size or os.environ.get("ALLTRACKER_IMAGE_SIZE", "1024"))
        if model not in self.MODELS:
            raise MotiveError(f"Unknown AllTracker model {model!r}: use full (alltracker.pth) or tiny "
                              "(alltracker_tiny.pth).")
        if image_size < MIN_RUN_SIDE or window_len < 2 or window_len % 2 or iters < 1:
            raise MotiveError(f"AllTracker needs image_size >= {MIN_RUN_SIDE}, an even window_len >= 2 and iters >= 1 "
                              f"(got {image_size}, {window_len}, {iters}).")
        self.repo = self._resolve_repo(repo)
        self.checkpoint = self._resolve_checkpoint(checkpoint)
        self.device, self.model = device, model
        self.window_len, self.iters, self.image_size = int(window_len), int(iters), int(image_size)
        self._net = None
        self._ckpt_hash: str | None = None

    def _resolve_repo(self, repo: str | Path | None) -> Path:
        return _resolve_user_path(
            repo, "ALLTRACKER_REPO", "AllTracker code", "repo", lambda p: (p / "nets" / "alltracker.py").is_file(),
            f"clone {self.REPO_URL} and point ALLTRACKER_REPO at your clone (it must hold nets/alltracker.py)")

    def _resolve_checkpoint(self, checkpoint: str | Path | None) -> Path:
        return _resolve_user_path(
            checkpoint, "ALLTRACKER_CKPT", "AllTracker checkpoint", "checkpoint", Path.is_file,
            f"download alltracker.pth (or alltracker_tiny.pth) from {self.CKPT_URL} and point ALLTRACKER_CKPT "
            "at the file")

    def settings(self) -> dict:
        if self._ckpt_hash is None:
            digest = hashlib.sha256()
            with open(self.checkpoint, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            self._ckpt_hash = digest.hexdigest()[:16]
        return {"checkpoint_sha256": self._ckpt_hash, "model": self.model, "window_len": self.window_len,
                "iters": self.iters, "image_size": self.image_size, "query_frame": 0,
                "displacement": "per-frame", "occlusion_threshold": OCCLUSION_THRESHOLD}

    def _torch_device(self):
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        device = torch.device(self.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise TrackerUnavailableError(f"AllTracker was asked to run on {self.device}, but this torch has no "
                                          "CUDA device: use device 'cpu' or 'auto'.")
        return device

    def _import_net(self):
        loaded = sys.modules.get("nets.alltracker")
        if loaded is not None and Path(loaded.__file__).resolve().parents[1] != self.repo.resolve():
            raise TrackerUnavailableError(
                f"AllTracker's code was already imported from {Path(loaded.__file__).parents[1]} in this process; "
                f"restart it to use the clone in {self.repo}.")
        if str(self.repo) not in sys.path:
            sys.path.insert(0, str(self.repo))
        try:
            from nets.alltracker import Net
        except Exception as err:  # noqa: BLE001 - any failure here is the clone or its dependencies
            raise TrackerUnavailableError(
                f"AllTracker's code in {self.repo} could not be imported ({type(err).__name__}: {err}); "
                f"{_import_remedy(err)}.") from err
        return Net

    def _read_state(self) -> dict:
        import torch

        try:
            if self.checkpoint.suffix == ".safetensors":
                from safetensors.torch import load_file
                state = load_file(str(self.checkpoint))
            else:
                state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - unreadable file of any kind
            raise TrackerUnavailableError(f"The AllTracker checkpoint {self.checkpoint} could not be read "
                                          f"({type(err).__name__}: {err}).") from err
        state = state.get("model", state) if isinstance(state, dict) else state
        if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
            raise TrackerUnavailableError(f"{self.checkpoint} holds no AllTracker weights (expected a state dict, "
                                          "or one under 'model').")
        return state

    def _check_state(self, state: dict) -> None:
        """One-line refusals for the mismatches a user can fix (model kind, window), before any key dump."""
        holds_tiny = any(key.startswith("fnet.") for key in state)
        holds_full = any(key.startswith("cnn.") for key in state)
        if holds_tiny and self.model == "full":
            raise TrackerUnavailableError(f"{self.checkpoint} holds the tiny AllTracker model: choose model 'tiny' "
                                          "(--tracker-model tiny).")
        if holds_full and self.model == "tiny":
            raise TrackerUnavailableError(f"{self.checkpoint} holds the full AllTracker model: choose model 'full' "
                                          "(--tracker-model full).")
        time_emb = state.get("time_emb")
        if time_emb is not None and time_emb.shape[1] != self.window_len:
            raise TrackerUnavailableError(
                f"window_len {self.window_len} does not match {self.checkpoint}: its time embedding covers "
                f"{time_emb.shape[1]} frames, so the window must be {time_emb.shape[1]}.")

    def _load(self):
        if self._net is not None:
            return self._net
        device = self._torch_device()
        state = self._read_state()
        self._check_state(state)
        Net = self._import_net()
        extra = dict(use_basicencoder=True, no_split=True) if self.model == "tiny" else {}
        try:
            net = Net(self.window_len, init_weights=False, **extra)
        except TypeError as err:
            raise TrackerUnavailableError(f"AllTracker's Net in {self.repo} does not take init_weights ({err}): "
                                          "update the clone to a release that has it.") from err
        expected = net.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        reshaped = sorted(k for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k].shape))
        if missing or unexpected or reshaped:
            first = (missing + unexpected + reshaped)[0]
            raise TrackerUnavailableError(
                f"{self.checkpoint} does not fit AllTracker's {self.model} model: {len(missing)} weights missing, "
                f"{len(unexpected)} unexpected, {len(reshaped)} of another shape (first: {first}); use "
                f"alltracker.pth or alltracker_tiny.pth from {self.CKPT_URL}.")
        net.load_state_dict(state, strict=True)
        self._net = _bind_to_device(net.to(device).eval(), device)
        return self._net

    def estimate(self, frames: np.ndarray) -> MotionField:
        import torch

        _check_frames(frames)
        net = self._load()
        height, width = frames.shape[1:3]
        run_h, run_w = demo_run_size(height, width, self.image_size)
        if min(run_h, run_w) < MIN_RUN_SIDE:
            needed = int(np.ceil(MIN_RUN_SIDE * max(height, width) / min(height, width)))
            raise MotiveError(f"A {width}x{height} clip runs at {run_w}x{run_h} with image_size {self.image_size}, "
                              f"but AllTracker needs both sides >= {MIN_RUN_SIDE} px: use image_size >= {needed}.")
        resized = np.stack([cv2.resize(f, (run_w, run_h), interpolation=cv2.INTER_LINEAR) for f in frames])
        device = next(net.parameters()).device
        rgbs = torch.from_numpy(resized).permute(0, 3, 1, 2)[None].float().to(device)
        try:
            with torch.no_grad(), _cuda_default(device):
                flows, visconf, _, _ = net.forward_sliding(rgbs, iters=self.iters, sw=None, is_training=False,
                                                           window_len=self.window_len)
        except Exception as err:  # noqa: BLE001 - report the model's own failure with the clip it ran on
            raise TrackerUnavailableError(
                f"AllTracker failed on {len(frames)} frames at {run_w}x{run_h} on {device} "
                f"({type(err).__name__}: {err}).") from err
        if flows.dim() == 4:  # T <= 2: one flow 0 -> 1 without a time axis; frame 0 is the query itself
            flows = torch.stack([torch.zeros_like(flows), flows], dim=1)
            visconf = torch.stack([torch.ones_like(visconf), visconf], dim=1)
        flows = flows[0].float().cpu().numpy().reshape(len(frames), 2, -1).transpose(0, 2, 1)
        visconf = visconf[0].float().cpu().numpy().reshape(len(frames), 2, -1).transpose(0, 2, 1)
        ys, xs = np.mgrid[0:run_h, 0:run_w]
        tracks = flows + np.stack([xs.ravel(), ys.ravel()], axis=1)[None]
        field = tracks_to_displacement(tracks, run_h, run_w, visibility=visconf[..., 0], confidence=visconf[..., 1])
        return MotionField(np.stack([resize_flow(d, height, width) for d in field.displacement]),
                           visibility=_resize_maps(field.visibility, height, width),
                           confidence=_resize_maps(field.confidence, height, width))


def _bind_to_device(net, device):
    """Let AllTracker's feature step run on ``device`` when that is not CUDA.

    Its ``get_fmaps`` moves the frames with ``.cuda()`` at inference, which fails without CUDA. Called in
    its training mode it skips only that move and the GPU-memory chunking of long clips (the encoder is
    the same), so on a non-CUDA device this instance's ``get_fmaps`` hands it frames already on ``device``
    in that mode. AllTracker's files are not touched.
    """
    if device.type == "cuda":
        return net
    original = type(net).get_fmaps

    def get_fmaps(images, batch, frames, sw, is_training):
        return original(net, images.to(device), batch, frames, sw, True)

    net.get_fmaps = get_fmaps
    return net


def _cuda_default(device):
    """On CUDA, make ``.cuda()`` inside AllTracker land on the model's own GPU; elsewhere nothing."""
    import contextlib

    import torch

    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _resize_maps(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_LINEAR) for m in maps])


# ------------------------------------------------------------------------------------------------ lookup

ESTIMATORS = {"opencv": OpenCVFlowEstimator, "alltracker": AllTrackerEstimator}


def get_estimator(name: str, **options) -> MotionEstimator:
    """The estimator called ``name`` ("opencv" or "alltracker"), built with ``options``."""
    if name not in ESTIMATORS:
        raise MotiveError(f"Unknown motion estimator {name!r}: choose one of {', '.join(sorted(ESTIMATORS))}.")
    return ESTIMATORS[name](**options)
