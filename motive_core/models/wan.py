"""Adapter for diffusers Wan 2.1 / 2.2 text-to-video models loaded from a local folder.

Layout (diffusers): ``transformer/`` (``WanTransformer3DModel``), ``vae/`` (``AutoencoderKLWan``), optional
``transformer_2/`` (Wan 2.2's low-noise expert) and ``text_encoder/`` + ``tokenizer/`` (umT5; needs the
``transformers`` package). Without a text encoder, caption embeddings come precomputed from
``prompt_embeds.safetensors`` (see :func:`save_prompt_embeddings`). Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from safetensors.torch import load_file, save_file

from motive_core.errors import ModelNotFoundError
from motive_core.models.base import VideoGeometry, hash_state_dict, model_folder_hint
from motive_core.models.flow import attribution_scheduler

PROMPT_EMBEDS = "prompt_embeds.safetensors"
GEOMETRY_FILE = "motive.json"


def prompt_key(prompt: str) -> str:
    return hashlib.sha1(prompt.encode("utf-8")).hexdigest()


def save_prompt_embeddings(path: str | Path, embeddings: dict[str, torch.Tensor]) -> Path:
    """Store caption embeddings (each (L, text_dim)) keyed by the caption, for models without a text encoder."""
    path = Path(path)
    existing = load_file(path) if path.exists() else {}
    existing.update({prompt_key(p): e.detach().to("cpu", torch.float32).contiguous() for p, e in embeddings.items()})
    tmp = path.with_suffix(".tmp")
    save_file(existing, tmp)
    tmp.replace(path)
    return path


def default_geometry(vae: AutoencoderKLWan) -> VideoGeometry:
    """Wan 2.1 trains at 81 frames, 16 fps, 480×832; Wan 2.2 TI2V-5B (16× VAE) at 121 frames, 24 fps, 704×1280."""
    temporal = int(vae.config.scale_factor_temporal or 4)
    spatial = int(vae.config.scale_factor_spatial or 8)
    if spatial == 16:
        return VideoGeometry(121, 24.0, 704, 1280, temporal, spatial, True)
    return VideoGeometry(81, 16.0, 480, 832, temporal, spatial, True)


class WanVideoModel:
    """``VideoModelAdapter`` for a diffusers-layout Wan folder."""

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 geometry: VideoGeometry | None = None, gradient_checkpointing: bool = False):
        self.folder = Path(folder)
        for part in ("transformer", "vae"):
            if not (self.folder / part / "config.json").is_file():
                raise ModelNotFoundError(
                    f"{self.folder} is not a diffusers Wan folder: missing {part}/config.json "
                    f"({model_folder_hint(self.folder / part)})")
        self.device, self.dtype = torch.device(device), dtype
        self.transformer = self._load_transformer("transformer")
        self.transformer_2 = self._load_transformer("transformer_2") if (self.folder / "transformer_2").is_dir() else None
        self.vae = AutoencoderKLWan.from_pretrained(self.folder / "vae", local_files_only=True).to(self.device, torch.float32)
        self.vae.requires_grad_(False)
        self.geometry = geometry or self._geometry_from_folder()
        self.scheduler = attribution_scheduler()
        self.boundary_ratio = json.loads((self.folder / "model_index.json").read_text()).get("boundary_ratio") \
            if (self.folder / "model_index.json").is_file() else None
        if gradient_checkpointing:
            for model in filter(None, (self.transformer, self.transformer_2)):
                model.enable_gradient_checkpointing()
        self._text = None
        self._identity: dict | None = None

    def _load_transformer(self, name: str) -> WanTransformer3DModel:
        model = WanTransformer3DModel.from_pretrained(self.folder / name, local_files_only=True, torch_dtype=self.dtype)
        return model.to(self.device)

    def _geometry_from_folder(self) -> VideoGeometry:
        override = self.folder / GEOMETRY_FILE
        base = default_geometry(self.vae)
        if override.is_file():
            return VideoGeometry(**{**base.to_dict(), **json.loads(override.read_text())})
        return base

    def identity(self) -> dict:
        if self._identity is None:
            modules = {"transformer": self.transformer, "vae": self.vae}
            if self.transformer_2 is not None:
                modules["transformer_2"] = self.transformer_2
            self._identity = {"name": f"wan:{self.folder.name}", "weight_hash": hash_state_dict(modules)}
        return self._identity

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
        embeds_path = self.folder / PROMPT_EMBEDS
        if embeds_path.is_file():
            store = load_file(embeds_path)
            if prompt_key(prompt) in store:
                return store[prompt_key(prompt)].unsqueeze(0).to(self.device, self.dtype)
        return self._text_encoder_embed(prompt, embeds_path)

    def _text_encoder_embed(self, prompt: str, embeds_path: Path) -> torch.Tensor:
        if not (self.folder / "text_encoder").is_dir():
            raise ModelNotFoundError(
                f"no embedding for the caption {prompt!r}: {self.folder / 'text_encoder'} is absent and "
                f"{embeds_path} has no entry for it; precompute it with "
                "motive_core.models.wan.save_prompt_embeddings on a machine with the text encoder")
        try:
            from transformers import AutoTokenizer, UMT5EncoderModel
        except ImportError as err:
            raise ModelNotFoundError(
                f"{self.folder / 'text_encoder'} needs the `transformers` package (pip install transformers)") from err
        if self._text is None:
            tokenizer = AutoTokenizer.from_pretrained(self.folder / "tokenizer", local_files_only=True)
            encoder = UMT5EncoderModel.from_pretrained(self.folder / "text_encoder", local_files_only=True,
                                                       torch_dtype=self.dtype).to(self.device)
            self._text = (tokenizer, encoder)
        tokenizer, encoder = self._text
        tokens = tokenizer([prompt], padding="max_length", max_length=512, truncation=True, return_tensors="pt")
        with torch.no_grad():
            hidden = encoder(tokens.input_ids.to(self.device), tokens.attention_mask.to(self.device)).last_hidden_state
        return hidden * tokens.attention_mask.to(self.device).unsqueeze(-1).to(hidden.dtype)

    def predict(self, noisy: torch.Tensor, timestep: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        expert = self._expert(float(timestep.flatten()[0]))
        return expert(noisy, timestep, condition, return_dict=False)[0]
