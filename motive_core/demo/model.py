"""The bundled demo generator: a small pixel-space ``WanTransformer3DModel`` conditioned on captions.

No pretrained model can be downloaded here, so the demo world ships its own: a word-embedding text
encoder over the MotionShapes caption vocabulary (unknown words map to ``<unk>``) and a diffusers Wan
transformer that denoises pixels directly (temporal and spatial factors 1). It satisfies the same
``VideoModelAdapter`` protocol as real Wan models.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, WanTransformer3DModel
from safetensors.torch import load_file, save_file

from motive_core.errors import ModelNotFoundError, MotiveError
from motive_core.models import ADAPTER_FILE
from motive_core.models.base import VideoGeometry, hash_state_dict, model_folder_hint
from motive_core.models.flow import attribution_scheduler, sampling_scheduler

CONFIG_NAME = "motive_demo.json"
PAD, UNK = "<pad>", "<unk>"
PREDICTIONS = ("velocity", "sample")
MIN_SIGMA = 1e-3  # guards (x_σ − x̂₀)/σ; the sampler's smallest σ at shift 3 is ~3e-3
TRAIN_MIN_SIGMA = 0.05  # training floors σ higher, so the loss weight 1/σ² stays ≤ 400 (as Li & He do)


def tokenize(text: str) -> list[str]:
    """Lower-case words; punctuation dropped."""
    return re.findall(r"[a-z]+", text.lower())


@dataclass
class DemoModelConfig:
    """Everything needed to rebuild the demo model; saved as ``motive_demo.json``."""

    geometry: VideoGeometry
    vocab: list[str]
    text_dim: int = 64
    max_words: int = 12
    transformer: dict = field(default_factory=dict)
    prediction: str = "velocity"  # what the transformer outputs: "velocity" (ε − x₀) or "sample" (x₀)
    coordinates: bool = False  # append (frame, row, column) planes to the input: see ``with_coordinates``

    def to_dict(self) -> dict:
        data = asdict(self)
        data["geometry"] = self.geometry.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "DemoModelConfig":
        return cls(**{**data, "geometry": VideoGeometry(**data["geometry"])})


class WordEmbeddingEncoder(torch.nn.Module):
    """Caption → (1, max_words, text_dim): one learned vector per known word, zeros for padding."""

    def __init__(self, vocab: list[str], text_dim: int, max_words: int):
        super().__init__()
        self.vocab = [PAD, UNK] + [w for w in vocab if w not in (PAD, UNK)]
        self.word_ids = {word: i for i, word in enumerate(self.vocab)}
        self.max_words = max_words
        self.embedding = torch.nn.Embedding(len(self.vocab), text_dim, padding_idx=0)

    def ids(self, text: str) -> list[int]:
        words = tokenize(text)[: self.max_words]
        ids = [self.word_ids.get(word, 1) for word in words]
        return ids + [0] * (self.max_words - len(ids))

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(token_ids)


def default_transformer_config() -> dict:
    """A ~1M-parameter Wan transformer over 4×4 pixel patches."""
    return dict(
        patch_size=(1, 4, 4), num_attention_heads=4, attention_head_dim=32, in_channels=3, out_channels=3,
        text_dim=64, freq_dim=64, ffn_dim=256, num_layers=4, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=64,
    )


COORDINATE_AXES = ("frame", "row", "column")


def with_coordinates(pixels: torch.Tensor) -> torch.Tensor:
    """``pixels`` (B, C, T, H, W) with one plane per axis of ``COORDINATE_AXES`` appended, each running −1 → 1.

    Wan locates tokens only by rotary embeddings, which tell attention how far apart two tokens are but
    not where either one is. From pure noise (σ ≈ 1, where sampling starts) nothing else says which frame
    a token belongs to, so a small model cannot draw the caption's mean trajectory (a falling object's
    first frames high, its last frames low) and generates the object in place. These planes say it.
    """
    batch, _, frames, height, width = pixels.shape
    axes = [torch.linspace(-1.0, 1.0, n, device=pixels.device, dtype=pixels.dtype) for n in (frames, height, width)]
    planes = torch.stack(torch.meshgrid(*axes, indexing="ij")).expand(batch, -1, -1, -1, -1)
    return torch.cat([pixels, planes], dim=1)


class DemoVideoModel:
    """``VideoModelAdapter`` for the demo generator (pixel space, values in [-1, 1])."""

    def __init__(self, config: DemoModelConfig, transformer: WanTransformer3DModel,
                 text_encoder: WordEmbeddingEncoder, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        self.config = config
        self.geometry = config.geometry
        self.device = torch.device(device)
        self.dtype = dtype
        self.transformer = transformer.to(self.device) if dtype == torch.float32 else transformer.to(self.device, dtype)
        self.text_encoder = text_encoder.to(self.device, dtype)
        self.scheduler = attribution_scheduler()

    @classmethod
    def create(cls, vocab: list[str], geometry: VideoGeometry, seed: int = 0,
               transformer: dict | None = None, text_dim: int = 64, prediction: str = "velocity",
               coordinates: bool = False) -> "DemoVideoModel":
        """A freshly initialised (untrained) model, deterministic from ``seed``."""
        if prediction not in PREDICTIONS:
            raise MotiveError(f"prediction must be one of {', '.join(PREDICTIONS)} (got {prediction!r})")
        torch.manual_seed(seed)
        kwargs = {**default_transformer_config(), **(transformer or {}), "text_dim": text_dim}
        kwargs["in_channels"] = kwargs["out_channels"] + (len(COORDINATE_AXES) if coordinates else 0)
        config = DemoModelConfig(geometry=geometry, vocab=sorted(set(vocab)), text_dim=text_dim, transformer=kwargs,
                                 prediction=prediction, coordinates=coordinates)
        return cls(config, WanTransformer3DModel(**kwargs),
                   WordEmbeddingEncoder(config.vocab, text_dim, config.max_words))

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu",
             dtype: torch.dtype = torch.float32) -> "DemoVideoModel":
        folder = Path(folder)
        config_path = folder / CONFIG_NAME
        if not config_path.is_file():
            raise ModelNotFoundError(
                f"no demo model at {folder}: {model_folder_hint(config_path)} "
                "(rebuild it with `python -m motive_core demo`)")
        config = DemoModelConfig.from_dict(json.loads(config_path.read_text()))
        transformer = WanTransformer3DModel.from_pretrained(folder / "transformer", local_files_only=True)
        encoder = WordEmbeddingEncoder(config.vocab, config.text_dim, config.max_words)
        encoder.load_state_dict(load_file(folder / "text_encoder.safetensors"))
        return cls(config, transformer, encoder, device, dtype)

    @classmethod
    def read_geometry(cls, folder: str | Path) -> VideoGeometry:
        """The clip geometry from ``motive_demo.json`` alone, without loading a weight."""
        return DemoModelConfig.from_dict(json.loads((Path(folder) / CONFIG_NAME).read_text())).geometry

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.transformer.save_pretrained(folder / "transformer", safe_serialization=True)
        # diffusers records where a loaded model came from; a saved model must not carry this machine's path
        transformer_config = folder / "transformer" / "config.json"
        saved = json.loads(transformer_config.read_text())
        if saved.pop("_name_or_path", None) is not None:
            transformer_config.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
        save_file({k: v.contiguous().cpu() for k, v in self.text_encoder.state_dict().items()},
                  folder / "text_encoder.safetensors")
        (folder / CONFIG_NAME).write_text(json.dumps(self.config.to_dict(), indent=2))
        (folder / ADAPTER_FILE).write_text(json.dumps({"adapter": f"{__name__}:{type(self).__name__}"}) + "\n")
        return folder

    def identity(self) -> dict:
        """Hashed afresh each time (the model is small and may be trained in place)."""
        return {"name": "motive-demo", "weight_hash": hash_state_dict(
            {"transformer": self.transformer, "text_encoder": self.text_encoder})}

    def generation_scheduler(self, steps: int, shift: float | None = None) -> FlowMatchEulerDiscreteScheduler:
        """Euler steps on the attribution schedule (shift 3): what the demo model was trained under."""
        return sampling_scheduler(self.scheduler, steps, self.device, shift)

    def denoiser(self, timestep: float = 0.0) -> torch.nn.Module:
        return self.transformer

    def latent_shape(self) -> tuple[int, ...]:
        g = self.geometry
        return (1, 3, g.num_frames, g.height, g.width)

    def encode(self, frames: np.ndarray) -> torch.Tensor:
        pixels = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device, torch.float32)
        pixels = pixels.permute(3, 0, 1, 2).unsqueeze(0) / 127.5 - 1.0
        return pixels.to(self.dtype)

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        pixels = ((latents[0].float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
        return pixels.permute(1, 2, 3, 0).cpu().numpy()

    def encode_prompt(self, prompt: str) -> torch.Tensor:
        ids = torch.tensor([self.text_encoder.ids(prompt)], device=self.device)
        return self.text_encoder(ids)

    def predict(self, noisy: torch.Tensor, timestep: torch.Tensor, condition: torch.Tensor,
                min_sigma: float = MIN_SIGMA) -> torch.Tensor:
        """The flow-matching velocity ε − x₀ at ``timestep`` = σ·1000, whatever the transformer outputs.

        A "sample" model predicts x₀ and the velocity is (x_σ − x̂₀)/σ, as in "Back to Basics: Let
        Denoising Generative Models Denoise" (Li & He, 2025): in pixel space a small network can
        predict the clean clip far more easily than the noise it must otherwise carry through.
        """
        inputs = with_coordinates(noisy) if self.config.coordinates else noisy
        output = self.transformer(inputs, timestep, condition, return_dict=False)[0]
        if self.config.prediction == "velocity":
            return output
        sigma = (timestep.float() / 1000).clamp(min=min_sigma).view(-1, *([1] * (noisy.dim() - 1)))
        return (noisy.float() - output.float()) / sigma
