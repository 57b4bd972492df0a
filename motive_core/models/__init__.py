"""Model adapters: the demo generator and diffusers Wan folders, behind one protocol (``base.py``)."""

from __future__ import annotations

from pathlib import Path

from motive_core.errors import ModelNotFoundError
from motive_core.models.base import VideoGeometry, VideoModelAdapter, resolve_device, resolve_dtype
from motive_core.models.demo import CONFIG_NAME, DemoVideoModel
from motive_core.models.wan import WanVideoModel

DEMO_MODEL_DIR = Path(__file__).resolve().parents[2] / "precomputed" / "model"

__all__ = ["VideoGeometry", "VideoModelAdapter", "DemoVideoModel", "WanVideoModel", "load_model", "DEMO_MODEL_DIR"]


def load_model(spec: str | Path, device: str | None = None, dtype: str | None = None,
               gradient_checkpointing: bool | None = None) -> VideoModelAdapter:
    """``"demo"`` → the bundled demo model; a folder → demo or Wan by what it contains. Local files only."""
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    folder = DEMO_MODEL_DIR if str(spec) == "demo" else Path(spec)
    if not folder.is_dir():
        raise ModelNotFoundError(f"model folder {folder.resolve()} does not exist"
                                 + (" (rebuild the demo with `python -m motive_core demo`)" if str(spec) == "demo" else ""))
    if (folder / CONFIG_NAME).is_file():
        return DemoVideoModel.load(folder, torch_device, torch_dtype)
    checkpointing = torch_device.type == "cuda" if gradient_checkpointing is None else gradient_checkpointing
    return WanVideoModel(folder, torch_device, torch_dtype, gradient_checkpointing=checkpointing)
