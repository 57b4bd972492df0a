"""One clip through the whole pipeline: video → motion → mask → loss → gradient → projection.

This is Motive's "featurize" step (paper Alg. 1 steps 1-6): the same code serves training clips (index
build) and queries, so both see identical standardisation, masks, (t_fix, ε_fix) and projection.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from motive_core.attribution.gradient import GradientProjector
from motive_core.config import CODE_VERSION, AttributionSettings
from motive_core.errors import MotiveError
from motive_core.mask import MotionStats, mask_to_latent, motion_mask, motion_stats
from motive_core.models.base import VideoGeometry, VideoModelAdapter
from motive_core.motion import MotionEstimator, MotionField, get_estimator
from motive_core.video import Video, read_video, standardize


@dataclass
class PreparedClip:
    """A clip standardised to the model's geometry, with its motion and masks (Eq. 13-14)."""

    frames: np.ndarray
    motion: MotionField
    mask: np.ndarray
    latent_mask: np.ndarray
    stats: MotionStats
    timings: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)  # frames, fps, height, width before standardisation
    selection: dict | None = None  # what selection.select restricted the weight to (None: the whole clip)


def prepare_clip(video: Video, geometry: VideoGeometry, estimator: MotionEstimator) -> PreparedClip:
    """Standardise (length, fps, size) to the model's geometry, estimate motion, build the pixel mask (Eq. 13)
    and its latent-grid map (Eq. 14): the one place this composition lives (index builds, queries, the CLI's
    ``mask`` and a cluster's mask stage all call it)."""
    g = geometry
    timings = {}
    start = time.perf_counter()
    frames = standardize(video, g.num_frames, g.fps, g.height, g.width)
    timings["standardize"] = time.perf_counter() - start
    start = time.perf_counter()
    field_ = estimator.estimate(frames)
    mask = motion_mask(field_.magnitude)
    latent_mask = mask_to_latent(mask, g.latent_grid(), g.temporal_factor, g.first_frame_alone)
    timings["motion"] = time.perf_counter() - start
    source = {"frames": len(video.frames), "fps": video.fps, "height": video.frames.shape[1],
              "width": video.frames.shape[2]}
    return PreparedClip(frames, field_, mask, latent_mask, motion_stats(field_), timings, source)


def require_motion(latent_mask: np.ndarray, use_mask: bool) -> None:
    """Refuse a clip whose motion mask is zero everywhere: its motion-weighted loss, hence its gradient, is zero."""
    if use_mask and not np.any(latent_mask > 0):
        raise MotiveError("the clip has no motion at all: its motion mask is zero everywhere, so the motion-weighted "
                          "loss has no gradient and there is nothing to attribute; use a clip in which something "
                          "moves, or the no-mask index")


class Featurizer:
    """Turns clips into projected motion-gradient vectors for one model and one set of settings."""

    def __init__(self, adapter: VideoModelAdapter, settings: AttributionSettings,
                 estimator: MotionEstimator | None = None):
        self.adapter = adapter
        self.settings = settings
        self.estimator = estimator or get_estimator(settings.tracker)
        self._gradients: GradientProjector | None = None

    @property
    def gradients(self) -> GradientProjector:
        if self._gradients is None:
            self._gradients = GradientProjector(self.adapter, self.settings)
        return self._gradients

    def config(self) -> dict:
        """Every setting that changes a vector (DESIGN "Contracts"), as recorded in an index."""
        return {
            "model": self.adapter.identity(),
            "geometry": self.adapter.geometry.to_dict(),
            "tracker": {"name": self.estimator.name, **self.estimator.settings()},
            "settings": {k: v for k, v in self.settings.to_dict().items() if k != "tracker"},
            "dtype": str(self.adapter.dtype).replace("torch.", ""),
            "code_version": CODE_VERSION,
        }

    def prepare(self, video: Video) -> PreparedClip:
        """:func:`prepare_clip` at this model's geometry with this featurizer's motion estimator."""
        return prepare_clip(video, self.adapter.geometry, self.estimator)

    def prepare_file(self, path: str | Path) -> PreparedClip:
        start = time.perf_counter()
        video = read_video(path)
        prepared = self.prepare(video)
        prepared.timings = {"decode": time.perf_counter() - start - sum(prepared.timings.values()), **prepared.timings}
        return prepared

    def vector(self, prepared: PreparedClip, caption: str) -> np.ndarray:
        """g̃_mot for the prepared clip (Eq. 17); records encode/gradient timings.

        The caption conditions the prediction only under ``conditioning="caption"``; under "null" every clip
        and query is conditioned on the empty prompt, whatever caption is passed.
        """
        require_motion(prepared.latent_mask, self.settings.use_mask)
        start = time.perf_counter()
        latents = self.adapter.encode(prepared.frames)
        condition = self.adapter.encode_prompt(self.settings.conditioning_prompt(caption))
        prepared.timings["encode"] = time.perf_counter() - start
        selected = prepared.selection is not None  # a selection weights the loss even without the motion mask
        weight = torch.from_numpy(prepared.latent_mask) if self.settings.use_mask or selected else None
        vector = self.gradients.gradient_vector(latents, condition, weight)
        prepared.timings.update(self.gradients.timings)
        return vector
