"""Wan folders exactly as ``WanPipeline.save_pretrained`` writes them (tiny random weights, a real umT5 text
encoder and tokenizer): the model identity covers every component that changes a vector and no folder
name, caption cleaning and encoding equal the pipeline's, generation equals the pipeline's own sampling
with the folder's scheduler, and bad folders are refused with their cause."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from diffusers import (AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline,  # noqa: E402
                       WanTransformer3DModel)

from motive_core.config import require_same_config  # noqa: E402
from motive_core.errors import ConfigMismatchError, ModelNotFoundError, MotiveError  # noqa: E402
from motive_core.models import WanVideoModel, load_geometry  # noqa: E402
from motive_core.models.flow import fixed_noise, sample  # noqa: E402
from motive_core.models.wan import clean_caption, save_prompt_embeddings  # noqa: E402
from motive_core.models.weights import CACHE_NAME, folder_hash  # noqa: E402

WORDS = ["a", "ball", "bouncing", "cube", "red", "square", "sliding", "left", "query", "&"]
GEOMETRY = {"num_frames": 9, "fps": 8.0, "height": 32, "width": 32}


def tiny_tokenizer(words: list[str]):
    """A umT5-style tokenizer (unigram over word pieces, </s> appended) built offline with `tokenizers`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [("▁" + w, -2.0) for w in words]
    vocab += [(c, -6.0) for c in "abcdefghijklmnopqrstuvwxyz;&▁"]
    backend = Tokenizer(models.Unigram(vocab, unk_id=2))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return transformers.T5TokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>",
                                        unk_token="<unk>", extra_ids=0)


def tiny_text_encoder(vocab_size: int, d_model: int = 32, seed: int = 0):
    torch.manual_seed(seed)
    config = transformers.UMT5Config(vocab_size=vocab_size, d_model=d_model, d_kv=8, d_ff=32, num_layers=1,
                                     num_heads=2, relative_attention_num_buckets=8)
    return transformers.UMT5EncoderModel(config).eval()


def tiny_transformer(seed: int = 0) -> WanTransformer3DModel:
    torch.manual_seed(seed)
    return WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16,
                                 out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2,
                                 cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32)


def write_pipeline(folder: Path, *, seed: int = 0, d_model: int = 32, words: list[str] = WORDS,
                   experts: int = 1, boundary_ratio: float | None = None) -> Path:
    """A Wan folder written by WanPipeline.save_pretrained (UniPC with a flow shift, as Wan ships), plus motive.json."""
    tokenizer = tiny_tokenizer(words)
    torch.manual_seed(seed)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0,
                                        num_train_timesteps=1000)
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=tiny_text_encoder(len(tokenizer), d_model, seed), vae=vae,
                       scheduler=scheduler, transformer=tiny_transformer(seed),
                       transformer_2=tiny_transformer(seed + 1) if experts == 2 else None,
                       boundary_ratio=boundary_ratio)
    pipe.save_pretrained(folder)
    (folder / "motive.json").write_text(json.dumps(GEOMETRY))
    return folder


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return write_pipeline(tmp_path_factory.mktemp("wan") / "Wan2.1-T2V-tiny")


def copy_of(folder: Path, tmp_path: Path, name: str = "copy") -> Path:
    return Path(shutil.copytree(folder, tmp_path / name, ignore=shutil.ignore_patterns(CACHE_NAME)))


def same_model(index_identity: dict, query_identity: dict) -> None:
    """Compare two identities the way a query is checked against its index (keys named model.…)."""
    require_same_config({"model": index_identity}, {"model": query_identity})


def identity(folder: Path) -> dict:
    return WanVideoModel(folder).identity()


# ------------------------------------------------------------------------------------------ captions


def test_caption_cleaning_equals_wanpipeline():
    from diffusers.pipelines.wan.pipeline_wan import prompt_clean

    captions = ["a ball &amp; a cube", "  a   red\tsquare \n sliding  ", "&amp;lt;b&amp;gt; bold", "caf\u00e9 \u00c3\u00a9",
                "tab\u3000ideographic space", ""]
    for caption in captions:
        assert clean_caption(caption) == prompt_clean(caption), caption
    assert clean_caption("a ball &amp; a cube") == "a ball & a cube"


def test_text_encoder_path_equals_wanpipeline_encode_prompt(base):
    pipe = WanPipeline.from_pretrained(base, local_files_only=True)
    model = WanVideoModel(base)
    for prompt in ("a ball &amp; a cube", "a  red square sliding left"):
        expected, _ = pipe.encode_prompt(prompt, do_classifier_free_guidance=False, max_sequence_length=512,
                                         device=torch.device("cpu"))
        ours = model.encode_prompt(prompt)
        assert ours.shape == expected.shape == (1, 512, 32)
        torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)  # float rounding only


