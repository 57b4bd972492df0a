"""The motion-weighted attribution loss (paper Eq. 15-16)."""

from __future__ import annotations

import torch


def per_location_error(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error per latent location, channels averaged: (B, C, T', h', w') → (B, T', h', w') (Eq. 15)."""
    return (prediction.float() - target.float()).pow(2).mean(dim=1)


def temporal_change(error: torch.Tensor, lag: int = 1) -> torch.Tensor:
    """error[t] − error[t − lag] along the frame axis of (B, C, T', h', w'), the first ``lag`` frames kept as is."""
    return torch.cat([error[:, :, :lag], error[:, :, lag:] - error[:, :, :-lag]], dim=2)


def temporal_difference_error(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared *change* of the error between consecutive frames, first frame kept as is.

    A variant that raised same-motion retrieval on the demo model (docs/results.md, variants): the loss then
    rewards getting the frame-to-frame change right rather than each frame's look.
    """
    return temporal_change(prediction.float() - target.float()).pow(2).mean(dim=1)


def location_loss(prediction: torch.Tensor, target: torch.Tensor, variant: str = "motive") -> torch.Tensor:
    """The loss at each latent location before any weighting, (B, T', h', w'): Eq. 15's L̃ or its temporal change."""
    if variant == "temporal_diff":
        return temporal_difference_error(prediction, target)
    return per_location_error(prediction, target)


def weighted_mean(location: torch.Tensor, weight: torch.Tensor | None, num_frames: int) -> torch.Tensor:
    """(1/F)·mean(W̃ ⊙ L̃) (Eq. 16) of a per-location loss; ``weight=None`` means W̃ ≡ 1.

    ``weight`` has shape (T', h', w') on the loss grid; F is the clip's pixel frame count (Eq. 11).
    """
    if weight is not None:
        location = location * weight.to(location.device, location.dtype).unsqueeze(0)
    return location.mean() / num_frames


def motion_weighted_loss(prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None,
                         num_frames: int, variant: str = "motive") -> torch.Tensor:
    """L_mot (Eq. 16). ``weight=None`` means W̃ ≡ 1: the paper's "w/o MM" baseline."""
    return weighted_mean(location_loss(prediction, target, variant), weight, num_frames)
