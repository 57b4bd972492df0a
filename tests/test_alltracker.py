"""The AllTracker adapter: a stand-in clone with AllTracker's real interface (CI), and its real code when
ALLTRACKER_TEST_REPO points at a clone of https://github.com/aharley/alltracker (skipped otherwise).

The stand-in reproduces what the adapter must cope with at AllTracker's commit c1ed462: ``Net(seqlen, ...,
init_weights=True)`` fetches ImageNet weights unless told not to, ``time_emb`` is a (1, seqlen, 128)
buffer saved in the checkpoint, ``get_fmaps`` calls ``.cuda()`` at inference, ``forward_sliding`` takes
0-255 frames and a ``window_len`` and returns flows without a time axis for T <= 2, and visibility and
confidence are sigmoids (never exactly 0 or 1).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from motive_core.errors import MotiveError, TrackerUnavailableError  # noqa: E402
from motive_core.mask import motion_mask  # noqa: E402
from motive_core.motion import (OCCLUSION_THRESHOLD, AllTrackerEstimator, MotionField, demo_run_size,  # noqa: E402
                                get_estimator)

STAND_IN = '''
import torch


class Net(torch.nn.Module):
    """Every pixel moves (4, -2) px per frame, except the right half, which stays still and is occluded
    from frame 1 on (visibility 0.5, confidence 0.9: product 0.45 < 0.6). The left half has 1.0 and 0.9."""

    last_call = {}

    def __init__(self, seqlen, use_basicencoder=False, no_split=False, init_weights=True, **kwargs):
        super().__init__()
        if init_weights:
            raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")
        encoder = torch.nn.Conv2d(3, 2, 1)
        if use_basicencoder:
            self.fnet = encoder
        else:
            self.cnn = encoder
        self.register_buffer("time_emb", torch.zeros(1, seqlen, 128))
        self.seqlen = seqlen

    def get_fmaps(self, images_, B, T, sw, is_training):
        if not is_training:
            images_ = images_.cuda()
        encoder = self.fnet if hasattr(self, "fnet") else self.cnn
        return encoder(images_)

    def forward_sliding(self, images, iters=4, sw=None, is_training=False, window_len=None, stride=None):
        B, T, C, H, W = images.shape
        Net.last_call.update(images=images.detach().cpu().clone(), window_len=window_len, iters=iters)
        fmaps = self.get_fmaps(images.reshape(B * T, C, H, W) / 255.0, B, T, sw, is_training)
        moving = (torch.arange(W) < W // 2).float().view(1, 1, 1, 1, W)
        steps = torch.arange(T, dtype=torch.float32).view(1, T, 1, 1, 1)
        flows = (steps * torch.tensor([4.0, -2.0]).view(1, 1, 2, 1, 1) * moving).expand(B, T, 2, H, W) + 0.0 * fmaps.mean()
        later = (torch.arange(T) > 0).float().view(1, T, 1, 1)
        vis = 1.0 - 0.5 * later * (1.0 - moving[:, :, 0])
        visconf = torch.stack([vis.expand(B, T, H, W), torch.full((B, T, H, W), 0.9)], dim=2)
        if T <= 2:
            return flows[:, 1].cpu(), visconf[:, 1].cpu(), [], []
        return flows.cpu(), visconf.cpu(), None, None
'''


def forget_alltracker_modules() -> None:
    """AllTracker imports as the top-level packages ``nets`` and ``utils``: each test imports its own clone."""
    for name in [n for n in sys.modules if n.split(".")[0] in ("nets", "utils")]:
        del sys.modules[name]


@pytest.fixture
def clone(tmp_path, monkeypatch):
    """A folder laid out like AllTracker's clone with the stand-in as nets/alltracker.py."""
    root = tmp_path / "alltracker"
    (root / "nets").mkdir(parents=True)
    (root / "nets" / "alltracker.py").write_text(STAND_IN)
    monkeypatch.setattr(sys, "path", list(sys.path))
    forget_alltracker_modules()
    yield root
    forget_alltracker_modules()


def stand_in_checkpoint(path: Path, tiny: bool = False, seqlen: int = 16) -> Path:
    """A checkpoint saved the way AllTracker's are: {"model": state_dict} with the time embedding."""
    prefix = "fnet" if tiny else "cnn"
    state = {f"{prefix}.weight": torch.zeros(2, 3, 1, 1), f"{prefix}.bias": torch.zeros(2),
             "time_emb": torch.zeros(1, seqlen, 128)}
    torch.save({"model": state}, path)
    return path


