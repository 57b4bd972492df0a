"""The demo model read as a diffusion classifier (benchmarks/bench_diffusion_classifier.py): the candidate
captions differ only in the motion phrase, and the committed model reads its own training clips' motions."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.bench_diffusion_classifier import READINGS, caption_losses
from benchmarks.common.queries import MOTION_VOCABULARY, caption_with_motion, contradicting_caption, words
from benchmarks.common.results import DEMO_CLIPS, DEMO_MODEL, model_folders
from motive_core.data import load_clip_folder
from motive_core.demo.motionshapes import DIRECTION_WORDS, MOTION_WORDS, MOTIONS
from motive_core.demo.world import DemoRecipe
from motive_core.featurize import Featurizer
from motive_core.models import load_model
from motive_core.models.flow import fixed_noise
from motive_core.video import read_video

CAPTION = "a lime cross bouncing left on a dotted background, camera panning"


@pytest.mark.parametrize("motion", MOTIONS)
def test_a_candidate_caption_changes_only_the_motion_phrase(motion):
    for direction in DIRECTION_WORDS.get(motion, ("",)):
        text = caption_with_motion(CAPTION, motion, direction)
        assert [w for w in words(text) if w not in MOTION_VOCABULARY] == [
            w for w in words(CAPTION) if w not in MOTION_VOCABULARY]
        assert [w for w in words(text) if w in MOTION_VOCABULARY] == [MOTION_WORDS[motion], *direction.split()]
    assert contradicting_caption(CAPTION, motion) == caption_with_motion(
        CAPTION, motion, DIRECTION_WORDS.get(motion, ("",))[0])


def test_the_committed_model_reads_its_own_training_clips():
    model = load_model(DEMO_MODEL, device="cpu")
    featurizer = Featurizer(model, DemoRecipe().settings)
    clips = load_clip_folder(DEMO_CLIPS)
    noise = [fixed_noise(model.latent_shape(), 0)]
    read = []
    for motion in MOTIONS:
        clip = next(c for c in clips if c.labels["motion"] == motion)
        losses = caption_losses(model, featurizer, {"video": read_video(clip.file), "caption": clip.caption},
                                (500,), noise)
        assert losses.shape == (len(READINGS), len(MOTIONS)) and np.isfinite(losses).all()
        assert len(set(np.round(losses[0], 6))) == len(MOTIONS), "the caption must change the prediction"
        read.append(MOTIONS[int(losses[0].argmin())] == motion)
    assert sum(read) >= 8, f"the model reads {sum(read)} of its ten training clips' motions"


def test_a_model_argument_must_name_a_model_folder_beside_its_index(tmp_path):
    assert list(model_folders([])) == ["committed demo model"]
    for bad in ("no-equals-sign", f"x={tmp_path / 'missing'}", f"={DEMO_MODEL}"):
        with pytest.raises(SystemExit, match="--model"):
            model_folders([bad])
    (tmp_path / "model").mkdir()
    with pytest.raises(SystemExit, match="index-motion"):
        model_folders([f"x={tmp_path / 'model'}"])
    (tmp_path / "index-motion").mkdir()
    assert model_folders([f"x={tmp_path / 'model'}"])["x"] == tmp_path / "model"
