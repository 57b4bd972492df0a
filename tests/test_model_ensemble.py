"""TRAK-style model ensembles (benchmarks/bench_model_ensemble.py): which ensembles are measured, and that the
mean of several models' scores is what is ranked and compared with the committed model query by query."""

from __future__ import annotations

import numpy as np

from benchmarks.bench_model_ensemble import COMMITTED, ensemble_rows, ensembles, expanded_mean


def test_each_model_alone_then_with_the_committed_one_then_all_together():
    assert ensembles([COMMITTED, "a", "b"]) == [(COMMITTED,), ("a",), ("b",), (COMMITTED, "a"), (COMMITTED, "b"),
                                                (COMMITTED, "a", "b")]
    assert ensembles([COMMITTED, "a"]) == [(COMMITTED,), ("a",), (COMMITTED, "a")]  # all together = the pair


def test_averaging_models_with_independent_errors_ranks_better_than_one_and_is_paired_per_query():
    rng = np.random.default_rng(0)
    motions = np.repeat(np.array(list("abcde")), 20)  # 100 clips, 20 a motion
    truth = list(np.repeat(np.array(list("abcde")), 6))  # 30 queries
    sets = np.array(["rendered", "independent"] * 15)
    signal = (np.array(truth)[:, None] == motions[None]).astype(float)
    scores = {name: signal + rng.normal(0, 1.2, signal.shape) for name in (COMMITTED, "a", "b", "c")}
    grams = {name: np.eye(len(motions)) for name in scores}
    flow = np.ones(len(truth))
    figures, paired = ensemble_rows(scores, motions, truth, sets, {"flow descriptor (no model)": flow,
                                                                   "words": np.zeros(len(truth))}, grams)
    by_name = {row["models (scores averaged)"]: row for row in figures}
    alone, together = by_name[COMMITTED], by_name["all 4 models"]
    for s in ("rendered", "independent"):
        assert together[f"P@10 {s}"] > alone[f"P@10 {s}"] + 0.15
    assert by_name["flow descriptor (no model)"]["independent ÷ flow"] == 1.0
    assert by_name["words"]["P@10 rendered"] == 0.0 and list(by_name)[-2:] == ["flow descriptor (no model)", "words"]
    assert np.isclose(together["independent ÷ flow"], together["P@10 independent"])  # flow is 1 on every query
    gain = [row for row in paired if row["comparison"] == f"all 4 models − {COMMITTED}"]
    assert [row["queries"] for row in gain] == ["rendered", "independent"]
    assert all(row["mean difference"] > 0.15 and row["excludes 0"] for row in gain)
    assert not any(row["comparison"] == f"{COMMITTED} − {COMMITTED}" for row in paired)
    assert f"{COMMITTED} + a" in by_name  # pairs are named by their members
    expanded = [row["models (scores averaged)"] for row in figures if row["models (scores averaged)"].endswith(
        ", query expansion")]
    assert expanded == [f"{COMMITTED}, query expansion", "all 4 models, query expansion"]
    assert any(row["comparison"] == f"{COMMITTED}, query expansion − {COMMITTED}" for row in paired)


def test_query_expansion_of_an_ensemble_is_each_models_cosine_to_the_query_plus_the_ensembles_top_clip():
    rng = np.random.default_rng(4)

    def unit(rows):
        return rows / np.linalg.norm(rows, axis=-1, keepdims=True)

    train = {name: unit(rng.normal(size=(12, 6))) for name in (COMMITTED, "a")}
    asked = {name: unit(rng.normal(size=(3, 6))) for name in train}
    scores = {name: asked[name] @ train[name].T for name in train}
    grams = {name: train[name] @ train[name].T for name in train}
    top = np.argmax((scores[COMMITTED] + scores["a"]) / 2, axis=1)
    by_hand = np.mean([unit(asked[m] + train[m][top]) @ train[m].T for m in train], axis=0)
    np.testing.assert_allclose(expanded_mean(scores, grams, (COMMITTED, "a")), by_hand)
    alone = np.argmax(scores[COMMITTED], axis=1)  # one model: expanded with its own top clip
    np.testing.assert_allclose(expanded_mean(scores, grams, (COMMITTED,)),
                               unit(asked[COMMITTED] + train[COMMITTED][alone]) @ train[COMMITTED].T)


def test_a_training_clip_queried_with_no_prompt_scores_itself_highest():
    """query_scores (what each model of an ensemble contributes) is the shipped query path against the index."""
    from benchmarks.common.queries import clip_motions, per_query_precision, query_scores
    from benchmarks.common.results import DEMO_CLIPS, DEMO_MODEL
    from motive_core.index import AttributionIndex
    from motive_core.models import load_model
    from motive_core.video import read_video

    model, index = load_model(DEMO_MODEL, device="cpu"), AttributionIndex(DEMO_MODEL.parent / "index-motion")
    chosen = [0, 250]
    queries = [{"video": read_video(DEMO_CLIPS / index.clips[i]["file"]), "motion": clip_motions(index)[i]}
               for i in chosen]
    scores = query_scores(model, index, queries)
    assert scores.shape == (2, len(index.clips))
    assert list(scores.argmax(axis=1)) == chosen and np.allclose(scores.max(axis=1), 1.0, atol=1e-4)
    assert np.all(per_query_precision(model, index, queries) >= 0.1)  # itself, at least, shares its motion


def test_the_caption_only_row_without_a_prompt_only_breaks_ties_so_it_ranks_at_chance():
    from benchmarks.common.queries import no_prompt_word_scores, precision_at_10

    motions = np.repeat(np.array(list("abcde")), 40)
    captions = [f"a red square {'bouncing' if m == 'a' else 'sliding'} on a plain background" for m in motions]
    scores = no_prompt_word_scores(captions, 200)
    assert scores.shape == (200, 200) and scores.max() < 1e-8  # no word is shared with the empty prompt
    assert np.array_equal(scores, no_prompt_word_scores(captions, 200))  # seeded
    assert abs(precision_at_10(scores, motions, ["a"] * 200).mean() - 0.2) < 0.03  # the share of "a" clips
