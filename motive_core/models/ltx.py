"""Adapter for diffusers LTX-Video text-to-video models loaded from a local folder.

Layout (as ``LTXPipeline.save_pretrained`` writes it): ``transformer/`` (``LTXVideoTransformer3DModel``),
``vae/`` (``AutoencoderKLLTXVideo``), ``scheduler/``, ``text_encoder/`` + ``tokenizer/`` (T5; needs the
``transformers`` package), optional ``motive.json`` for the geometry. LTX denoises a token sequence, so
latents are packed into tokens around the transformer (with the pipeline's own pack/unpack), and the
caption conditions through its real tokens only: the pipeline masks the padding in attention, which is
the same as leaving it out. Like Wan it is a flow-matching velocity model, noised by ``flow.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLLTXVideo, LTXVideoTransformer3DModel

from motive_core.errors import ModelNotFoundError
from motive_core.models.base import VideoGeometry
from motive_core.models.flow import attribution_scheduler, folder_scheduler, noising_identity, sampling_scheduler
from motive_core.models.folder import (check_text_encoder, components_hash, geometry_with_override, load_text_encoder,
                                       read_json, require_parts, text_encoder_identity)

TEXT_LENGTH = 128  # LTXPipeline's max_sequence_length
TRANSFORMER_CLASS = "LTXVideoTransformer3DModel"


def _vae_factors(vae: dict) -> tuple[int, int]:
    """(temporal, spatial) compression as AutoencoderKLLTXVideo derives them from its config."""
    scaled = sum(bool(s) for s in vae.get("spatio_temporal_scaling") or (True, True, True, False))
    spatial = vae.get("spatial_compression_ratio") or int(vae.get("patch_size", 4)) * 2 ** scaled
    temporal = vae.get("temporal_compression_ratio") or int(vae.get("patch_size_t", 1)) * 2 ** scaled
    return int(temporal), int(spatial)


def read_geometry(folder: str | Path) -> VideoGeometry:
    """The clip geometry of an LTX-Video folder from its configs alone.

    LTXPipeline's defaults are 161 frames at 25 fps, 512×704; ``motive.json`` may override them. Sides must
    be multiples of the VAE's spatial factor × patch (32 for LTX-Video), frames 1 + a multiple of 8.
    """
    folder = Path(folder)
    require_parts(folder, "LTX-Video")
    temporal, spatial = _vae_factors(read_json(folder / "vae" / "config.json"))
    transformer = read_json(folder / "transformer" / "config.json")
    base = VideoGeometry(161, 25.0, 512, 704, temporal, spatial, True)
    return geometry_with_override(folder, base, spatial * int(transformer.get("patch_size", 1)),
                                  temporal * int(transformer.get("patch_size_t", 1)))


class LTXVideoModel:
    """``VideoModelAdapter`` for a diffusers-layout LTX-Video folder."""

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 geometry: VideoGeometry | None = None, gradient_checkpointing: bool = False):
        self.folder = Path(folder)
        self.geometry = geometry or read_geometry(self.folder)
        config = read_json(self.folder / "transformer" / "config.json")
        check_text_encoder(self.folder, int(config.get("caption_channels", 4096)), "caption_channels")
        self.device, self.dtype = torch.device(device), dtype
        self.transformer = LTXVideoTransformer3DModel.from_pretrained(
            self.folder / "transformer", local_files_only=True, torch_dtype=dtype).to(self.device)
        self.vae = AutoencoderKLLTXVideo.from_pretrained(self.folder / "vae", local_files_only=True).to(
            self.device, torch.float32)
        self.vae.requires_grad_(False)
        self.scheduler = attribution_scheduler()
        if gradient_checkpointing:
            self.transformer.enable_gradient_checkpointing()
        self._text = None
        self._identity: dict | None = None

    def identity(self) -> dict:
        """Transformer and VAE files, text encoder and tokenizer files, and the noising schedule (no names)."""
        if self._identity is None:
            text = (text_encoder_identity(self.folder, TEXT_LENGTH, "none")
                    if (self.folder / "text_encoder").is_dir() else {"source": "none"})
            self._identity = {"name": "ltx-video", "weight_hash": components_hash(self.folder, ["transformer", "vae"]),
                              "text": text, "noising": noising_identity(self.scheduler)}
        return self._identity

    def generation_scheduler(self, steps: int, shift: float | None = None):
        """The folder's scheduler with LTXPipeline's timesteps: sigmas 1 → 1/steps, shifted by sequence length."""
        base = folder_scheduler(self.folder / "scheduler") or attribution_scheduler()
        config = base.config
        options = {}
        if config.get("use_dynamic_shifting"):
            from diffusers.pipelines.ltx.pipeline_ltx import calculate_shift

            _, _, frames, height, width = self.latent_shape()
            options["mu"] = calculate_shift(frames * height * width, config.get("base_image_seq_len", 256),
                                            config.get("max_image_seq_len", 4096), config.get("base_shift", 0.5),
                                            config.get("max_shift", 1.15))
        options["sigmas"] = np.linspace(1.0, 1 / steps, steps)
        return sampling_scheduler(base, None, self.device, shift, **options)

    def denoiser(self, timestep: float = 1000.0) -> torch.nn.Module:
        return self.transformer

    def latent_shape(self) -> tuple[int, ...]:
        t, h, w = self.geometry.latent_grid()
        return (1, int(self.transformer.config.in_channels), t, h, w)

    def _stats(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        shape = (1, -1, 1, 1, 1)
        return (self.vae.latents_mean.view(shape), self.vae.latents_std.view(shape),
                float(self.vae.config.scaling_factor))

    @torch.no_grad()
    def encode(self, frames: np.ndarray) -> torch.Tensor:
        pixels = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device, torch.float32)
        pixels = pixels.permute(3, 0, 1, 2).unsqueeze(0) / 127.5 - 1.0
        latents = self.vae.encode(pixels).latent_dist.mode()
        mean, std, scale = self._stats()
        return ((latents - mean) * scale / std).to(self.dtype)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        mean, std, scale = self._stats()
        latents = latents.float() * std / scale + mean
        timestep = torch.zeros(1, device=self.device) if self.vae.config.timestep_conditioning else None
        pixels = self.vae.decode(latents, timestep, return_dict=False)[0]
        pixels = ((pixels[0].clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
        return pixels.permute(1, 2, 3, 0).cpu().numpy()

    def encode_prompt(self, prompt: str) -> torch.Tensor:
        """(1, L, caption_channels): T5 over the caption padded to 128 tokens as LTXPipeline runs it, keeping
        the caption's own L tokens (the padding is masked out in the transformer's attention)."""
        if not (self.folder / "text_encoder").is_dir():
            raise ModelNotFoundError(f"{self.folder / 'text_encoder'} is absent: LTX-Video folders need their "
                                     "text encoder and tokenizer")
        if self._text is None:
            self._text = load_text_encoder(self.folder, "T5EncoderModel", self.dtype, self.device)
        tokenizer, encoder = self._text
        tokens = tokenizer([prompt], padding="max_length", max_length=TEXT_LENGTH, truncation=True,
                           add_special_tokens=True, return_tensors="pt")
        with torch.no_grad():
            hidden = encoder(tokens.input_ids.to(self.device))[0]
        return hidden[:, : int(tokens.attention_mask.sum())]

    def predict(self, noisy: torch.Tensor, timestep: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        from diffusers.pipelines.ltx.pipeline_ltx import LTXPipeline

        config = self.transformer.config
        _, _, frames, height, width = noisy.shape
        tokens = LTXPipeline._pack_latents(noisy, config.patch_size, config.patch_size_t)
        g = self.geometry
        velocity = self.transformer(
            hidden_states=tokens, encoder_hidden_states=condition, timestep=timestep,
            encoder_attention_mask=torch.ones(condition.shape[:2], dtype=torch.long, device=condition.device),
            num_frames=frames, height=height, width=width,
            rope_interpolation_scale=(g.temporal_factor / g.fps, g.spatial_factor, g.spatial_factor),
            return_dict=False)[0]
        return LTXPipeline._unpack_latents(velocity, frames, height, width, config.patch_size, config.patch_size_t)