def clip(frames: int, height: int = 128, width: int = 128) -> np.ndarray:
    rng = np.random.default_rng(frames)
    return rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8)


def test_stand_in_reproduces_the_cuda_only_call(clone, tmp_path):
    sys.path.insert(0, str(clone))
    from nets.alltracker import Net

    with pytest.raises(OSError, match="urlopen"):
        Net(16)
    net = Net(16, init_weights=False)
    if not torch.cuda.is_available():
        with pytest.raises((AssertionError, RuntimeError), match="CUDA"):
            net.forward_sliding(torch.full((1, 3, 3, 128, 128), 100.0))


def test_runs_on_cpu_with_occluded_tracks_dropped_and_reliability_in_the_mask(clone, tmp_path):
    estimator = AllTrackerEstimator(repo=clone, checkpoint=stand_in_checkpoint(tmp_path / "a.pth"), device="cpu",
                                    image_size=128)
    field = estimator.estimate(clip(4))
    from nets.alltracker import Net

    assert Net.last_call["window_len"] == 16 and Net.last_call["iters"] == 4
    assert field.displacement.shape == (4, 128, 128, 2)
    # frame 0: the seeds' first step, (4, -2) on the left half, 0 on the (still) right half
    assert np.allclose(field.displacement[0, :, :64], [4.0, -2.0]) and np.allclose(field.displacement[0, :, 64:], 0)
    # frames >= 1: the still right-half tracks are occluded (0.5 x 0.9 < 0.6) and dropped, so every pixel
    # takes the motion of the visible tracks landing on or nearest to it; kept, they would zero the right side
    assert np.allclose(field.displacement[1:], [4.0, -2.0])
    assert np.allclose(field.visibility[1:], 1.0) and np.allclose(field.confidence, 0.9)
    # frame 0 carries frame 1's visibility (its displacement is the step 0 -> 1)
    assert np.allclose(field.visibility[0, :, :64], 1.0) and np.allclose(field.visibility[0, :, 64:], 0.5)
    norm = np.hypot(field.displacement[..., 0], field.displacement[..., 1])
    assert np.allclose(field.reliability, field.visibility * field.confidence)
    assert np.allclose(field.magnitude, norm * field.reliability)  # the mask sees reliability-weighted motion
    assert motion_mask(field.magnitude).max() == pytest.approx(1.0, abs=1e-5)
    assert estimator.settings()["occlusion_threshold"] == OCCLUSION_THRESHOLD == 0.6


def test_magnitude_is_the_plain_norm_without_reliability():
    displacement = np.zeros((2, 4, 4, 2), np.float32)
    displacement[..., 0] = 3.0
    displacement[..., 1] = 4.0
    assert np.allclose(MotionField(displacement).magnitude, 5.0)
    weighted = MotionField(displacement, visibility=np.full((2, 4, 4), 0.5), confidence=np.full((2, 4, 4), 0.8))
    assert np.allclose(weighted.magnitude, 2.0)


def test_two_frame_clip_gets_its_time_axis_back(clone, tmp_path):
    estimator = AllTrackerEstimator(repo=clone, checkpoint=stand_in_checkpoint(tmp_path / "a.pth"), device="cpu",
                                    image_size=128)
    field = estimator.estimate(clip(2))
    assert field.displacement.shape == (2, 128, 128, 2)
    assert np.allclose(field.displacement[0, :, :64], [4.0, -2.0])
    assert np.allclose(field.displacement[1], [4.0, -2.0])


