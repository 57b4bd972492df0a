"""Held-out query sets and query protocols shared by the attribution benchmarks.

Query protocols say which prompt is given with a query, so that a figure says how much of it a prompt made.

Every MotionShapes caption names its motion ("a lime cross bouncing left …"). A query whose prompt names the
motion too can be ranked by that word alone, so each attribution figure is reported under three protocols —
the full caption, the caption without motion and direction words, and no prompt — beside a caption-only
baseline (training clips ranked by the words they share with the prompt) that needs no model at all.
A contradicting prompt (the caption with another motion's words) tests which one the ranking follows.
"""

from __future__ import annotations

import re

import numpy as np

from benchmarks.common.features import training_features
from motive_core.demo.motionshapes import (DIRECTION_WORDS, MOTION_WORDS, MOTIONS, Appearance, caption,
                                           heldout_appearance, render_clip, sample_specs, train_appearance)
from motive_core.demo.model import DemoVideoModel
from motive_core.demo.world import DemoRecipe
from motive_core.eval.metrics import appearance_leak, clip_descriptor, descriptor_similarity, retrieval_table
from motive_core.featurize import Featurizer
from motive_core.index import AttributionIndex
from motive_core.models.flow import sample
from motive_core.video import Video, standardize

PROTOCOLS = ("full caption", "caption without motion words", "no prompt")
MOTION_VOCABULARY = frozenset(MOTION_WORDS.values()) | {word for pair in DIRECTION_WORDS.values() for word in pair}


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def without_motion_words(text: str) -> str:
    """The text with every motion word and direction word removed: 'a lime cross on a dotted background'."""
    return " ".join(word for word in words(text) if word not in MOTION_VOCABULARY)


def protocol_prompt(protocol: str, caption: str) -> str:
    """The prompt a query gets under ``protocol`` (one of PROTOCOLS)."""
    if protocol == "full caption":
        return caption
    if protocol == "caption without motion words":
        return without_motion_words(caption)
    if protocol == "no prompt":
        return ""
    raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def contradicting_motion(motion: str, query_number: int) -> str:
    """Another motion, chosen so that the named motions are spread evenly over the queries."""
    others = [m for m in MOTIONS if m != motion]
    return others[query_number % len(others)]


def caption_with_motion(caption: str, motion: str, direction: str = "") -> str:
    """The caption with its motion phrase replaced by ``motion``'s word and ``direction`` (one of its
    DIRECTION_WORDS, or none)."""
    rest = without_motion_words(caption).split()
    # MotionShapes captions read "a <colour> <shape> <motion phrase> on a … background"
    return " ".join(rest[:3] + f"{MOTION_WORDS[motion]} {direction}".split() + rest[3:])


def contradicting_caption(caption: str, named_motion: str) -> str:
    """The caption with its motion phrase replaced by ``named_motion``'s word (and first direction word)."""
    return caption_with_motion(caption, named_motion, DIRECTION_WORDS.get(named_motion, ("",))[0])


def word_overlap_scores(prompt: str, captions: list[str]) -> np.ndarray:
    """The caption-only baseline: Jaccard overlap of the prompt's words with each training caption's words."""
    query = set(words(prompt))
    scores = np.zeros(len(captions))
    if not query:
        return scores
    for i, text in enumerate(captions):
        candidate = set(words(text))
        scores[i] = len(query & candidate) / len(query | candidate)
    return scores


def no_prompt_word_scores(captions: list[str], queries: int, seed: int = 0) -> np.ndarray:
    """The caption-only baseline's scores (queries × clips) under the no-prompt protocol: the empty prompt shares
    no word with any caption, so every clip ties, and ties are broken at random (seeded)."""
    ties = np.random.default_rng(seed)
    return np.stack([word_overlap_scores("", captions) + 1e-9 * ties.random(len(captions)) for _ in range(queries)])


def paired_summary(a: np.ndarray, b: np.ndarray, resamples: int = 10000, seed: int = 0) -> dict:
    """Per-query difference a − b: mean, 95 % bootstrap interval of the mean, queries better / same / worse."""
    diff = np.asarray(a, float) - np.asarray(b, float)
    means = np.random.default_rng(seed).choice(diff, (resamples, len(diff))).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean difference": float(diff.mean()), "95 % interval": f"[{low:+.3f}, {high:+.3f}]",
            "excludes 0": bool(low > 0 or high < 0),
            "better / same / worse": f"{(diff > 0).sum()} / {(diff == 0).sum()} / {(diff < 0).sum()}"}


def query_sets() -> dict[str, Appearance]:
    """Two kinds of new clips: everything about the look unseen, or only the shape unseen."""
    train, held = train_appearance(), heldout_appearance()
    return {"unseen shape, colour and background": held,
            "unseen shape (training colours and backgrounds)": Appearance(held.shapes, train.colors, train.backgrounds)}


def heldout_queries(look: Appearance, per_motion: int, generated: int, model, seed: int = 100) -> list[dict]:
    """Rendered (and optionally generated) query clips with the given looks, with their labels and captions."""
    queries = []
    specs = sample_specs(per_motion * len(MOTIONS), seed=seed, appearance=look, pan_fraction=0.0,
                         static_fraction=0.0)
    for spec in specs:
        queries.append({"video": Video(render_clip(spec), 16.0, "rendered"), "caption": caption(spec),
                        "kind": "rendered", **spec.labels()})
    for i, spec in enumerate(specs[: generated * len(MOTIONS)]):
        frames = sample(model, caption(spec), seed=seed + i, steps=30, guidance=3.0)
        queries.append({"video": Video(frames, model.geometry.fps, "generated"), "caption": caption(spec),
                        "kind": "generated", **spec.labels()})
    return queries


