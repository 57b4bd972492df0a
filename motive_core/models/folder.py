"""What every diffusers-layout model folder shares: reading its configs, checking its geometry, and hashing
the components that change a vector (never the folder's name)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from motive_core.errors import ModelNotFoundError, MotiveError
from motive_core.models.base import VideoGeometry, model_folder_hint
from motive_core.models.weights import folder_hash

GEOMETRY_FILE = "motive.json"
GEOMETRY_KEYS = ("num_frames", "fps", "height", "width")


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ModelNotFoundError(f"{path} is not valid JSON ({err})") from err


def require_parts(folder: Path, family: str, parts: tuple[str, ...] = ("transformer", "vae")) -> None:
    """Refuse a folder that lacks a component's config, saying where we looked."""
    if not folder.is_dir():
        raise ModelNotFoundError(f"model folder {folder.resolve()} does not exist")
    for part in parts:
        if not (folder / part / "config.json").is_file():
            raise ModelNotFoundError(f"{folder} is not a diffusers {family} folder: missing {part}/config.json "
                                     f"({model_folder_hint(folder / part)})")


def transformer_class(folder: Path) -> str:
    """The ``_class_name`` diffusers saved for ``transformer/`` (how a folder's family is told apart)."""
    path = Path(folder) / "transformer" / "config.json"
    return read_json(path).get("_class_name", "") if path.is_file() else ""


def geometry_with_override(folder: Path, base: VideoGeometry, spatial_step: int, temporal_factor: int) -> VideoGeometry:
    """``base`` with ``motive.json``'s keys applied, refused unless the VAE and patch can divide it.

    ``spatial_step`` is VAE factor × patch; frames must be 1 + a multiple of ``temporal_factor``.
    """
    override_path = folder / GEOMETRY_FILE
    override = read_json(override_path) if override_path.is_file() else {}
    unknown = sorted(set(override) - set(GEOMETRY_KEYS))
    if unknown:
        raise MotiveError(f"{override_path} has unknown key(s) {', '.join(unknown)}: it may set only "
                          f"{', '.join(GEOMETRY_KEYS)}")
    geometry = VideoGeometry(**{**base.to_dict(), **override})
    for side, name in ((geometry.height, "height"), (geometry.width, "width")):
        if side % spatial_step:
            raise MotiveError(f"{name} {side} of {folder} is not a multiple of {spatial_step} (VAE factor "
                              f"{base.spatial_factor} × patch {spatial_step // base.spatial_factor}): set {name} "
                              f"in {override_path} to a multiple of {spatial_step}")
    if (geometry.num_frames - 1) % temporal_factor:
        raise MotiveError(f"num_frames {geometry.num_frames} of {folder} does not fit the VAE: it must be "
                          f"1 + a multiple of {temporal_factor} (e.g. {4 * temporal_factor + 1}); set num_frames "
                          f"in {override_path}")
    return geometry


def components_hash(folder: Path, parts: list[str]) -> str:
    """One short hash over the files of the named components (cached per file beside the weights)."""
    digest = hashlib.sha256("".join(f"{part}:{folder_hash(folder / part)};" for part in parts).encode())
    return digest.hexdigest()[:16]


def text_encoder_identity(folder: Path, length: int, cleaning: str) -> dict:
    """The text conditioning of a folder with ``text_encoder/`` + ``tokenizer/``, as file hashes."""
    return {"source": "text_encoder", "encoder": folder_hash(folder / "text_encoder"),
            "tokenizer": folder_hash(folder / "tokenizer"), "length": length, "cleaning": cleaning}


def check_text_encoder(folder: Path, text_dim: int, dim_name: str = "text_dim", width_key: str = "d_model") -> None:
    """Refuse ``text_encoder/`` without ``tokenizer/``, or one whose width is not the transformer's."""
    encoder, tokenizer = folder / "text_encoder", folder / "tokenizer"
    if not encoder.is_dir():
        return
    if not tokenizer.is_dir():
        raise ModelNotFoundError(f"{encoder} has no tokenizer beside it: the caption cannot be tokenized "
                                 f"({model_folder_hint(tokenizer)}); copy the tokenizer/ folder that came "
                                 "with the text encoder")
    config = encoder / "config.json"
    width = read_json(config).get(width_key) if config.is_file() else None
    if width is not None and int(width) != text_dim:
        raise ModelNotFoundError(f"{encoder} produces {width}-dimensional embeddings but the transformer "
                                 f"expects {dim_name} {text_dim}: the text encoder belongs to another model")


def load_text_encoder(folder: Path, encoder_class: str, dtype, device) -> tuple:
    """The folder's ``tokenizer/`` and ``text_encoder/`` (a transformers ``encoder_class``), from local files only."""
    try:
        import transformers
    except ImportError as err:
        raise ModelNotFoundError(
            f"{folder / 'text_encoder'} needs the `transformers` package (pip install transformers)") from err
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
    encoder = getattr(transformers, encoder_class).from_pretrained(folder / "text_encoder", local_files_only=True,
                                                                   torch_dtype=dtype).to(device)
    return tokenizer, encoder