def test_preprocessing_is_the_demos_bilinear_long_side_resize(clone, tmp_path):
    assert demo_run_size(480, 832, 1024) == (584, 1024)  # int(480 · 1024/832) = 590 → 584
    assert demo_run_size(32, 32, 1024) == (1024, 1024)  # small clips are upsampled, as the demo does
    frames = clip(3, height=100, width=150)
    estimator = AllTrackerEstimator(repo=clone, checkpoint=stand_in_checkpoint(tmp_path / "a.pth"), device="cpu",
                                    image_size=192)
    field = estimator.estimate(frames)
    from nets.alltracker import Net

    images = Net.last_call["images"]
    assert tuple(images.shape) == (1, 3, 3, 128, 192)  # int(100 · 192/150) = 128
    expected = cv2.resize(frames[1], (192, 128), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(images[0, 1].permute(1, 2, 0).numpy(), expected.astype(np.float32))
    assert images.max() > 1.0  # AllTracker normalises 0-255 frames itself
    # (4, -2) px at 192x128 are (4·150/192, -2·100/128) px on the input
    assert field.displacement.shape == (3, 100, 150, 2)
    assert np.allclose(field.displacement[2], [4 * 150 / 192, -2 * 100 / 128], atol=1e-4)
    with pytest.raises(MotiveError, match="use image_size >= 384"):
        AllTrackerEstimator(repo=clone, checkpoint=tmp_path / "a.pth", device="cpu",
                            image_size=128).estimate(clip(2, height=64, width=192))
    with pytest.raises(MotiveError, match="image_size >= 128"):
        AllTrackerEstimator(repo=clone, checkpoint=tmp_path / "a.pth", image_size=64)


def test_checkpoint_mismatches_are_one_line(clone, tmp_path):
    tiny = stand_in_checkpoint(tmp_path / "tiny.pth", tiny=True)
    with pytest.raises(TrackerUnavailableError, match="holds the tiny AllTracker model: choose model 'tiny'") as err:
        AllTrackerEstimator(repo=clone, checkpoint=tiny, device="cpu", image_size=128).estimate(clip(3))
    assert "\n" not in str(err.value) and len(str(err.value)) < 300
    full = stand_in_checkpoint(tmp_path / "full.pth")
    with pytest.raises(TrackerUnavailableError, match="holds the full AllTracker model: choose model 'full'"):
        AllTrackerEstimator(repo=clone, checkpoint=full, model="tiny", device="cpu", image_size=128).estimate(clip(3))
    field = AllTrackerEstimator(repo=clone, checkpoint=tiny, model="tiny", device="cpu", image_size=128).estimate(clip(3))
    assert np.allclose(field.displacement[1:], [4.0, -2.0])
    with pytest.raises(TrackerUnavailableError, match="window_len 8 does not match .*covers 16 frames"):
        AllTrackerEstimator(repo=clone, checkpoint=full, window_len=8, device="cpu", image_size=128).estimate(clip(3))
    other = tmp_path / "other.pth"
    torch.save({"model": {"cnn.weight": torch.zeros(2, 3, 1, 1), "head.weight": torch.zeros(1)}}, other)
    with pytest.raises(TrackerUnavailableError, match=r"2 weights missing, 1 unexpected, 0 of another shape \(first: cnn.bias\)") as err:
        AllTrackerEstimator(repo=clone, checkpoint=other, device="cpu", image_size=128).estimate(clip(3))
    assert "\n" not in str(err.value)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(TrackerUnavailableError, match="could not be read"):
        AllTrackerEstimator(repo=clone, checkpoint=tmp_path / "junk.pth", device="cpu").estimate(clip(3))
    with pytest.raises(MotiveError, match="Unknown AllTracker model 'small'"):
        AllTrackerEstimator(repo=clone, checkpoint=full, model="small")


@pytest.mark.parametrize("body, cause, remedy", [
    ("import einops_missing_here\n", "ModuleNotFoundError: No module named 'einops_missing_here'",
     r"pip install 'motive-studio\[alltracker\]'"),
    ("raise RuntimeError('operator torchvision::nms does not exist')\n",
     "RuntimeError: operator torchvision::nms does not exist", "torchvision does not match the installed torch"),
])
def test_import_failures_name_their_real_cause(clone, tmp_path, body, cause, remedy):
    (clone / "nets" / "alltracker.py").write_text(body)
    estimator = AllTrackerEstimator(repo=clone, checkpoint=stand_in_checkpoint(tmp_path / "a.pth"), device="cpu")
    with pytest.raises(TrackerUnavailableError, match=remedy) as err:
        estimator.estimate(clip(3))
    assert cause in str(err.value) and str(clone) in str(err.value)


def test_cuda_requested_without_cuda_is_refused(clone, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    estimator = AllTrackerEstimator(repo=clone, checkpoint=stand_in_checkpoint(tmp_path / "a.pth"), device="cuda")
    with pytest.raises(TrackerUnavailableError, match="asked to run on cuda, but this torch has no CUDA"):
        estimator.estimate(clip(3))


def test_get_estimator_passes_tracker_options(clone, tmp_path):
    estimator = get_estimator("alltracker", repo=clone, checkpoint=stand_in_checkpoint(tmp_path / "a.pth", tiny=True),
                              model="tiny", device="cpu", image_size=256)
    assert estimator.settings()["model"] == "tiny" and estimator.settings()["image_size"] == 256


def test_environment_chooses_model_device_and_size(clone, tmp_path, monkeypatch):
    monkeypatch.setenv("ALLTRACKER_MODEL", "tiny")
    monkeypatch.setenv("ALLTRACKER_DEVICE", "cpu")
    monkeypatch.setenv("ALLTRACKER_IMAGE_SIZE", "128")
    estimator = AllTrackerEstimator(repo=clone, checkpoint=stand_in_checkpoint(tmp_path / "a.pth", tiny=True))
    assert (estimator.model, estimator.device, estimator.image_size) == ("tiny", "cpu", 128)
    assert estimator.estimate(clip(3)).displacement.shape == (3, 128, 128, 2)
    assert AllTrackerEstimator(repo=clone, checkpoint=tmp_path / "a.pth", model="full").model == "full"


def test_mask_command_chooses_the_tracker_and_reads_only_the_models_configs(clone, tmp_path, clip_folder, capsys,
                                                                             monkeypatch):
    import json

    from conftest import write_tiny_wan

    from motive_core.cli import main

    wan = write_tiny_wan(tmp_path / "wan", ["a caption"])
    for weights in wan.rglob("*.safetensors"):
        weights.unlink()  # the latent mask needs the geometry only
    monkeypatch.setenv("ALLTRACKER_REPO", str(clone))
    monkeypatch.setenv("ALLTRACKER_CKPT", str(stand_in_checkpoint(tmp_path / "tiny.pth", tiny=True)))
    video = sorted(clip_folder.glob("*.mp4"))[0]
    assert main(["mask", "--video", str(video), "--out", str(tmp_path / "m"), "--tracker", "alltracker",
                 "--tracker-model", "tiny", "--tracker-device", "cpu", "--tracker-size", "128", "--model", str(wan),
                 "--json"]) == 0
    files = json.loads(capsys.readouterr().out)["files"]
    assert np.load(files["latent_mask"]).shape == (3, 4, 4)
    assert np.load(files["mask"]).shape == (16, 32, 32)
    assert main(["mask", "--video", str(video), "--out", str(tmp_path / "m2"), "--tracker", "alltracker",
                 "--tracker-device", "cpu", "--tracker-size", "128"]) == 2
    assert "holds the tiny AllTracker model: choose model 'tiny'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ AllTracker's real code

REAL_REPO = os.environ.get("ALLTRACKER_TEST_REPO")


@pytest.mark.slow
@pytest.mark.skipif(not REAL_REPO, reason="set ALLTRACKER_TEST_REPO to a clone of aharley/alltracker to run")
@pytest.mark.parametrize("model", ["tiny", "full"])
def test_real_alltracker_runs_on_cpu_with_a_random_weight_checkpoint(tmp_path, model, monkeypatch):
    """Builds a random-weight checkpoint with AllTracker's own Net, then runs the adapter on 2 and 5 frames."""
    monkeypatch.setattr(sys, "path", [REAL_REPO] + sys.path)
    forget_alltracker_modules()
    from nets.alltracker import Net

    torch.manual_seed(0)
    extra = dict(use_basicencoder=True, no_split=True) if model == "tiny" else {}
    torch.save({"model": Net(16, init_weights=False, **extra).state_dict()}, tmp_path / "ckpt.pth")
    estimator = AllTrackerEstimator(repo=REAL_REPO, checkpoint=tmp_path / "ckpt.pth", model=model, device="cpu",
                                    image_size=176)
    for frames in (2, 5):
        start = time.perf_counter()
        field = estimator.estimate(clip(frames, height=48, width=64))
        print(f"{model} {frames} frames 64x48 -> {demo_run_size(48, 64, 176)}: {time.perf_counter() - start:.1f} s")
        assert field.displacement.shape == (frames, 48, 64, 2) and np.isfinite(field.displacement).all()
        assert field.visibility.shape == field.confidence.shape == (frames, 48, 64)
        assert 0.0 <= field.reliability.min() and field.reliability.max() <= 1.0
    with pytest.raises(TrackerUnavailableError, match="choose model"):
        AllTrackerEstimator(repo=REAL_REPO, checkpoint=tmp_path / "ckpt.pth", model="full" if model == "tiny" else "tiny",
                            device="cpu", image_size=128).estimate(clip(3))
    forget_alltracker_modules()
