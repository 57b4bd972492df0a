"""Train (or fine-tune) the demo generator on a clip folder with the plain flow-matching loss.

Fine-tuning always uses the unmasked loss (paper: the mask is for attribution only). Clips are
standardised to the model's geometry once and kept in memory as uint8. Deterministic given the seed
on a given device; a loss log (JSONL) and a tqdm progress bar show the run.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from motive_core.data import Clip, load_clip_folder
from motive_core.demo.model import TRAIN_MIN_SIGMA, DemoVideoModel
from motive_core.errors import MotiveError
from motive_core.video import read_video, standardize


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 16
    lr: float = 5e-4
    warmup: int = 50
    weight_decay: float = 0.01
    caption_dropout: float = 0.1
    word_dropout: float = 0.1
    shift: float = 3.0
    # "velocity": (v̂ − v)², the plain flow-matching loss (Eq. 3). "sample": the clean-clip error
    # (x̂₀ − x₀)² = σ²(v̂ − v)², which stops low-noise steps (weight 1/σ² in the velocity loss) from
    # drowning out the high-noise steps where a clip's trajectory is decided.
    loss_space: str = "velocity"
    # Adds this weight × the squared frame-to-frame change of the error: it penalises wrong motion
    # directly instead of only through per-frame pixels.
    temporal_weight: float = 0.0
    # > 0: keep an exponential moving average of the weights with this decay and end with it in the model
    # (samples from averaged weights are smoother than from the last step's); 0 keeps the last step's.
    ema_decay: float = 0.0
    seed: int = 0
    log_every: int = 10
    max_seconds: float | None = None


def load_training_tensors(model: DemoVideoModel, clips: list[Clip]) -> tuple[torch.Tensor, list[str]]:
    """All clips standardised to the model's geometry: uint8 (N, 3, T, H, W) and their captions."""
    g = model.geometry
    frames = [standardize(read_video(c.file), g.num_frames, g.fps, g.height, g.width) for c in clips]
    stacked = torch.from_numpy(np.stack(frames)).permute(0, 4, 1, 2, 3).contiguous()
    return stacked, [c.caption for c in clips]


def _token_batch(model: DemoVideoModel, captions: list[str], config: TrainConfig, rng: np.random.Generator) -> torch.Tensor:
    """Caption ids with whole-caption dropout (for guidance) and word dropout to ``<unk>`` (for unseen words)."""
    rows = []
    for caption in captions:
        ids = model.text_encoder.ids(caption)
        if rng.random() < config.caption_dropout:
            ids = [0] * len(ids)
        else:
            ids = [1 if (i > 1 and rng.random() < config.word_dropout) else i for i in ids]
        rows.append(ids)
    return torch.tensor(rows, device=model.device)


def _lr_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10 %."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


LOSS_SPACES = ("velocity", "sample")


def training_loss(velocity_error: torch.Tensor, sigma: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """Mean squared error in the configured space, plus the optional temporal-change term."""
    error = velocity_error * sigma if config.loss_space == "sample" else velocity_error
    loss = error.pow(2).mean()
    if config.temporal_weight:
        loss = loss + config.temporal_weight * (error[:, :, 1:] - error[:, :, :-1]).pow(2).mean()
    return loss


@torch.no_grad()
def _update_average(average: list[torch.Tensor], params: list[torch.Tensor], decay: float) -> None:
    """average ← decay·average + (1 − decay)·params; the decay ramps up over the first steps (bias-free start)."""
    for mean, param in zip(average, params):
        mean.lerp_(param.detach(), 1 - decay)


TrainingData = str | Path | list[Clip] | tuple[torch.Tensor, list[str]]


def train(model: DemoVideoModel, data: TrainingData, config: TrainConfig,
          log_path: str | Path | None = None, progress: bool = True) -> list[dict]:
    """Flow-matching training: x_σ = (1−σ)x₀ + σε, target ε − x₀, σ shifted-uniform (Eq. 3).

    ``data`` is a clip folder, a list of clips, or tensors already made by :func:`load_training_tensors`
    (callers that fine-tune many times on the same clips decode them once).
    """
    if config.loss_space not in LOSS_SPACES:
        raise MotiveError(f"loss_space must be one of {', '.join(LOSS_SPACES)} (got {config.loss_space!r})")
    if config.temporal_weight < 0:
        raise MotiveError(f"temporal_weight must be ≥ 0 (got {config.temporal_weight})")
    if not 0 <= config.ema_decay < 1:
        raise MotiveError(f"ema_decay must be in [0, 1) (got {config.ema_decay})")
    if isinstance(data, tuple):
        videos, captions = data
    else:
        clips = load_clip_folder(data) if not isinstance(data, list) else data
        videos, captions = load_training_tensors(model, clips) if clips else (torch.empty(0), [])
    if not captions:
        raise MotiveError("no clips to train on")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    params = list(model.transformer.parameters()) + list(model.text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    average = [p.detach().clone() for p in params] if config.ema_decay else None
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if model.device.type == "cuda" else contextlib.nullcontext()
    model.transformer.train()
    log: list[dict] = []
    start = time.perf_counter()
    iterator = range(config.steps)
    if progress:
        from tqdm import tqdm
        iterator = tqdm(iterator, desc="train", unit="step")
    running = None
    for step in iterator:
        index = rng.integers(0, len(captions), config.batch_size)
        x0 = videos[index].to(model.device, torch.float32) / 127.5 - 1.0
        u = torch.rand(config.batch_size, device=model.device)
        sigma = config.shift * u / (1 + (config.shift - 1) * u)
        noise = torch.randn_like(x0)
        s = sigma.view(-1, 1, 1, 1, 1)
        noisy = (1 - s) * x0 + s * noise
        condition = model.text_encoder(_token_batch(model, [captions[i] for i in index], config, rng))
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, config)
        with autocast:
            prediction = model.predict(noisy, sigma * 1000, condition, min_sigma=TRAIN_MIN_SIGMA)
        loss = training_loss(prediction.float() - (noise - x0), s, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if average is not None:
            _update_average(average, params, min(config.ema_decay, (1 + step) / (10 + step)))
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if step % config.log_every == 0 or step == config.steps - 1:
            entry = {"step": step, "loss": loss.item(), "loss_ema": running, "lr": _lr_at(step, config),
                     "seconds": time.perf_counter() - start}
            log.append(entry)
            if progress:
                iterator.set_postfix(loss=f"{running:.4f}")
        if config.max_seconds and time.perf_counter() - start > config.max_seconds:
            break
    if average is not None:
        with torch.no_grad():
            for param, mean in zip(params, average):
                param.copy_(mean)
    model.transformer.eval()
    if log_path:
        Path(log_path).write_text("".join(json.dumps(e) + "\n" for e in log)
                                  + json.dumps({"config": asdict(config), "clips": len(captions)}) + "\n")
    return log

