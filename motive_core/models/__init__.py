"""Model adapters: the demo generator and diffusers Wan and LTX-Video folders, behind one protocol (``base.py``)."""

from __future__ import annotations

import json
from pathlib import Path

from motive_core.errors import ModelNotFoundError
from motive_core.models.base import VideoGeometry, VideoModelAdapter, resolve_device, resolve_dtype
from motive_core.models.demo import CONFIG_NAME, DemoModelConfig, DemoVideoModel
from motive_core.models import ltx
from motive_core.models.folder import transformer_class
from motive_core.models.ltx import LTXVideoModel
from motive_core.models.wan import WanVideoModel, read_geometry

DEMO_MODEL_DIR = Path(__file__).resolve().parents[2] / "precomputed" / "model"

__all__ = ["VideoGeometry", "VideoModelAdapter", "DemoVideoModel", "WanVideoModel", "LTXVideoModel", "load_model",
           "load_geometry", "DEMO_MODEL_DIR"]


def _model_folder(spec: str | Path) -> Path:
    folder = DEMO_MODEL_DIR if str(spec) == "demo" else Path(spec)
    if not folder.is_dir():
        raise ModelNotFoundError(f"model folder {folder.resolve()} does not exist"
                                 + (" (rebuild the demo with `python -m motive_core demo`)" if str(spec) == "demo" else ""))
    return folder


def load_geometry(spec: str | Path) -> VideoGeometry:
    """The clip geometry of ``"demo"`` or a model folder, read from its configs without loading any weight."""
    folder = _model_folder(spec)
    if (folder / CONFIG_NAME).is_file():
        return DemoModelConfig.from_dict(json.loads((folder / CONFIG_NAME).read_text())).geometry
    if transformer_class(folder) == ltx.TRANSFORMER_CLASS:
        return ltx.read_geometry(folder)
    return read_geometry(folder)


def load_model(spec: str | Path, device: str | None = None, dtype: str | None = None,
               gradient_checkpointing: bool | None = None) -> VideoModelAdapter:
    """``"demo"`` → the bundled demo model; a folder → demo, LTX-Video or Wan by what it contains. Local files only."""
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    folder = _model_folder(spec)
    if (folder / CONFIG_NAME).is_file():
        return DemoVideoModel.load(folder, torch_device, torch_dtype)
    checkpointing = torch_device.type == "cuda" if gradient_checkpointing is None else gradient_checkpointing
    family = LTXVideoModel if transformer_class(folder) == ltx.TRANSFORMER_CLASS else WanVideoModel
    return family(folder, torch_device, torch_dtype, gradient_checkpointing=checkpointing)