def query_list(model, per_motion: int, generated: int, independent: list[dict]) -> list[dict]:
    """bench_retrieval's held-out queries, each with its "set": rendered (two look sets), generated, and the
    ``independent`` clips (benchmarks.independent_motions' ``independent_queries``, drawn by the caller)."""
    queries = [{**q, "set": "rendered"} for look in query_sets().values()
               for q in heldout_queries(look, per_motion, 0, model)]
    if generated:
        queries += [{**q, "set": "generated"} for q in heldout_queries(
            query_sets()["unseen shape, colour and background"], generated, generated, model, seed=200)
            if q["kind"] == "generated"]
    return queries + [{"video": Video(q["frames"], q["fps"], "independent"), "motion": q["motion"],
                       "caption": q["caption"], "set": "independent"} for q in independent]


def in_subset(sets: np.ndarray, subset: str) -> np.ndarray:
    """Which queries belong to ``subset`` (a query set's name, or "all queries")."""
    return np.ones(len(sets), bool) if subset == "all queries" else sets == subset


def precision_at_10(scores: np.ndarray, clip_motions: np.ndarray, query_motions: list[str]) -> np.ndarray:
    """P@10 by motion per row of ``scores`` (stable order, as bench_retrieval ranks)."""
    return np.array([np.mean(clip_motions[np.argsort(-row, kind="stable")[:10]] == motion)
                     for row, motion in zip(scores, query_motions)])


def nearest_same_label(similarity: np.ndarray, labels: list[str] | np.ndarray) -> np.ndarray:
    """For each clip of a set compared with itself (``similarity`` square, its diagonal already masked), whether
    its most similar other clip has the same label: how well a representation groups a set's own clips."""
    labels = np.asarray(labels)
    return labels[np.argmax(similarity, axis=1)] == labels


def expanded_scores(scores: np.ndarray, gram: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Average query expansion with one clip, from cosines alone: for unit query q̂ and unit index rows t̂,
    cos(t̂, q̂ + t̂_top) = (q̂·t̂ + t̂_top·t̂) / |q̂ + t̂_top|, with ``scores`` (queries × clips) the q̂·t̂,
    ``gram`` (clips × clips) the t̂·t̂ and ``top`` the clip each query is expanded with."""
    rows = np.arange(len(top))
    return (scores + gram[top]) / np.sqrt(2 + 2 * scores[rows, top])[:, None]


def query_scores(model: DemoVideoModel, index: AttributionIndex, queries: list[dict]) -> np.ndarray:
    """Motive's scores (queries × indexed clips) of each query with no prompt against ``index``, through
    ``model``, with the shipped settings."""
    featurizer = Featurizer(model, DemoRecipe().settings)
    index.check_query_config(featurizer.config())
    vectors = np.stack([featurizer.vector(featurizer.prepare(q["video"]), "") for q in queries])
    return vectors @ np.asarray(index.vectors).T


def clip_motions(index: AttributionIndex) -> np.ndarray:
    """The motion label of every indexed clip, in the index's order."""
    return np.array([clip["labels"]["motion"] for clip in index.clips])


def per_query_precision(model: DemoVideoModel, index: AttributionIndex, queries: list[dict]) -> np.ndarray:
    """P@10 by motion of each query (no prompt) against ``index``, through ``model``, with the shipped settings."""
    return precision_at_10(query_scores(model, index, queries), clip_motions(index), [q["motion"] for q in queries])


def flow_precision(model: DemoVideoModel, index: AttributionIndex, queries: list[dict]) -> np.ndarray:
    """P@10 by motion of the model-free flow descriptor, over the same training clips, at the model's geometry."""
    g = model.geometry
    descriptors, _ = training_features(index, g)
    motions = clip_motions(index)
    scores = np.stack([descriptor_similarity(clip_descriptor(standardize(q["video"], g.num_frames, g.fps, g.height,
                                                                         g.width)), descriptors) for q in queries])
    return precision_at_10(scores, motions, [q["motion"] for q in queries])


def rows_in_order(index: AttributionIndex, scores: np.ndarray) -> list[dict]:
    """Candidate label rows, best score first (stable)."""
    order = np.argsort(-scores, kind="stable")
    return [{**index.clips[i]["labels"], "id": index.clips[i]["id"]} for i in order]


def retrieval_summary(set_name: str, rankings: dict[str, list[list[dict]]], labels: list[dict]) -> list[dict]:
    """One row per method: P@10 / mAP by motion, appearance leak, controlled check."""
    rows = []
    for name, ranks in rankings.items():
        table = retrieval_table(ranks, labels, label_keys=("motion",))
        leak = [appearance_leak(r, q) for r, q in zip(ranks, labels)]
        rows.append({"queries": set_name, "method": name, "P@10 motion": table["p@10_motion"],
                     "mAP motion": table["map_motion"],
                     "top-10 same background": float(np.mean([x["background"] for x in leak])),
                     "top-10 same colour": float(np.mean([x["color"] for x in leak])),
                     "controlled@4": table["controlled@4"]})
    return rows
