"""LTX-Video through the same adapter protocol: a folder written by ``LTXPipeline.save_pretrained`` with tiny
random weights (the upstream test's transformer and VAE, a real T5 encoder and tokenizer) conditions,
predicts and generates as the pipeline does, and goes through build-index and query end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from diffusers import (AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXPipeline,  # noqa: E402
                       LTXVideoTransformer3DModel)
from test_model_identity import WORDS, tiny_tokenizer  # noqa: E402

from motive_core.cli import main  # noqa: E402
from motive_core.errors import MotiveError  # noqa: E402
from motive_core.models import LTXVideoModel, VideoModelAdapter, load_geometry, load_model  # noqa: E402
from motive_core.models.flow import fixed_noise, sample  # noqa: E402

GEOMETRY = {"num_frames": 9, "fps": 8.0, "height": 32, "width": 32}


def write_ltx(folder: Path, seed: int = 0) -> Path:
    tokenizer = tiny_tokenizer(WORDS)
    torch.manual_seed(seed)
    transformer = LTXVideoTransformer3DModel(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1,
                                             num_attention_heads=4, attention_head_dim=8, cross_attention_dim=32,
                                             num_layers=1, caption_channels=32)
    vae = AutoencoderKLLTXVideo(in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
                                decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
                                decoder_layers_per_block=(1, 1, 1, 1, 1),
                                spatio_temporal_scaling=(True, True, False, False),
                                decoder_spatio_temporal_scaling=(True, True, False, False),
                                decoder_inject_noise=(False, False, False, False, False),
                                upsample_residual=(False, False, False, False), upsample_factor=(1, 1, 1, 1),
                                timestep_conditioning=False, patch_size=1, patch_size_t=1, encoder_causal=True,
                                decoder_causal=False)
    config = transformers.T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                                   relative_attention_num_buckets=8)
    # LTX-Video's own scheduler settings: the shift grows with the token count
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05,
                                                base_image_seq_len=1024, max_image_seq_len=4096, shift_terminal=0.1)
    LTXPipeline(scheduler=scheduler, vae=vae, text_encoder=transformers.T5EncoderModel(config).eval(),
                tokenizer=tokenizer, transformer=transformer).save_pretrained(folder)
    (folder / "motive.json").write_text(json.dumps(GEOMETRY))
    return folder


@pytest.fixture(scope="module")
def ltx_dir(tmp_path_factory) -> Path:
    return write_ltx(tmp_path_factory.mktemp("ltx") / "LTX-Video-tiny")


def test_adapter_conditions_and_predicts_as_the_pipeline(ltx_dir):
    model = load_model(ltx_dir, device="cpu")
    assert isinstance(model, LTXVideoModel) and isinstance(model, VideoModelAdapter)
    assert model.geometry.latent_grid() == (3, 8, 8)  # 9 frames → 1 + 8/4, 32 px / 4 (the tiny VAE)
    assert load_geometry(ltx_dir) == model.geometry
    pipe = LTXPipeline.from_pretrained(ltx_dir, local_files_only=True)
    embeds, mask, _, _ = pipe.encode_prompt("a red ball bouncing", do_classifier_free_guidance=False,
                                            max_sequence_length=128, device=torch.device("cpu"))
    condition = model.encode_prompt("a red ball bouncing")
    assert condition.shape == (1, int(mask.sum()), 32)
    torch.testing.assert_close(condition, embeds[:, : int(mask.sum())])

    frames = np.random.default_rng(0).integers(0, 255, (9, 32, 32, 3), dtype=np.uint8)
    latents = model.encode(frames)
    assert latents.shape == model.latent_shape() == (1, 8, 3, 8, 8)
    timestep = torch.tensor([750.0])
    ours = model.predict(latents, timestep, condition)
    with torch.no_grad():  # the pipeline's call: padded caption, attention mask, packed tokens
        packed = LTXPipeline._pack_latents(latents, 1, 1)
        theirs = pipe.transformer(hidden_states=packed, encoder_hidden_states=embeds, timestep=timestep,
                                  encoder_attention_mask=mask, num_frames=3, height=8, width=8,
                                  rope_interpolation_scale=(4 / 8.0, 4, 4), return_dict=False)[0]
    torch.testing.assert_close(ours, LTXPipeline._unpack_latents(theirs, 3, 8, 8, 1, 1), rtol=0, atol=1e-5)
    assert model.decode(latents).shape == (9, 32, 32, 3)


def test_generate_equals_ltxpipeline(ltx_dir):
    model = load_model(ltx_dir, device="cpu")
    ours = sample(model, "a red square sliding left", seed=2, steps=3, guidance=2.0)
    pipe = LTXPipeline.from_pretrained(ltx_dir, local_files_only=True)
    noise = LTXPipeline._pack_latents(fixed_noise(model.latent_shape(), 2), 1, 1)
    theirs = pipe("a red square sliding left", height=32, width=32, num_frames=9, frame_rate=8, num_inference_steps=3,
                  guidance_scale=2.0, latents=noise, output_type="np").frames[0]
    assert ours.shape == theirs.shape == (9, 32, 32, 3)
    assert np.abs(ours.astype(np.float64) / 255.0 - theirs).max() <= 1.0 / 255 + 1e-4


def test_identity_ignores_the_folder_name_and_bad_geometry_is_refused(ltx_dir, tmp_path):
    copy = Path(shutil.copytree(ltx_dir, tmp_path / "renamed"))
    original = load_model(ltx_dir, device="cpu").identity()
    assert original == load_model(copy, device="cpu").identity()
    assert original["name"] == "ltx-video" and original["text"]["length"] == 128
    (copy / "motive.json").write_text(json.dumps({**GEOMETRY, "width": 34}))
    with pytest.raises(MotiveError, match="width 34 of .* is not a multiple of 4"):
        load_model(copy, device="cpu")


def test_ltx_folder_builds_an_index_and_answers_a_query(ltx_dir, tmp_path, clip_folder, capsys):
    assert main(["build-index", "--data", str(clip_folder), "--model", str(ltx_dir), "--out", str(tmp_path / "idx"),
                 "--proj-dim", "64", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["indexed"] == 8
    config = json.loads((tmp_path / "idx" / "config.json").read_text())["vector_config"]
    assert config["model"]["name"] == "ltx-video" and config["geometry"]["spatial_factor"] == 4
    query = sorted(clip_folder.glob("*.mp4"))[0]
    assert main(["query", "--index", str(tmp_path / "idx"), "--video", str(query), "--prompt", "a red ball",
                 "--top", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["positives"]) == 3 and -1.0 <= result["negatives"][0]["score"] <= result["positives"][0]["score"]
    # the query clip is in the index: its own vector ranks first
    assert result["positives"][0]["file"].endswith(query.name)
