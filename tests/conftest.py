"""Shared fixtures: a small real clip folder and a small random-weight demo model saved to disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def clip_folder(tmp_path_factory) -> Path:
    """Eight rendered MotionShapes clips (real H.264 files + metadata.jsonl)."""
    from motive_core.motionshapes import sample_specs, write_clip_folder

    folder = tmp_path_factory.mktemp("clips")
    write_clip_folder(folder, sample_specs(8, seed=3, pan_fraction=0.0, static_fraction=0.0), num_frames=16, size=32)
    return folder


@pytest.fixture(scope="session")
def tiny_geometry():
    from motive_core.models import VideoGeometry

    return VideoGeometry(num_frames=8, fps=8.0, height=32, width=32)


@pytest.fixture(scope="session")
def tiny_demo_dir(tmp_path_factory, tiny_geometry) -> Path:
    """A random-weight demo model (2 layers) saved in the demo layout, loadable with load_model(path)."""
    from motive_core.models import DemoVideoModel
    from motive_core.motionshapes import MOTIONS

    model = DemoVideoModel.create(
        vocab=list(MOTIONS) + ["a", "red", "square", "on", "background"], geometry=tiny_geometry, seed=0,
        transformer=dict(num_layers=2, num_attention_heads=2, attention_head_dim=8, ffn_dim=32, freq_dim=32),
        text_dim=16)
    return model.save(tmp_path_factory.mktemp("demo_model"))
