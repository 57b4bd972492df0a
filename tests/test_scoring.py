"""Scoring (Eq. 10), ranking, majority vote (Eq. 18) and the selection exports."""

import csv
import json

import numpy as np
import pytest

from motive_core.attribution.scoring import (
    cosine_scores,
    majority_vote,
    selection_size,
    top_and_bottom,
    write_selection_csv,
    write_selection_jsonl,
)
from motive_core.errors import MotiveError

# 3 queries × 6 clips. With percentile 50 each query's cut is the midpoint of its 3rd and 4th values:
#   q0 sorted −0.2 0.0 0.1 | 0.7 0.8 0.9   → τ = 0.40, votes for clips 0, 1, 3
#   q1 sorted  0.2 0.4 0.5 | 0.6 0.8 0.9   → τ = 0.55, votes for clips 0, 2, 4
#   q2 sorted −0.5 0.1 0.2 | 0.3 0.7 0.95  → τ = 0.25, votes for clips 0, 1, 3
# votes  = [3, 2, 1, 2, 1, 0]
# means  = [0.600, 0.667, 0.400, 0.683, 0.233, −0.100]
# rank: clip 0 (3 votes, though its mean is not the highest); clips 3 and 1 tie on 2 votes and clip 3's
# higher mean (0.683 > 0.667) puts it first despite its larger index; then 2 (mean 0.4) before 4; then 5.
HAND = np.array([[0.9, 0.8, 0.1, 0.7, -0.2, 0.0],
                 [0.6, 0.5, 0.9, 0.4, 0.8, 0.2],
                 [0.3, 0.7, 0.2, 0.95, 0.1, -0.5]])

CLIPS = [{"id": f"clip{i}", "file": f"videos/clip{i}.mp4", "caption": f"a, \"quoted\" caption {i}",
          "labels": {"motion": ["bounce", "roll"][i % 2]}} for i in range(6)]


def test_majority_vote_hand_example():
    selection = majority_vote(HAND, percentile=50, fraction=1.0)
    np.testing.assert_allclose(selection.thresholds, [0.40, 0.55, 0.25])
    assert selection.votes.tolist() == [3, 2, 1, 2, 1, 0]
    np.testing.assert_allclose(selection.mean_scores, [0.6, 2 / 3, 0.4, 2.05 / 3, 0.7 / 3, -0.1])
    assert selection.indices.tolist() == [0, 3, 1, 2, 4, 5]
    assert selection.per_query_selected[1].tolist() == [True, False, True, False, True, False]
    half = majority_vote(HAND, percentile=50, fraction=0.5)
    assert half.indices.tolist() == [0, 3, 1]
    assert half.fraction == 0.5 and half.percentile == 50.0


def test_majority_vote_defaults_and_index_tiebreak():
    """Default 90th percentile over 10 clips: each query votes for exactly its best clip."""
    scores = np.array([np.linspace(0, 1, 10), np.linspace(1, 0, 10)])
    selection = majority_vote(scores)
    assert selection.votes.tolist() == [1] + [0] * 8 + [1]
    assert selection.indices.tolist() == [0]  # ceil(0.1 · 10) = 1; clips 0 and 9 tie on votes and mean
    assert majority_vote(scores, fraction=0.2).indices.tolist() == [0, 9]


def test_selection_size():
    assert selection_size(0.1, 30) == 3
    assert selection_size(0.1, 31) == 4
    assert selection_size(0.01, 5) == 1
    assert selection_size(1.0, 7) == 7


def test_top_and_bottom_ordering():
    scores = np.array([0.1, -0.5, 0.9, 0.3, -0.9, 0.3], dtype=np.float32)
    top, bottom = top_and_bottom(scores, 3)
    assert top.indices.tolist() == [2, 3, 5]
    np.testing.assert_allclose(top.scores, [0.9, 0.3, 0.3])
    assert bottom.indices.tolist() == [4, 1, 0]
    np.testing.assert_allclose(bottom.scores, [-0.9, -0.5, 0.1])
    top, bottom = top_and_bottom(scores, 100)
    assert len(top.indices) == len(bottom.indices) == 6


