"""Shared fixtures: a small real clip folder and a small random-weight demo model saved to disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def clip_folder(tmp_path_factory) -> Path:
    """Eight rendered MotionShapes clips (real H.264 files + metadata.jsonl)."""
    from motive_core.demo.motionshapes import sample_specs, write_clip_folder

    folder = tmp_path_factory.mktemp("clips")
    write_clip_folder(folder, sample_specs(8, seed=3, pan_fraction=0.0, static_fraction=0.0), num_frames=16, size=32)
    return folder


@pytest.fixture(scope="session")
def tiny_geometry():
    from motive_core.models import VideoGeometry

    return VideoGeometry(num_frames=8, fps=8.0, height=32, width=32)


def write_tiny_demo(folder: Path, geometry, seed: int = 0) -> Path:
    """A random-weight demo model (2 layers) saved in the demo layout, loadable with load_model(path); another
    ``seed`` gives another model of the same shape."""
    from motive_core.demo.model import DemoVideoModel
    from motive_core.demo.motionshapes import MOTIONS

    model = DemoVideoModel.create(
        vocab=list(MOTIONS) + ["a", "red", "square", "on", "background"], geometry=geometry, seed=seed,
        transformer=dict(num_layers=2, num_attention_heads=2, attention_head_dim=8, ffn_dim=32, freq_dim=32),
        text_dim=16)
    return model.save(folder)


@pytest.fixture(scope="session")
def tiny_demo_dir(tmp_path_factory, tiny_geometry) -> Path:
    return write_tiny_demo(tmp_path_factory.mktemp("demo_model"), tiny_geometry)


def write_tiny_wan(folder: Path, captions: list[str]) -> Path:
    """A diffusers-layout Wan 2.1 folder with tiny random weights (the upstream test config), 9 frames at
    32×32, and precomputed (5, 32) embeddings for ``captions`` (there is no text encoder)."""
    import json

    import torch
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from motive_core.models.wan import save_prompt_embeddings

    torch.manual_seed(0)
    WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16,
                          out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                          qk_norm="rms_norm_across_heads", rope_max_seq_len=32).save_pretrained(folder / "transformer")
    AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                     temperal_downsample=[False, True, True]).save_pretrained(folder / "vae")
    (folder / "motive.json").write_text(json.dumps({"num_frames": 9, "fps": 8.0, "height": 32, "width": 32}))
    save_prompt_embeddings(folder / "prompt_embeds.safetensors", {c: torch.randn(5, 32) for c in captions})
    return folder


@pytest.fixture(scope="session")
def tiny_wan_dir(tmp_path_factory) -> Path:
    return write_tiny_wan(tmp_path_factory.mktemp("wan"), ["a ball bouncing", "a ball"])


@pytest.fixture
def one_torch_thread():
    """Projection tests run many small ops: on 2 shared cores a second intra-op thread only adds waiting."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
