"""Scoring, ranking and majority-vote curation over projected gradients (paper Eq. 10, Eq. 18).

A clip's influence on a query is the cosine of their projected, normalised gradients (Eq. 10): positive
clips push the model toward the query's motion, negative ones against it. Several queries combine by
majority vote (Eq. 18, from ICONS): each query votes for the clips above its own percentile cut, so raw
scores never need calibrating across queries; ties in votes go to the higher mean score (notes §8.7).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass

import numpy as np

from motive_core.errors import MotiveError
from motive_core.files import atomic_write_text

_SCORE_ROWS_PER_CHUNK = 65536  # rows converted at a time when the index is not float32


def _check_finite(values: np.ndarray, what: str) -> None:
    if not np.isfinite(values).all():
        bad = np.flatnonzero(~np.isfinite(values).reshape(values.shape[0], -1).all(axis=1))
        more = "…" if bad.size > 5 else ""
        raise MotiveError(f"{what} contain NaN or infinity (rows {bad[:5].tolist()}{more}); "
                          f"recompute them before scoring")


def cosine_scores(index_vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """I³ = g̃_testᵀ g̃_n for every clip n (Eq. 10): (N, D′) unit rows × (D′,) query → (N,) float32.

    The index rows are stored normalised; the query is renormalised here in case it was not.
    """
    query = np.asarray(query)
    if index_vectors.ndim != 2 or query.ndim != 1:
        raise MotiveError(f"expected index vectors (N, D′) and one query (D′,), got shapes "
                          f"{index_vectors.shape} and {query.shape}")
    if index_vectors.shape[1] != query.shape[0]:
        raise MotiveError(f"query has dimension {query.shape[0]} but the index vectors have dimension "
                          f"{index_vectors.shape[1]}; was the query projected with the index's settings?")
    q = np.asarray(query, dtype=np.float64)
    norm = np.linalg.norm(q)
    if not np.isfinite(norm) or norm == 0.0:
        raise MotiveError("the query vector is zero or not finite; its gradient could not be used")
    q = (q / norm).astype(np.float32)
    if index_vectors.dtype == np.float32:
        scores = index_vectors @ q
    else:  # e.g. float16 shards: convert a slice at a time instead of copying the whole index
        rows = range(0, index_vectors.shape[0], _SCORE_ROWS_PER_CHUNK)
        scores = np.concatenate([np.zeros(0, np.float32)] + [
            np.asarray(index_vectors[i:i + _SCORE_ROWS_PER_CHUNK], dtype=np.float32) @ q for i in rows])
    _check_finite(scores[:, None], "index vectors")
    return scores.astype(np.float32, copy=False)


@dataclass
class Ranked:
    """Clip indices in rank order with their scores."""

    indices: np.ndarray
    scores: np.ndarray


def _check_scores(scores: np.ndarray, ndim: int) -> np.ndarray:
    scores = np.asarray(scores)
    if scores.ndim != ndim or scores.size == 0:
        raise MotiveError(f"expected a non-empty {ndim}-D score array, got shape {scores.shape}")
    _check_finite(scores.reshape(-1, scores.shape[-1]) if ndim == 2 else scores[:, None], "scores")
    return scores


def top_and_bottom(scores: np.ndarray, k: int) -> tuple[Ranked, Ranked]:
    """The k most positive clips (descending) and the k most negative (ascending); ties by index."""
    scores = _check_scores(scores, 1)
    if k < 1:
        raise MotiveError(f"k must be at least 1, got {k}")
    k = min(int(k), scores.shape[0])
    top = np.argsort(-scores, kind="stable")[:k]
    bottom = np.argsort(scores, kind="stable")[:k]
    return Ranked(top, scores[top]), Ranked(bottom, scores[bottom])


@dataclass
class Selection:
    """Majority-vote curation result (Eq. 18) with everything the UI and the export need."""

    indices: np.ndarray  # selected clips, in rank order
    votes: np.ndarray  # (N,) number of queries that voted for each clip
    mean_scores: np.ndarray  # (N,) mean score over queries, the tie-breaker
    thresholds: np.ndarray  # (Q,) each query's percentile cut τ_q
    fraction: float
    percentile: float
    per_query_selected: np.ndarray  # (Q, N) bool: score > τ_q
    scores: np.ndarray  # (Q, N) the raw per-query scores


def selection_size(fraction: float, count: int) -> int:
    """ceil(fraction·N), at least 1; rounded first so 0.1·30 keeps 3 clips, not 4."""
    return max(1, math.ceil(round(fraction * count, 9)))


def majority_vote(score_matrix: np.ndarray, percentile: float = 90.0, fraction: float = 0.1) -> Selection:
    """MajVote_n = Σ_q 1[I(v_n, v̂_q) > τ_q] (Eq. 18), τ_q query q's own percentile cut; keep the top fraction.

    Rank by votes (desc), then mean score (desc), then clip index (asc); keep ceil(fraction·N), at least 1.
    """
    if not 0.0 < fraction <= 1.0:
        raise MotiveError(f"fraction must be in (0, 1], got {fraction}")
    if not 0.0 <= percentile < 100.0:
        raise MotiveError(f"percentile must be in [0, 100), got {percentile}")
    scores = _check_scores(score_matrix, 2)
    thresholds = np.percentile(scores, percentile, axis=1)
    chosen = scores > thresholds[:, None]
    votes = chosen.sum(axis=0)
    mean_scores = scores.mean(axis=0)
    count = scores.shape[1]
    order = np.lexsort((np.arange(count), -mean_scores, -votes))
    return Selection(indices=order[:selection_size(fraction, count)], votes=votes, mean_scores=mean_scores,
                     thresholds=thresholds, fraction=float(fraction), percentile=float(percentile),
                     per_query_selected=chosen, scores=scores)


def _query_names(selection: Selection, query_names: list[str] | None) -> list[str]:
    count = selection.scores.shape[0]
    names = query_names if query_names is not None else [f"q{i}" for i in range(count)]
    if len(names) != count:
        raise MotiveError(f"{len(names)} query names given for {count} queries")
    return list(names)


def _rows(selection: Selection, clips: list[dict], query_names: list[str] | None) -> list[dict]:
    """One record per selected clip, in rank order."""
    if len(clips) != selection.votes.shape[0]:
        raise MotiveError(f"{len(clips)} clip records given for {selection.votes.shape[0]} scored clips")
    names = _query_names(selection, query_names)
    rows = []
    for rank, n in enumerate(selection.indices.tolist(), start=1):
        clip = clips[n]
        missing = [key for key in ("id", "file", "caption") if key not in clip]
        if missing:
            raise MotiveError(f"clip record {n} lacks {', '.join(missing)}")
        rows.append({"rank": rank, "id": clip["id"], "file": clip["file"], "caption": clip["caption"],
                     "labels": clip.get("labels"), "votes": int(selection.votes[n]),
                     "mean_score": float(selection.mean_scores[n]),
                     "scores": {name: float(selection.scores[q, n]) for q, name in enumerate(names)}})
    return rows


def write_selection_csv(path: str | os.PathLike, selection: Selection, clips: list[dict],
                        query_names: list[str] | None = None) -> None:
    """Export as CSV: rank, id, file, caption, labels (JSON), votes, mean_score, score_<query name>…"""
    rows = _rows(selection, clips, query_names)
    names = _query_names(selection, query_names)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["rank", "id", "file", "caption", "labels", "votes", "mean_score"]
                    + [f"score_{name}" for name in names])
    for row in rows:
        labels = "" if row["labels"] is None else json.dumps(row["labels"], ensure_ascii=False)
        writer.writerow([row["rank"], row["id"], row["file"], row["caption"], labels, row["votes"],
                         repr(row["mean_score"])] + [repr(row["scores"][name]) for name in names])
    atomic_write_text(path, buffer.getvalue())


def write_selection_jsonl(path: str | os.PathLike, selection: Selection, clips: list[dict],
                          query_names: list[str] | None = None) -> None:
    """Export the selection as JSON lines, one object per selected clip in rank order."""
    rows = _rows(selection, clips, query_names)
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
