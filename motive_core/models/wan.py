"""Adapter for diffusers Wan 2.1 / 2.2 text-to-video models loaded from a local folder.

Layout (as ``WanPipeline.save_pretrained`` writes it): ``transformer/`` (``WanTransformer3DModel``),
``vae/`` (``AutoencoderKLWan``), optional ``transformer_2/`` (Wan 2.2's low-noise expert, chosen below
``boundary_ratio`` · 1000 from ``model_index.json``), ``scheduler/`` (used for generation) and
``text_encoder/`` + ``tokenizer/`` (umT5; needs the ``transformers`` package). Without a text encoder,
caption embeddings come precomputed from ``prompt_embeds.safetensors`` (see :func:`save_prompt_embeddings`).
An optional ``motive.json`` sets the clip geometry. Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import html
import importlib.util
from pathlib import Path

import numpy as np
import regex
import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from motive_core.errors import ModelNotFoundError, MotiveError
from motive_core.models.base import VideoGeometry
from motive_core.models.flow import attribution_scheduler, folder_scheduler, noising_identity, sampling_scheduler
from motive_core.models.folder import (check_text_encoder, components_hash, geometry_with_override, load_text_encoder,
                                       read_json, require_parts, text_encoder_identity)

PROMPT_EMBEDS = "prompt_embeds.safetensors"
TEXT_LENGTH = 512  # WanPipeline's max_sequence_length: captions are padded with zeros to 512 tokens


# ------------------------------------------------------------------------------------------ captions


def clean_caption(text: str) -> str:
    """The caption as WanPipeline encodes it (its ``prompt_clean``): ftfy's fix_text when ftfy is installed,
    HTML entities unescaped twice, whitespace runs collapsed, ends stripped."""
    if importlib.util.find_spec("ftfy") is not None:
        import ftfy

        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return regex.sub(r"\s+", " ", text).strip()


def caption_cleaning() -> str:
    """Which cleaning :func:`clean_caption` applies here (ftfy changes some captions' tokens)."""
    return "ftfy+html+whitespace" if importlib.util.find_spec("ftfy") is not None else "html+whitespace"


def prompt_key(prompt: str) -> str:
    """Stored embeddings are keyed by the cleaned caption, so "a &amp; b" finds the embedding of "a & b"."""
    return hashlib.sha1(clean_caption(prompt).encode("utf-8")).hexdigest()


def _embeddings_metadata(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata() or {}


def save_prompt_embeddings(path: str | Path, embeddings: dict[str, torch.Tensor], source: str = "unrecorded") -> Path:
    """Store caption embeddings (each (L, text_dim), zero-padded as the pipeline pads) keyed by the caption.

    ``source`` names the text encoder that produced them (e.g. :meth:`WanVideoModel.text_source` of the
    folder that has it); it and the common length L are written into the file and become part of the
    model identity. Adding embeddings from another source or of another length is refused.
    """
    path = Path(path)
    existing = load_file(path) if path.exists() else {}
    meta = _embeddings_metadata(path) if path.exists() else {"source": source}
    if meta.get("source") != source:
        raise MotiveError(f"{path} holds embeddings from {meta.get('source')!r}; these come from {source!r}: "
                          "write them to another file")
    tensors = {prompt_key(p): e.detach().to("cpu", torch.float32).contiguous() for p, e in embeddings.items()}
    shapes = {tuple(t.shape) for t in (*existing.values(), *tensors.values())}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise MotiveError(f"caption embeddings in {path} must all be (L, text_dim) of one shape, got {sorted(shapes)}")
    length, dim = next(iter(shapes))
    existing.update(tensors)
    tmp = path.with_suffix(".tmp")
    save_file(existing, tmp, metadata={"source": source, "length": str(length), "dim": str(dim),
                                       "cleaning": caption_cleaning()})
    tmp.replace(path)
    return path


# ------------------------------------------------------------------------------------------ folder checks


def read_geometry(folder: str | Path) -> VideoGeometry:
    """The clip geometry of a Wan folder from its configs alone (no weights are loaded).

    Wan 2.1 trains at 81 frames, 16 fps, 480×832; Wan 2.2 TI2V-5B (16× VAE) at 121 frames, 24 fps,
    704×1280; ``motive.json`` may override any of num_frames, fps, height, width. Height and width must be
    multiples of the VAE's spatial factor × the transformer's patch, and frames 1 + a multiple of its
    temporal factor.
    """
    folder = Path(folder)
    require_parts(folder, "Wan")
    vae = read_json(folder / "vae" / "config.json")
    patch = list(read_json(folder / "transformer" / "config.json").get("patch_size") or (1, 2, 2))
    temporal = int(vae.get("scale_factor_temporal") or 4)
    spatial = int(vae.get("scale_factor_spatial") or 8)
    base = (VideoGeometry(121, 24.0, 704, 1280, temporal, spatial, True) if spatial == 16
            else VideoGeometry(81, 16.0, 480, 832, temporal, spatial, True))
    return geometry_with_override(folder, base, spatial * int(patch[-1]), temporal * int(patch[0]))


def _check_text_parts(folder: Path, text_dim: int) -> None:
    """Refuse a text encoder or stored embeddings that cannot condition this transformer, before any weight is read."""
    check_text_encoder(folder, text_dim)
    if not (folder / "text_encoder").is_dir() and (folder / PROMPT_EMBEDS).is_file():
        dim = _embeddings_metadata(folder / PROMPT_EMBEDS).get("dim")
        if dim is not None and int(dim) != text_dim:
            raise ModelNotFoundError(f"{folder / PROMPT_EMBEDS} holds {dim}-dimensional embeddings but the "
                                     f"transformer expects text_dim {text_dim}")


# ------------------------------------------------------------------------------------------ the adapter


class WanVideoModel:
    """``VideoModelAdapter`` for a diffusers-layout Wan folder."""

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 geometry: VideoGeometry | None = None, gradient_checkpointing: bool = False):
        self.folder = Path(folder)
        self.geometry = geometry or read_geometry(self.folder)
        text_dim = int(read_json(self.folder / "transformer" / "config.json").get("text_dim", 4096))
        _check_text_parts(self.folder, text_dim)
        index_path = self.folder / "model_index.json"
        self.boundary_ratio = read_json(index_path).get("boundary_ratio") if index_path.is_file() else None
        self.device, self.dtype = torch.device(device), dtype
        self.transformer = self._load_transformer("transformer")
        self.transformer_2 = self._load_transformer("transformer_2") if (self.folder / "transformer_2").is_dir() else None
        self.vae = AutoencoderKLWan.from_pretrained(self.folder / "vae", local_files_only=True).to(self.device, torch.float32)
        self.vae.requires_grad_(False)
        self.scheduler = attribution_scheduler()
        if gradient_checkpointing:
            for model in filter(None, (self.transformer, self.transformer_2)):
                model.enable_gradient_checkpointing()
        self._text = None
        self._identity: dict | None = None

    def _load_transformer(self, name: str) -> WanTransformer3DModel:
        model = WanTransformer3DModel.from_pretrained(self.folder / name, local_files_only=True, torch_dtype=self.dtype)
        return model.to(self.device)

    def text_source(self) -> dict:
        """What turns a caption into conditioning, as hashes of the files that do it (never folder names)."""
        if (self.folder / "text_encoder").is_dir():
            return text_encoder_identity(self.folder, TEXT_LENGTH, caption_cleaning())
        if (self.folder / PROMPT_EMBEDS).is_file():
            meta = _embeddings_metadata(self.folder / PROMPT_EMBEDS)
            return {"source": "prompt_embeds", "encoder": meta.get("source", "unrecorded"),
                    "length": int(meta["length"]) if "length" in meta else None,
                    "cleaning": meta.get("cleaning", "unrecorded")}
        return {"source": "none"}

    def identity(self) -> dict:
        """Everything about the folder that changes a vector: denoiser and VAE weights, the expert boundary,
        the text conditioning and the noising schedule. Hashes come from the files (cached beside them)."""
        if self._identity is None:
            parts = ["transformer", "vae"] + (["transformer_2"] if self.transformer_2 is not None else [])
            self._identity = {"name": "wan", "weight_hash": components_hash(self.folder, parts),
                              "boundary_ratio": self.boundary_ratio, "text": self.text_source(),
                              "noising": noising_identity(self.scheduler)}
        return self._identity

    def generation_scheduler(self, steps: int, shift: float | None = None):
        """The folder's own ``scheduler/`` with ``steps`` timesteps (as WanPipeline samples), else Euler at shift 3."""
        base = folder_scheduler(self.folder / "scheduler") or attribution_scheduler()
        return sampling_scheduler(base, steps, self.device, shift)

    def _expert(self, timestep: float) -> WanTransformer3DModel:
        """Wan 2.2 MoE: the high-noise expert for t ≥ boundary·1000, the low-noise one below."""
        if self.transformer_2 is None or self.boundary_ratio is None:
            return self.transformer
        return self.transformer if timestep >= self.boundary_ratio * 1000 else self.transformer_2

    def denoiser(self, timestep: float = 1000.0) -> torch.nn.Module:
        return self._expert(timestep)

    def latent_shape(self) -> tuple[int, ...]:
        t, h, w = self.geometry.latent_grid()
        return (1, int(self.transformer.config.in_channels), t, h, w)

    def _latent_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, -1, 1, 1, 1)
        mean = torch.tensor(self.vae.config.latents_mean, device=self.device).view(shape)
        std = torch.tensor(self.vae.config.latents_std, device=self.device).view(shape)
        return mean, std

    @torch.no_grad()
    def encode(self, frames: np.ndarray) -> torch.Tensor:
        pixels = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device, torch.float32)
        pixels = pixels.permute(3, 0, 1, 2).unsqueeze(0) / 127.5 - 1.0
        latents = self.vae.encode(pixels).latent_dist.mode()
        mean, std = self._latent_stats()
        return ((latents - mean) / std).to(self.dtype)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        mean, std = self._latent_stats()
        pixels = self.vae.decode(latents.float() * std + mean).sample
        pixels = ((pixels[0].clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
        return pixels.permute(1, 2, 3, 0).cpu().numpy()

    def encode_prompt(self, prompt: str) -> torch.Tensor:
        """(1, L, text_dim): the text encoder when the folder has one (exactly as WanPipeline.encode_prompt),
        else the stored embedding of the cleaned caption."""
        if (self.folder / "text_encoder").is_dir():
            return self._text_encoder_embed(prompt)
        embeds_path = self.folder / PROMPT_EMBEDS
        if embeds_path.is_file():
            store = load_file(embeds_path)
            if prompt_key(prompt) in store:
                return store[prompt_key(prompt)].unsqueeze(0).to(self.device, self.dtype)
        raise ModelNotFoundError(
            f"no embedding for the caption {prompt!r}: {self.folder / 'text_encoder'} is absent and "
            f"{embeds_path} has no entry for it; precompute it with "
            "motive_core.models.wan.save_prompt_embeddings on a machine with the text encoder")

    def _text_encoder_embed(self, prompt: str) -> torch.Tensor:
        if self._text is None:
            self._text = load_text_encoder(self.folder, "UMT5EncoderModel", self.dtype, self.device)
        tokenizer, encoder = self._text
        tokens = tokenizer([clean_caption(prompt)], padding="max_length", max_length=TEXT_LENGTH, truncation=True,
                           add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
        mask = tokens.attention_mask.to(self.device)
        with torch.no_grad():
            hidden = encoder(tokens.input_ids.to(self.device), mask).last_hidden_state
        return hidden * mask.unsqueeze(-1).to(hidden.dtype)

    def predict(self, noisy: torch.Tensor, timestep: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        expert = self._expert(float(timestep.flatten()[0]))
        return expert(noisy, timestep, condition, return_dict=False)[0]
