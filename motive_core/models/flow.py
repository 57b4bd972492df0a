"""Flow-matching noising at a fixed (timestep index, noise draw) and Euler sampling.

Paper Eq. 1/3 with Wan's convention: z = (1 − σ)·x₀ + σ·ε, target velocity v = ε − x₀, the denoiser
sees timestep = σ·1000. Motive evaluates every clip and every query at ONE scheduler index (paper: 500
of 1000, t ≈ 751 at shift 3) and ONE noise tensor drawn from a fixed seed (Eq. 7, common randomness).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import diffusers
import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from motive_core.config import GENERATION
from motive_core.errors import MotiveError

PAPER_SHIFT = 3.0  # DiffSynth's flow-matching shift, under which index 500 ↦ t ≈ 751 (PAPER §8.1)


def attribution_scheduler(shift: float = PAPER_SHIFT) -> FlowMatchEulerDiscreteScheduler:
    """The 1000-step flow-matching schedule the fixed timestep index refers to."""
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)


def noising_identity(scheduler: FlowMatchEulerDiscreteScheduler) -> dict:
    """The schedule settings that enter the noising at the fixed timestep index (recorded in an index)."""
    return {"scheduler": type(scheduler).__name__, "shift": float(scheduler.config.shift),
            "num_train_timesteps": int(scheduler.config.num_train_timesteps)}


def folder_scheduler(folder: Path):
    """The scheduler a diffusers pipeline saved in ``folder`` (``scheduler_config.json``), or None if absent."""
    config_path = Path(folder) / "scheduler_config.json"
    if not config_path.is_file():
        return None
    name = json.loads(config_path.read_text()).get("_class_name", "")
    scheduler_class = getattr(diffusers, name, None)
    if scheduler_class is None or not hasattr(scheduler_class, "from_pretrained"):
        raise MotiveError(f"{config_path} names the scheduler {name!r}, which this diffusers does not have")
    return scheduler_class.from_pretrained(folder, local_files_only=True)


def sampling_scheduler(scheduler, steps: int, device: torch.device, shift: float | None = None, **timesteps):
    """A fresh copy of ``scheduler`` (multistep schedulers keep state) with ``steps`` sampling timesteps set.

    ``shift`` replaces its flow shift (and a resolution-dependent shift, LTX's, by that fixed one);
    ``timesteps`` go to ``set_timesteps`` as the folder's pipeline passes them (custom sigmas, ``mu``).
    """
    config = dict(scheduler.config)
    if shift is not None:
        keys = [k for k in ("shift", "flow_shift") if k in config]
        if not keys:
            raise MotiveError(f"{type(scheduler).__name__} has no flow shift to set")
        config.update({k: shift for k in keys})
        if config.get("use_dynamic_shifting"):
            config["use_dynamic_shifting"] = False
            timesteps.pop("mu", None)
    fresh = type(scheduler).from_config(config)
    fresh.set_timesteps(steps, device=device, **timesteps)
    return fresh


@dataclass(frozen=True)
class NoisedInput:
    noisy: torch.Tensor
    timestep: torch.Tensor
    target: torch.Tensor
    sigma: float


def fixed_noise(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """ε_fix: the same draw for every clip and query of the same shape (drawn on CPU so devices agree)."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float32)


def noise_at_index(
    scheduler: FlowMatchEulerDiscreteScheduler, latents: torch.Tensor, t_index: int, noise: torch.Tensor
) -> NoisedInput:
    """Noised input, timestep and flow-matching target at scheduler index ``t_index``."""
    steps = len(scheduler.timesteps)
    if not 0 <= t_index < steps:
        raise MotiveError(f"timestep index {t_index} is outside the schedule's 0..{steps - 1}")
    sigma = float(scheduler.sigmas[t_index])
    noise = noise.to(latents.device, latents.dtype)
    noisy = (1.0 - sigma) * latents + sigma * noise
    timestep = torch.full((latents.shape[0],), float(scheduler.timesteps[t_index]), device=latents.device)
    return NoisedInput(noisy=noisy, timestep=timestep, target=noise - latents, sigma=sigma)


@torch.no_grad()
def sample(adapter, prompt: str, seed: int = GENERATION.seed, steps: int = GENERATION.steps,
           guidance: float = GENERATION.guidance, shift: float | None = GENERATION.shift,
           on_step: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Generate a clip from ``prompt`` with the adapter's generation scheduler; uint8 (T,H,W,3).

    A diffusers folder samples with its own ``scheduler/`` and timesteps as its pipeline sets them (Wan
    ships UniPC with a flow shift), the demo with Euler steps. ``guidance`` ≠ 1 applies classifier-free
    guidance against the empty caption, as WanPipeline does with no negative prompt (a folder without a text
    encoder needs the embedding of ""). ``on_step(done, total)`` is called after every denoising step.
    """
    if steps < 1:
        raise MotiveError(f"steps must be at least 1 (got {steps})")
    scheduler = adapter.generation_scheduler(steps, shift)
    condition = adapter.encode_prompt(prompt)
    unconditional = adapter.encode_prompt("") if guidance != 1.0 else None
    shape = adapter.latent_shape()
    latents = fixed_noise(shape, seed).to(adapter.device, adapter.dtype)
    for done, timestep in enumerate(scheduler.timesteps, start=1):
        t = timestep.expand(shape[0]).to(adapter.device)
        velocity = adapter.predict(latents, t, condition)
        if unconditional is not None:
            base = adapter.predict(latents, t, unconditional)
            velocity = base + guidance * (velocity - base)
        latents = scheduler.step(velocity, timestep, latents, return_dict=False)[0]
        if on_step is not None:
            on_step(done, len(scheduler.timesteps))
    return adapter.decode(latents)