def test_cosine_against_explicit_computation(tmp_path):
    rng = np.random.default_rng(0)
    index = rng.normal(size=(50, 16)).astype(np.float32)
    index /= np.linalg.norm(index, axis=1, keepdims=True)
    query = rng.normal(size=16) * 7.0
    expected = [float(row @ query) / (np.linalg.norm(row) * np.linalg.norm(query)) for row in index]
    scores = cosine_scores(index, query)
    assert scores.dtype == np.float32 and scores.shape == (50,)
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    np.save(tmp_path / "vectors.npy", index)
    mapped = np.load(tmp_path / "vectors.npy", mmap_mode="r")
    np.testing.assert_allclose(cosine_scores(mapped, query), expected, atol=1e-6)
    np.testing.assert_allclose(cosine_scores(index.astype(np.float16), query), expected, atol=2e-3)


def test_csv_and_jsonl_read_back(tmp_path):
    selection = majority_vote(HAND, percentile=50, fraction=0.5)
    write_selection_csv(tmp_path / "out" / "selection.csv", selection, CLIPS, ["bounce", "roll", "spin"])
    with open(tmp_path / "out" / "selection.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == ["clip0", "clip3", "clip1"]
    assert rows[1] == {"rank": "2", "id": "clip3", "file": "videos/clip3.mp4",
                       "caption": "a, \"quoted\" caption 3", "labels": '{"motion": "roll"}', "votes": "2",
                       "mean_score": rows[1]["mean_score"], "score_bounce": "0.7", "score_roll": "0.4",
                       "score_spin": "0.95"}
    assert float(rows[1]["mean_score"]) == pytest.approx(2.05 / 3)

    write_selection_jsonl(tmp_path / "selection.jsonl", selection, CLIPS)
    lines = (tmp_path / "selection.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["rank"] for r in records] == [1, 2, 3]
    assert records[0]["id"] == "clip0" and records[0]["votes"] == 3
    assert records[0]["labels"] == {"motion": "bounce"}
    assert records[0]["scores"] == {"q0": 0.9, "q1": 0.6, "q2": 0.3}
    assert records[2]["caption"] == "a, \"quoted\" caption 1"
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("kwargs, message", [
    ({"fraction": 0.0}, "fraction"),
    ({"fraction": 1.5}, "fraction"),
    ({"percentile": 100.0}, "percentile"),
    ({"percentile": -1.0}, "percentile"),
])
def test_majority_vote_rejects_bad_parameters(kwargs, message):
    with pytest.raises(MotiveError, match=message):
        majority_vote(HAND, **kwargs)


@pytest.mark.parametrize("matrix", [np.zeros((0, 5)), np.zeros((2, 0)), np.zeros(5)])
def test_majority_vote_rejects_empty_or_misshapen(matrix):
    with pytest.raises(MotiveError, match="non-empty 2-D"):
        majority_vote(matrix)


def test_nan_scores_are_refused():
    bad = HAND.copy()
    bad[1, 2] = np.nan
    with pytest.raises(MotiveError, match="NaN"):
        majority_vote(bad)
    with pytest.raises(MotiveError, match="NaN"):
        top_and_bottom(bad[1], 2)
    index = np.eye(4, dtype=np.float32)
    index[3] = np.nan
    with pytest.raises(MotiveError, match=r"NaN.*\[3\]"):
        cosine_scores(index, np.ones(4))


def test_cosine_rejects_bad_queries():
    index = np.eye(4, dtype=np.float32)
    with pytest.raises(MotiveError, match="dimension 3.*dimension 4"):
        cosine_scores(index, np.ones(3))
    with pytest.raises(MotiveError, match="zero or not finite"):
        cosine_scores(index, np.zeros(4))
    with pytest.raises(MotiveError, match="zero or not finite"):
        cosine_scores(index, np.array([1.0, np.nan, 0.0, 0.0]))
    with pytest.raises(MotiveError, match="shapes"):
        cosine_scores(index, np.ones((1, 4)))


def test_top_and_bottom_rejects_bad_k():
    with pytest.raises(MotiveError, match="k must be"):
        top_and_bottom(np.ones(3), 0)
    with pytest.raises(MotiveError, match="non-empty"):
        top_and_bottom(np.ones(0), 1)


def test_exports_refuse_mismatched_clips(tmp_path):
    selection = majority_vote(HAND, percentile=50, fraction=0.5)
    with pytest.raises(MotiveError, match="5 clip records given for 6"):
        write_selection_csv(tmp_path / "a.csv", selection, CLIPS[:5])
    with pytest.raises(MotiveError, match="lacks caption"):
        write_selection_jsonl(tmp_path / "a.jsonl", selection, [{"id": "x", "file": "y"}] * 6)
    with pytest.raises(MotiveError, match="2 query names given for 3"):
        write_selection_csv(tmp_path / "a.csv", selection, CLIPS, ["a", "b"])
    assert not list(tmp_path.iterdir())
