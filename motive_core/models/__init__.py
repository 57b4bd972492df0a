"""Model adapters: diffusers Wan and LTX-Video folders, and folders that name their own adapter, behind one protocol.

A folder holding ``motive_adapter.json`` (``{"adapter": "package.module:Class"}``) is loaded by that class's
``load(folder, device, dtype)`` and ``read_geometry(folder)``: this is how the demo world's generator plugs in
without the engine importing it. Everything else is read as a diffusers Wan or LTX-Video folder.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from motive_core.errors import ModelNotFoundError
from motive_core.models import ltx
from motive_core.models.base import VideoGeometry, VideoModelAdapter, resolve_device, resolve_dtype
from motive_core.models.folder import transformer_class
from motive_core.models.ltx import LTXVideoModel
from motive_core.models.wan import WanVideoModel, read_geometry

ADAPTER_FILE = "motive_adapter.json"
# folders saved before they declared their adapter, recognised by the config file they carry
LEGACY_ADAPTERS = {"motive_demo.json": "motive_core.demo.model:DemoVideoModel"}

__all__ = ["VideoGeometry", "VideoModelAdapter", "WanVideoModel", "LTXVideoModel", "load_model", "load_geometry",
           "declared_adapter", "ADAPTER_FILE"]


def model_folder(spec: str | Path) -> Path:
    folder = Path(spec)
    if not folder.is_dir():
        raise ModelNotFoundError(f"model folder {folder.resolve()} does not exist")
    return folder


def declared_adapter(folder: Path) -> type | None:
    """The adapter class a folder names in ``motive_adapter.json`` (or by a legacy config file); None if none."""
    path = folder / ADAPTER_FILE
    if path.is_file():
        try:
            name = json.loads(path.read_text())["adapter"]
        except (ValueError, KeyError, TypeError) as err:
            raise ModelNotFoundError(f"{path} must be a JSON object with an \"adapter\": \"module:Class\" entry "
                                     f"({type(err).__name__}: {err})") from None
    else:
        name = next((adapter for marker, adapter in LEGACY_ADAPTERS.items() if (folder / marker).is_file()), None)
        if name is None:
            return None
    module, _, attribute = str(name).partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError, ValueError) as err:
        raise ModelNotFoundError(f"{folder} names the adapter {name!r}, which cannot be imported: "
                                 f"{type(err).__name__}: {err}") from None


def load_geometry(spec: str | Path) -> VideoGeometry:
    """The clip geometry of a model folder, read from its configs without loading any weight."""
    folder = model_folder(spec)
    adapter = declared_adapter(folder)
    if adapter is not None:
        return adapter.read_geometry(folder)
    if transformer_class(folder) == ltx.TRANSFORMER_CLASS:
        return ltx.read_geometry(folder)
    return read_geometry(folder)


def load_model(spec: str | Path, device: str | None = None, dtype: str | None = None,
               gradient_checkpointing: bool | None = None) -> VideoModelAdapter:
    """A local model folder → its declared adapter, or LTX-Video or Wan by what it contains. Local files only."""
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    folder = model_folder(spec)
    adapter = declared_adapter(folder)
    if adapter is not None:
        return adapter.load(folder, torch_device, torch_dtype)
    checkpointing = torch_device.type == "cuda" if gradient_checkpointing is None else gradient_checkpointing
    family = LTXVideoModel if transformer_class(folder) == ltx.TRANSFORMER_CLASS else WanVideoModel
    return family(folder, torch_device, torch_dtype, gradient_checkpointing=checkpointing)
