"""The gradient projections an index can be built with, by the name AttributionSettings.projector records."""

from __future__ import annotations

import torch

from motive_core.attribution.blocksketch import BlockSketchProjector
from motive_core.attribution.countsketch import CountSketchProjector
from motive_core.attribution.fastfood import FastfoodConfig, FastfoodProjector
from motive_core.errors import MotiveError

PROJECTOR_CLASSES = {"fastfood": FastfoodProjector, "countsketch": CountSketchProjector,
                     "blocksketch": BlockSketchProjector}
Projector = FastfoodProjector | CountSketchProjector  # a BlockSketchProjector is a CountSketchProjector


def build_projector(name: str, config: FastfoodConfig, total_dim: int,
                    device: torch.device | str = "cpu") -> Projector:
    """The projector called ``name`` ("fastfood": block Fastfood, Eq. 8; "countsketch": one-sparse JL;
    "blocksketch": one-sparse JL with table hashes, the fastest)."""
    if name not in PROJECTOR_CLASSES:
        raise MotiveError(f"unknown projector {name!r}; choose one of {', '.join(PROJECTOR_CLASSES)}")
    return PROJECTOR_CLASSES[name](config, total_dim, device)
