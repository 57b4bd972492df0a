"""One clip's gradient at the shared (t_fix, ε_fix), streamed straight into the Fastfood projection.

Paper Alg. 1 steps 3-6 / Eq. 17: evaluate L_mot at the fixed timestep index and fixed noise, take its
gradient over the selected denoiser parameters, project (Eq. 9) and ℓ2-normalise. The gradient is
handed to the projector one parameter at a time, so no second full copy of it is ever made.
"""

from __future__ import annotations

import re
import time

import numpy as np
import torch

from motive_core.attribution.fastfood import FastfoodConfig, l2_normalize
from motive_core.attribution.loss import location_loss, weighted_mean
from motive_core.attribution.projectors import Projector, build_projector
from motive_core.config import AttributionSettings
from motive_core.errors import GradientError, MotiveError
from motive_core.models.base import VideoModelAdapter
from motive_core.models.flow import fixed_noise, noise_at_index


def select_parameters(module: torch.nn.Module, pattern: str = ".*") -> list[tuple[str, torch.nn.Parameter]]:
    """Trainable parameters whose names match ``pattern`` (regex search), in a fixed order."""
    regex = re.compile(pattern)
    chosen = [(n, p) for n, p in module.named_parameters() if p.requires_grad and regex.search(n)]
    if not chosen:
        raise MotiveError(f"no trainable denoiser parameter matches {pattern!r}")
    return chosen


