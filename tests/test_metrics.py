"""Retrieval metrics, the flow-only motion classifier and the VBench-style metrics, on rendered frames."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from motive_core.demo.motionshapes import MOTIONS, ShapeSpec, render_clip, sample_specs
from motive_core.errors import MotiveError
from motive_core.eval import metrics
from motive_core.motion import get_estimator

FPS = 16


def _disc_clip(centres, size: int = 64, radius: int = 8) -> np.ndarray:
    """A red disc with a green corner mark at each (x, y) centre on a dark background, one frame per centre."""
    frames = []
    for x, y in centres:
        frame = np.full((size, size, 3), 30, np.uint8)
        cx, cy = int(round(x)), int(round(y))
        cv2.circle(frame, (cx, cy), radius, (230, 60, 40), -1, cv2.LINE_AA)
        cv2.rectangle(frame, (cx - 3, cy - 3), (cx + 1, cy + 1), (20, 200, 20), -1)
        frames.append(frame)
    return np.stack(frames)


def _straight(count: int = 32, speed: float = 1.25, start: float = 12.0) -> list[tuple[float, float]]:
    return [(start + speed * t, 32.0) for t in range(count)]


@pytest.fixture(scope="module")
def estimator():
    return get_estimator("opencv")


@pytest.fixture(scope="module")
def static_clip() -> np.ndarray:
    return render_clip(ShapeSpec("static", "square", "red", "checks", seed=4), num_frames=32, size=64)


@pytest.fixture(scope="module")
def train_set(estimator):
    """Six train-appearance MotionShapes clips per motion (one in ten with a camera pan): descriptors, labels."""
    specs = sample_specs(60, seed=0, appearance="train", static_fraction=0.0)
    descriptors = np.stack([metrics.clip_descriptor(render_clip(s), estimator) for s in specs])
    return descriptors, [s.motion for s in specs]


@pytest.fixture(scope="module")
def heldout_set():
    """Three held-out-appearance clips per motion (unseen shapes, colours and background)."""
    specs = sample_specs(30, seed=1, appearance="heldout", static_fraction=0.0)
    return [render_clip(s) for s in specs], [s.motion for s in specs]


@pytest.fixture(scope="module")
def classifier(train_set) -> metrics.FlowMotionClassifier:
    return metrics.FlowMotionClassifier().fit(*train_set)


@pytest.fixture(scope="module")
def heldout_accuracy(classifier, heldout_set, estimator) -> dict:
    return metrics.motion_accuracy(classifier, *heldout_set, estimator=estimator)


# ------------------------------------------------------------------------------------------- retrieval


def test_precision_at_k_and_average_precision_by_hand():
    ranking = ["a", "b", "a", "c", "a"]
    assert metrics.precision_at_k(ranking, "a", 1) == 1.0
    assert metrics.precision_at_k(ranking, "a", 3) == pytest.approx(2 / 3)
    assert metrics.precision_at_k(ranking, "a", 5) == pytest.approx(3 / 5)
    assert metrics.precision_at_k(["a"], "a", 4) == 0.25  # divided by k, not by the 1 item there
    # relevant at ranks 1, 3, 5: AP = (1/1 + 2/3 + 3/5) / 3 = (1 + 0.6667 + 0.6) / 3 = 0.7556
    assert metrics.average_precision(ranking, "a") == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # relevant at rank 2 only: AP = (1/2) / 1
    assert metrics.average_precision(ranking, "b") == 0.5
    assert metrics.average_precision(ranking, "z") == 0.0
    with pytest.raises(MotiveError):
        metrics.precision_at_k(ranking, "a", 0)


RANKED = [dict(motion=m, background=b, color=c) for m, b, c in [
    ("slide", "plain", "red"), ("spin", "stripes", "red"), ("spin", "plain", "red"), ("bounce", "plain", "blue"),
    ("spin", "plain", "red"), ("slide", "plain", "red"), ("spin", "plain", "red")]]
QUERY = dict(motion="spin", background="plain", color="red")


def test_controlled_precision_and_appearance_leak_by_hand():
    # look-alikes (plain, red) in rank order: slide, spin, spin, slide, spin
    assert metrics.controlled_precision(RANKED, QUERY, k=4) == 0.5  # slide, spin, spin, slide -> 2/4
    assert metrics.controlled_precision(RANKED, QUERY, k=3) == pytest.approx(2 / 3)  # slide, spin, spin
    assert metrics.controlled_precision(RANKED, QUERY, k=10) == pytest.approx(3 / 5)  # only 5 look-alikes
    assert math.isnan(metrics.controlled_precision(RANKED, dict(QUERY, color="green")))
    # top 4: backgrounds plain, stripes, plain, plain -> 3/4; colours red, red, red, blue -> 3/4
    assert metrics.appearance_leak(RANKED, QUERY, k=4) == {"background": 0.75, "color": 0.75}


def test_retrieval_table_averages_over_queries():
    table = metrics.retrieval_table([RANKED, RANKED[::-1]], [QUERY, QUERY], k=2, controlled_k=4)
    # P@2 motion: (slide, spin) -> 1/2; reversed (spin, slide) -> 1/2
    assert table["p@2_motion"] == 0.5
    assert table["map_motion"] == pytest.approx(np.mean([metrics.average_precision([r["motion"] for r in rows], "spin")
                                                         for rows in (RANKED, RANKED[::-1])]))
    # reversed look-alikes: spin, slide, spin, spin -> 3/4; mean with 2/4
    assert table["controlled@4"] == pytest.approx(0.625)


# ------------------------------------------------------------------------------------- VBench-style


def test_dynamic_degree_static_false_fast_large_true(static_clip):
    fast = _disc_clip(_straight(speed=1.25), radius=14)  # 2.5 px per 8 fps pair > 6*64/256 = 1.5
    assert metrics.dynamic_degree(static_clip, FPS) is False
    assert metrics.dynamic_degree(fast, FPS) is True
    assert metrics.dynamic_degree_score([metrics.dynamic_degree(static_clip, FPS)]) == 0.0
    assert metrics.dynamic_degree_score([metrics.dynamic_degree(fast, FPS)]) == 1.0
    assert metrics.dynamic_degree_score([True, False, False, True]) == 0.5


def test_dynamic_degree_threshold_is_in_the_clips_own_pixels():
    slow = _disc_clip(_straight(speed=0.3), radius=14)  # 0.6 px per pair < 1.5
    assert metrics.dynamic_degree(slow, FPS) is False
    fast = _disc_clip(_straight(speed=1.25), radius=14)
    big = np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_LINEAR) for f in fast])
    assert metrics.dynamic_degree(big, FPS) is True  # 10 px per pair against a threshold of 6


def test_dynamic_degree_accepts_only_the_flow_of_the_subsampled_frames(estimator):
    fast = _disc_clip(_straight(speed=1.25), radius=14)
    assert metrics.dynamic_degree(fast, FPS, field=estimator.estimate(fast[::2])) is True
    with pytest.raises(MotiveError, match="field=None"):
        metrics.dynamic_degree(fast, FPS, field=estimator.estimate(fast))


def test_motion_smoothness_static_is_one_and_smooth_beats_jittery(static_clip):
    rng = np.random.default_rng(0)
    smooth = _disc_clip(_straight())
    jittery = _disc_clip([(x + rng.uniform(-6, 6), y + rng.uniform(-6, 6)) for x, y in _straight()])
    assert metrics.motion_smoothness(static_clip) == pytest.approx(1.0, abs=1e-6)
    assert metrics.motion_smoothness(smooth) > metrics.motion_smoothness(jittery)


def test_subject_consistency_static_one_moving_object_above_noise(static_clip):
    slow = _disc_clip(_straight(speed=0.5))
    noise = np.random.default_rng(0).integers(0, 256, (32, 64, 64, 3), dtype=np.uint8)
    assert metrics.subject_consistency(static_clip) == pytest.approx(1.0)
    assert metrics.subject_consistency(slow) > metrics.subject_consistency(noise) + 0.3


# ------------------------------------------------------------------------------------------ classifier


def test_descriptor_has_a_fixed_length_and_is_finite(static_clip, estimator):
    small = render_clip(sample_specs(1, seed=5, static_fraction=0.0)[0], num_frames=12, size=32)
    for frames in (static_clip, small):
        descriptor = metrics.clip_descriptor(frames, estimator)
        assert descriptor.shape == (len(metrics.DESCRIPTOR_NAMES),)
        assert np.isfinite(descriptor).all()


def test_mirrored_motion_gets_the_same_label(classifier, estimator):
    spec = ShapeSpec("slide", "pentagon", "white", "dots", seed=11)
    frames = render_clip(spec)
    mirrored = np.ascontiguousarray(frames[:, :, ::-1])
    assert classifier.predict(np.stack([metrics.clip_descriptor(f, estimator) for f in (frames, mirrored)])) == [
        "slide", "slide"]


def test_flow_classifier_recognises_heldout_appearance(heldout_accuracy):
    per = heldout_accuracy["per_category"]
    print("held-out motion accuracy:", {k: round(v, 2) for k, v in per.items()}, "mean", heldout_accuracy["mean"])
    assert set(per) == set(MOTIONS)
    assert heldout_accuracy["mean"] >= 0.6  # chance is 0.1
    assert all(per[m] >= 2 / 3 for m in ("bounce", "slide", "spin", "explode", "compress"))


def test_flow_only_retrieval_ranks_same_motion_first(train_set, heldout_set, estimator):
    corpus, labels = train_set
    frames, truth = heldout_set
    queries = np.stack([metrics.clip_descriptor(f, estimator) for f in frames])
    scores = metrics.descriptor_similarity(queries, corpus)
    assert scores.shape == (len(queries), len(corpus))
    assert metrics.descriptor_similarity(queries[0], corpus) == pytest.approx(scores[0])
    ranked = [[labels[i] for i in np.argsort(-row, kind="stable")] for row in scores]
    assert np.mean([metrics.precision_at_k(r, q, 5) for r, q in zip(ranked, truth)]) > 0.5  # chance 0.1


def test_classifier_save_load_round_trip(classifier, train_set, tmp_path):
    descriptors = train_set[0]
    loaded = metrics.FlowMotionClassifier.load(classifier.save(tmp_path / "clf.json"))
    assert loaded.predict(descriptors) == classifier.predict(descriptors)
    np.testing.assert_array_equal(loaded.predict_proba(descriptors), classifier.predict_proba(descriptors))
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(MotiveError):
        metrics.FlowMotionClassifier.load(tmp_path / "other.json")


def test_color_histogram_tracks_appearance_not_motion():
    def clip(motion: str, color: str) -> np.ndarray:
        return render_clip(ShapeSpec(motion, "circle", color, "plain", size=0.16, seed=2), num_frames=8, size=32)

    red_slide, red_spin, blue_slide = clip("slide", "red"), clip("spin", "red"), clip("slide", "blue")
    hists = np.stack([metrics.color_histogram(c) for c in (red_slide, red_spin, blue_slide)])
    assert hists.sum(axis=1) == pytest.approx(np.ones(3))
    similarity = metrics.histogram_similarity(hists[0], hists)
    assert similarity[0] == pytest.approx(1.0)
    assert similarity[1] > similarity[2]
