"""The one protocol the attribution code uses to talk to a video generator.

An adapter exposes exactly what Motive needs (paper §2.1, Eq. 1-3): the clip geometry every input is
standardised to, encoding a clip to the denoiser's input space, the conditioning of a caption, and the
denoiser's prediction. Noising and training targets are shared in ``flow.py`` so every model is noised
the same way at the fixed (timestep index, noise seed).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler


@dataclass(frozen=True)
class VideoGeometry:
    """Frame count, rate and size every clip is resampled to, and how the model's input grid is grouped.

    ``temporal_factor``/``spatial_factor`` describe the VAE (Wan: 4 and 8, first frame alone); a
    pixel-space model has factors 1 and 1.
    """

    num_frames: int
    fps: float
    height: int
    width: int
    temporal_factor: int = 1
    spatial_factor: int = 1
    first_frame_alone: bool = False

    def latent_frames(self) -> int:
        if self.first_frame_alone:
            return 1 + (self.num_frames - 1) // self.temporal_factor
        return self.num_frames // self.temporal_factor

    def latent_grid(self) -> tuple[int, int, int]:
        """(T', h', w') of the grid the loss is computed on (Eq. 14's target grid)."""
        return (self.latent_frames(), self.height // self.spatial_factor, self.width // self.spatial_factor)

    def to_dict(self) -> dict:
        return asdict(self)


@runtime_checkable
class VideoModelAdapter(Protocol):
    """What Motive needs from a text-to-video flow-matching model."""

    geometry: VideoGeometry
    scheduler: FlowMatchEulerDiscreteScheduler
    device: torch.device
    dtype: torch.dtype

    def identity(self) -> dict:
        """Model name and weight hash: everything about the model that changes a gradient."""

    def generation_scheduler(self, steps: int, shift: float | None = None):
        """A fresh diffusers scheduler with ``steps`` sampling timesteps set (the folder's own where it has one)."""

    def denoiser(self, timestep: float) -> torch.nn.Module:
        """The module that serves ``timestep`` and whose parameters the gradient covers (never the text encoder)."""

    def latent_shape(self) -> tuple[int, ...]:
        """Shape (1, C, T', h', w') of one encoded clip: the shape of the fixed noise draw."""

    def encode(self, frames: np.ndarray) -> torch.Tensor:
        """Standardised uint8 frames (T,H,W,3) → model input (1, C, T', h', w')."""

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Model input space (1, C, T', h', w') → uint8 frames (T,H,W,3)."""

    def encode_prompt(self, prompt: str) -> torch.Tensor:
        """Caption → conditioning (1, L, text_dim) for the denoiser."""

    def predict(self, noisy: torch.Tensor, timestep: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """The denoiser's velocity prediction for ``noisy`` at ``timestep``."""


def hash_state_dict(modules: dict[str, torch.nn.Module]) -> str:
    """A short, stable hash of all weights of the given modules (index configs record it)."""
    digest = hashlib.sha256()
    for prefix, module in sorted(modules.items()):
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(f"{prefix}.{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
            digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def resolve_device(device: str | None) -> torch.device:
    """``None``/"auto" → CUDA when available, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | None, device: torch.device) -> torch.dtype:
    """``None``/"auto" → bf16 on CUDA (the paper's setting), fp32 on CPU."""
    if dtype in (None, "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def model_folder_hint(path: Path) -> str:
    return f"looked in {path.resolve()}"