class GradientProjector:
    """Computes projected, normalised motion gradients for one model under fixed settings.

    ``projector`` replaces the one ``settings.projector`` names (e.g. a benchmark comparing Hadamard
    backends); it must take this model's gradient length and give ``settings.proj_dim`` outputs.
    """

    def __init__(self, adapter: VideoModelAdapter, settings: AttributionSettings, projector: Projector | None = None):
        self.adapter = adapter
        self.settings = settings
        self.noise = fixed_noise(adapter.latent_shape(), settings.noise_seed)
        steps = len(adapter.scheduler.timesteps)
        if max(settings.timesteps) >= steps:
            raise MotiveError(f"scheduler indexes {settings.timesteps} must be below the schedule's {steps} steps")
        denoisers = {id(adapter.denoiser(float(adapter.scheduler.timesteps[t]))) for t in settings.timesteps}
        if len(denoisers) > 1:
            raise MotiveError(f"the scheduler indexes {settings.timesteps} fall on different expert denoisers of this "
                              "model (Wan 2.2's boundary); an ensemble must stay within one expert")
        self.denoiser = adapter.denoiser(float(adapter.scheduler.timesteps[settings.t_index]))
        self.parameters = select_parameters(self.denoiser, settings.params)
        self.num_parameters = sum(p.numel() for _, p in self.parameters)
        if projector is not None and (projector.total_dim, projector.config.dim) != (self.num_parameters,
                                                                                   settings.proj_dim):
            raise ValueError(f"the projector takes {projector.total_dim} entries to {projector.config.dim}; this "
                             f"gradient has {self.num_parameters} entries and proj_dim is {settings.proj_dim}")
        self.projector = projector or build_projector(
            settings.projector,
            FastfoodConfig(dim=settings.proj_dim, seed=settings.proj_seed, block_size=settings.block_size),
            total_dim=self.num_parameters, device=adapter.device)
        self.timings: dict[str, float] = {}

    def prediction(self, latents: torch.Tensor, condition: torch.Tensor,
                   t_index: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(the denoiser's prediction, its flow-matching target) for the clip noised with ε_fix at ``t_index``
        (default: the settings' t_fix), both (1, C, T', h', w'): what every attribution loss compares."""
        t_index = self.settings.t_index if t_index is None else t_index
        noised = noise_at_index(self.adapter.scheduler, latents, t_index, self.noise)
        return self.adapter.predict(noised.noisy, noised.timestep, condition), noised.target

    def location_loss(self, latents: torch.Tensor, condition: torch.Tensor, t_index: int | None = None) -> torch.Tensor:
        """The per-location loss at (t_fix, ε_fix) before the mask (Eq. 15), (1, T', h', w'); ``t_index``
        defaults to the settings' t_fix."""
        return location_loss(*self.prediction(latents, condition, t_index), self.settings.loss)

    def loss(self, latents: torch.Tensor, condition: torch.Tensor, weight: torch.Tensor | None,
             t_index: int | None = None) -> torch.Tensor:
        """L_mot at (t_fix, ε_fix) (Eq. 15-16); ``t_index`` defaults to the settings' t_fix."""
        return weighted_mean(self.location_loss(latents, condition, t_index), weight, self.adapter.geometry.num_frames)

    def parameter_gradients(self, loss: torch.Tensor) -> list[torch.Tensor]:
        """∇loss for each selected parameter, flattened, in the projector's order (zeros for unused ones)."""
        grads = torch.autograd.grad(loss, [p for _, p in self.parameters], allow_unused=True)
        return [torch.zeros(p.numel(), device=p.device) if g is None else g.reshape(-1)
                for (_, p), g in zip(self.parameters, grads)]

    def flat_gradient(self, loss: torch.Tensor) -> torch.Tensor:
        """The unprojected gradient ∇loss (D,) float32, in the projector's order: what fidelity studies
        compare the projection against (it is one full copy of the gradient; the index build never makes it)."""
        return torch.cat(self.parameter_gradients(loss)).detach().float()

    def gradient_vector(self, latents: torch.Tensor, condition: torch.Tensor,
                        weight: torch.Tensor | None) -> np.ndarray:
        """g̃_mot = P∇L_mot / ‖P∇L_mot‖ (Eq. 17) as float32 (D′,).

        With a timestep ensemble (``settings.t_ensemble``) it is the normalised mean of that unit vector at
        each scheduler index, all with the same ε_fix: one backward pass per index.
        """
        self.timings = {"gradient": 0.0, "projection": 0.0}
        units = [l2_normalize(self.projected_gradient(latents, condition, weight, t)) for t in self.settings.timesteps]
        vector = units[0] if len(units) == 1 else l2_normalize(torch.stack(units).sum(dim=0))
        return vector.cpu().numpy().astype(np.float32)

    def projected_gradient(self, latents: torch.Tensor, condition: torch.Tensor, weight: torch.Tensor | None,
                           t_index: int) -> torch.Tensor:
        """P∇L_mot at one scheduler index, not normalised (Eq. 9 before Eq. 17's normalisation; studies combine
        these before normalising); adds its seconds to ``timings``."""
        start = time.perf_counter()
        return self.project(self.loss(latents, condition, weight, t_index), start)

    def project(self, loss: torch.Tensor, start: float | None = None) -> torch.Tensor:
        """P∇loss, not normalised: the gradient of any scalar loss of this denoiser, projected (studies of other
        losses call it directly); ``start`` (a perf_counter reading) is when the loss's forward pass began, so
        that ``timings`` counts it as gradient time."""
        start = time.perf_counter() if start is None else start
        if not torch.isfinite(loss):
            raise GradientError(f"the attribution loss is {loss.item()} (not finite); the clip or model is broken")
        grads = self.parameter_gradients(loss)
        self.timings["gradient"] = self.timings.get("gradient", 0.0) + time.perf_counter() - start
        start = time.perf_counter()
        stream = self.projector.stream()
        for grad in grads:
            stream.update(grad)
        projected = stream.finish()
        self.timings["projection"] = self.timings.get("projection", 0.0) + time.perf_counter() - start
        if not torch.isfinite(projected).all():
            raise GradientError("the gradient contains NaN or infinity; nothing was stored for this clip")
        if float(projected.norm()) == 0.0:
            raise GradientError("the gradient is exactly zero (does the parameter filter select anything used?)")
        return projected