# ------------------------------------------------------------------------------------------ identity


def test_renamed_copy_of_the_same_weights_is_accepted(base, tmp_path):
    original = identity(base)
    renamed = copy_of(base, tmp_path, "models--Wan-AI--snapshot-1234")
    same_model(original, identity(renamed))  # no refusal: names are not identity
    assert original["name"] == "wan" and "Wan2.1" not in json.dumps(original)
    assert original["text"]["source"] == "text_encoder" and original["text"]["length"] == 512
    assert original["noising"] == {"scheduler": "FlowMatchEulerDiscreteScheduler", "shift": 3.0,
                                   "num_train_timesteps": 1000}


def _swap_text_encoder(folder: Path) -> str:
    tokenizer = tiny_tokenizer(WORDS)
    shutil.rmtree(folder / "text_encoder")
    tiny_text_encoder(len(tokenizer), seed=7).save_pretrained(folder / "text_encoder")
    return "model.text.encoder"


def _swap_tokenizer(folder: Path) -> str:
    shutil.rmtree(folder / "tokenizer")
    tiny_tokenizer(list(reversed(WORDS))).save_pretrained(folder / "tokenizer")
    return "model.text.tokenizer"


def _swap_transformer(folder: Path) -> str:
    shutil.rmtree(folder / "transformer")
    tiny_transformer(seed=7).save_pretrained(folder / "transformer")
    return "model.weight_hash"


def _swap_vae(folder: Path) -> str:
    config = json.loads((folder / "vae" / "config.json").read_text())
    torch.manual_seed(7)
    shutil.rmtree(folder / "vae")
    AutoencoderKLWan.from_config(config).save_pretrained(folder / "vae")
    return "model.weight_hash"


@pytest.mark.parametrize("swap", [_swap_text_encoder, _swap_tokenizer, _swap_transformer, _swap_vae])
def test_each_changed_component_is_refused(base, tmp_path, swap):
    changed = copy_of(base, tmp_path)
    key = swap(changed)
    with pytest.raises(ConfigMismatchError, match=key.replace(".", r"\.")):
        same_model(identity(base), identity(changed))


def test_the_expert_boundary_is_identity(tmp_path):
    moe = write_pipeline(tmp_path / "wan22", experts=2, boundary_ratio=0.875)
    model = WanVideoModel(moe)
    assert model.denoiser(900.0) is model.transformer and model.denoiser(751.0) is model.transformer_2
    moved = copy_of(moe, tmp_path)
    index = json.loads((moved / "model_index.json").read_text())
    (moved / "model_index.json").write_text(json.dumps({**index, "boundary_ratio": 0.7}))
    shifted = WanVideoModel(moved)
    assert shifted.denoiser(751.0) is shifted.transformer  # t = 751 now goes to the high-noise expert
    with pytest.raises(ConfigMismatchError, match=r"model\.boundary_ratio: index=0\.875 query=0\.7"):
        same_model(model.identity(), identity(moved))


def test_a_timestep_ensemble_across_the_expert_boundary_is_refused(tmp_path):
    from motive_core.attribution.gradient import GradientProjector
    from motive_core.config import AttributionSettings
    from motive_core.errors import MotiveError

    model = WanVideoModel(write_pipeline(tmp_path / "wan22", experts=2, boundary_ratio=0.875))
    high = [i for i, t in enumerate(model.scheduler.timesteps) if float(t) >= 875.0]
    low = [i for i, t in enumerate(model.scheduler.timesteps) if float(t) < 875.0]
    GradientProjector(model, AttributionSettings(proj_dim=32, t_index=low[0], t_ensemble=f"{low[1]},{low[2]}"))
    with pytest.raises(MotiveError, match="different expert denoisers"):
        GradientProjector(model, AttributionSettings(proj_dim=32, t_index=low[0], t_ensemble=str(high[0])))


def test_stored_embeddings_record_their_source_and_length(base, tmp_path):
    folder = copy_of(base, tmp_path, "no_encoder")
    shutil.rmtree(folder / "text_encoder")
    shutil.rmtree(folder / "tokenizer")
    encoder = WanVideoModel(base)
    source = encoder.text_source()["encoder"]
    captions = ["a ball", "a cube", ""]
    save_prompt_embeddings(folder / "prompt_embeds.safetensors",
                           {c: encoder.encode_prompt(c)[0] for c in captions}, source=source)
    stored = WanVideoModel(folder)
    text = stored.identity()["text"]
    assert text["source"] == "prompt_embeds" and text["encoder"] == source and text["length"] == 512
    torch.testing.assert_close(stored.encode_prompt("a   ball"), encoder.encode_prompt("a ball"))  # cleaned key

    with pytest.raises(MotiveError, match="holds embeddings from .* these come from 'other-encoder'"):
        save_prompt_embeddings(folder / "prompt_embeds.safetensors", {"x": torch.zeros(512, 32)},
                               source="other-encoder")
    with pytest.raises(MotiveError, match=r"one shape, got \[\(77, 32\), \(512, 32\)\]"):
        save_prompt_embeddings(folder / "prompt_embeds.safetensors", {"x": torch.zeros(77, 32)}, source=source)

    shorter = copy_of(folder, tmp_path, "shorter")
    (shorter / "prompt_embeds.safetensors").unlink()
    save_prompt_embeddings(shorter / "prompt_embeds.safetensors", {c: encoder.encode_prompt(c)[0, :77] for c in captions},
                           source=source)
    with pytest.raises(ConfigMismatchError, match=r"model\.text\.length: index=512 query=77"):
        same_model(stored.identity(), identity(shorter))
    other = copy_of(folder, tmp_path, "other")
    (other / "prompt_embeds.safetensors").unlink()
    save_prompt_embeddings(other / "prompt_embeds.safetensors", {c: torch.zeros(512, 32) for c in captions},
                           source="other-encoder")
    with pytest.raises(ConfigMismatchError, match=r"model\.text\.encoder"):
        same_model(stored.identity(), identity(other))
    with pytest.raises(ConfigMismatchError, match=r"model\.text\.source"):
        same_model(encoder.identity(), stored.identity())


def test_weight_hashes_are_cached_by_size_and_mtime(base, tmp_path):
    folder = copy_of(base, tmp_path)
    first = folder_hash(folder / "transformer")
    cache_path = folder / "transformer" / CACHE_NAME
    cache = json.loads(cache_path.read_text())
    weights = next(name for name in cache if name.endswith(".safetensors"))
    cache[weights]["sha256"] = "0" * 64  # a forged entry with the file's own size and mtime is trusted ...
    cache_path.write_text(json.dumps(cache))
    assert folder_hash(folder / "transformer") != first  # ... so the file was not read again
    stat = os.stat(folder / "transformer" / weights)
    os.utime(folder / "transformer" / weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert folder_hash(folder / "transformer") == first  # a new mtime rehashes


# ------------------------------------------------------------------------------------------ the folder as diffusers uses it


def test_generate_equals_wanpipeline_with_the_folders_scheduler(base):
    model = WanVideoModel(base)
    assert type(model.generation_scheduler(3)).__name__ == "UniPCMultistepScheduler"
    ours = sample(model, "a red square sliding left", seed=3, steps=3, guidance=2.0)
    pipe = WanPipeline.from_pretrained(base, local_files_only=True)
    theirs = pipe("a red square sliding left", height=32, width=32, num_frames=9, num_inference_steps=3,
                  guidance_scale=2.0, latents=fixed_noise(model.latent_shape(), 3), output_type="np").frames[0]
    assert ours.shape == theirs.shape == (9, 32, 32, 3)
    assert np.abs(ours.astype(np.float64) / 255.0 - theirs).max() <= 1.0 / 255 + 1e-4


def test_geometry_comes_from_configs_alone(base, tmp_path):
    folder = copy_of(base, tmp_path)
    for weights in folder.rglob("*.safetensors"):
        weights.unlink()
    geometry = load_geometry(folder)
    assert (geometry.num_frames, geometry.height, geometry.temporal_factor, geometry.spatial_factor) == (9, 32, 4, 8)


@pytest.mark.parametrize("breakage, message", [
    (lambda f: shutil.rmtree(f / "tokenizer"), "text_encoder has no tokenizer beside it"),
    (lambda f: (f / "motive.json").write_text(json.dumps({**GEOMETRY, "height": 40})),
     "height 40 of .* is not a multiple of 16 \\(VAE factor 8 × patch 2\\)"),
    (lambda f: (f / "motive.json").write_text(json.dumps({**GEOMETRY, "num_frames": 10})),
     "num_frames 10 of .* must be 1 \\+ a multiple of 4"),
    (lambda f: (f / "motive.json").write_text(json.dumps({**GEOMETRY, "frames": 9})),
     "motive.json has unknown key\\(s\\) frames: it may set only num_frames, fps, height, width"),
])
def test_bad_folders_name_their_cause(base, tmp_path, breakage, message):
    folder = copy_of(base, tmp_path)
    breakage(folder)
    with pytest.raises(MotiveError, match=message):
        WanVideoModel(folder)


def test_text_encoder_of_another_width_is_refused(tmp_path):
    folder = write_pipeline(tmp_path / "wide", d_model=48)
    with pytest.raises(ModelNotFoundError, match="produces 48-dimensional embeddings but the transformer expects "
                                                 "text_dim 32"):
        WanVideoModel(folder)
