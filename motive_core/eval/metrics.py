"""Retrieval metrics, a flow-only motion classifier, and VBench-style motion metrics.

* Retrieval: precision@k and average precision of same-label retrieval, plus the two checks that keep
  appearance from passing for motion: the *controlled* precision among candidates that
  share the query's background and colour, and the *appearance leak* (how much of the top k shares them).
* Flow descriptors: a fixed-length summary of the TYPE of motion in a clip (direction-agnostic where the
  motion is, resolution-independent), used for a flow-only retrieval baseline and by
  :class:`FlowMotionClassifier`, which tells whether a generated clip shows the prompted motion without
  any generative model.
* VBench-style dynamic degree, motion smoothness and subject consistency, computed with our own flow
  and pixel features. Official VBench uses RAFT, AMT-S and DINO; these proxies follow its protocol but
  their absolute numbers are NOT comparable to published VBench scores — compare runs with each other.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from motive_core.errors import MotiveError
from motive_core.files import atomic_write_text
from motive_core.motion import MotionEstimator, MotionField, get_estimator

# ------------------------------------------------------------------------------------------- retrieval


def precision_at_k(ranked_labels: Sequence, query_label, k: int) -> float:
    """Share of the first ``k`` ranked items whose label is ``query_label`` (divided by k, not by fewer)."""
    if k < 1:
        raise MotiveError(f"precision@k needs k >= 1 (got {k})")
    return sum(label == query_label for label in list(ranked_labels)[:k]) / k


def average_precision(ranked_labels: Sequence, query_label) -> float:
    """Mean of precision@i over the ranks i of relevant items, over the whole ranking; 0 if none is relevant."""
    relevant = np.array([label == query_label for label in ranked_labels], bool)
    if not relevant.any():
        return 0.0
    hits = np.cumsum(relevant)
    ranks = np.arange(1, len(relevant) + 1)
    return float(np.mean(hits[relevant] / ranks[relevant]))


def controlled_precision(ranked_rows: Sequence[Mapping], query: Mapping,
                         match_keys: Sequence[str] = ("background", "color"), label_key: str = "motion",
                         k: int = 4) -> float:
    """Precision of ``label_key`` among the best ``k`` candidates sharing the query's ``match_keys`` values.

    Among look-alikes, appearance cannot rank the right motion first: this is the check that retrieval
    works by motion. Divides by the number of such candidates when fewer than k; NaN when there is none.
    """
    alike = [row for row in ranked_rows if all(row[key] == query[key] for key in match_keys)][:k]
    if not alike:
        return math.nan
    return sum(row[label_key] == query[label_key] for row in alike) / len(alike)


def appearance_leak(ranked_rows: Sequence[Mapping], query: Mapping,
                    keys: Sequence[str] = ("background", "color"), k: int = 10) -> dict[str, float]:
    """For each appearance key, the share of the top ``k`` that shares the query's value."""
    top = list(ranked_rows)[:k]
    return {key: sum(row[key] == query[key] for row in top) / max(len(top), 1) for key in keys}


def retrieval_table(rankings: Sequence[Sequence[Mapping]], queries: Sequence[Mapping],
                    label_keys: Sequence[str] = ("motion", "background", "color"), k: int = 10,
                    controlled_k: int = 4) -> dict[str, float]:
    """Mean P@k and mAP per label key over queries, plus the mean controlled motion precision.

    ``rankings[i]`` holds the candidate rows for ``queries[i]``, best first (the query itself left out).
    Queries with no look-alike candidate are skipped in the controlled mean (NaN if all are).
    """
    table: dict[str, float] = {}
    for key in label_keys:
        labels = [[row[key] for row in ranking] for ranking in rankings]
        table[f"p@{k}_{key}"] = float(np.mean([precision_at_k(lab, q[key], k) for lab, q in zip(labels, queries)]))
        table[f"map_{key}"] = float(np.mean([average_precision(lab, q[key]) for lab, q in zip(labels, queries)]))
    controlled = [controlled_precision(ranking, q, k=controlled_k) for ranking, q in zip(rankings, queries)]
    defined = [value for value in controlled if not math.isnan(value)]
    table[f"controlled@{controlled_k}"] = float(np.mean(defined)) if defined else math.nan
    return table


# ------------------------------------------------------------------------------------- flow descriptor

TIME_BINS = 6
MOVING_FRACTION = 0.25  # a pixel moves if its flow departs from the camera's by this share of the clip's max
_MIN_PIXELS = 4
# per frame: mean velocity and speed (frame sizes), affine divergence / curl / x-minus-y stretch (per frame),
# spread (frame sizes), area (share of the frame), aspect (log of x over y spread)
_FRAME_STATS = ("vx", "vy", "speed", "div", "curl", "aniso", "spread", "area", "aspect")
PROFILES = ("vx_signed", "vx_abs", "vy", "speed", "div", "curl_signed", "curl_abs", "aniso_signed",
            "aniso_abs", "spread_rel", "area_rel", "aspect_rel")
SCALARS = ("vy_reversals", "vx_reversals", "vy_accel", "horizontal_share", "vertical_share", "curl_mean_abs",
           "div_mean", "spread_growth")
DESCRIPTOR_NAMES = tuple(f"{p}[{b}]" for p in PROFILES for b in range(TIME_BINS)) + SCALARS


def _moving_region(flow: np.ndarray) -> np.ndarray:
    """(T,H,W) bool: where the flow departs from the frame's median (camera) flow by a clip-relative amount.

    The departure is blurred a little first, so that incoherent flow noise does not count as a subject.
    """
    camera = np.median(flow.reshape(len(flow), -1, 2), axis=1)[:, None, None, :]
    departure = np.hypot(*np.moveaxis(flow - camera, -1, 0))
    sigma = 0.02 * max(flow.shape[1:3])
    departure = np.stack([cv2.GaussianBlur(d, (0, 0), sigma) for d in departure])
    peak = float(np.percentile(departure, 99.9))
    floor = 2e-3 * max(flow.shape[1:3])  # below this the clip is static: no region at all
    return departure > max(MOVING_FRACTION * peak, floor)


def _frame_stats(flow: np.ndarray, region: np.ndarray, scale: float) -> np.ndarray:
    """Statistics of one frame's moving region, in frame-size units (see _FRAME_STATS)."""
    if region.sum() < _MIN_PIXELS:
        return np.zeros(len(_FRAME_STATS))
    ys, xs = np.nonzero(region)
    u, v = flow[ys, xs, 0], flow[ys, xs, 1]
    dx, dy = xs - xs.mean(), ys - ys.mean()
    design = np.stack([dx, dy, np.ones_like(dx)], axis=1).astype(np.float64)
    coef = np.linalg.lstsq(design, np.stack([u, v], axis=1), rcond=None)[0]  # rows: d/dx, d/dy, offset
    du_dx, dv_dx, du_dy, dv_dy = coef[0, 0], coef[0, 1], coef[1, 0], coef[1, 1]
    sx, sy = dx.std() + 0.5, dy.std() + 0.5
    return np.array([u.mean() / scale, v.mean() / scale, np.hypot(u, v).mean() / scale, du_dx + dv_dy,
                     dv_dx - du_dy, du_dx - dv_dy, np.hypot(sx, sy) / scale, region.mean(), np.log(sx / sy)])


def _bins(series: np.ndarray, bins: int = TIME_BINS) -> np.ndarray:
    """Area-average a per-frame series onto ``bins`` equal time bins, whatever the frame count."""
    return np.repeat(series, bins).reshape(bins, len(series)).mean(axis=1)


def _first_half_sign(profile: np.ndarray) -> float:
    """+1 or -1 so that the profile starts positive: left/right, clockwise/anticlockwise look the same."""
    return -1.0 if profile[: len(profile) // 2].sum() < 0 else 1.0


def _reversals(series: np.ndarray) -> float:
    """How often a smoothed series changes sign, ignoring values under a fifth of its peak."""
    smooth = np.convolve(series, np.ones(3) / 3, mode="same")
    peak = np.abs(smooth).max()
    if peak == 0:
        return 0.0
    return float(np.count_nonzero(np.diff(np.sign(smooth[np.abs(smooth) > 0.2 * peak]))))


def _relative(profile: np.ndarray) -> np.ndarray:
    """Profile over its clip mean, minus 1: how it grows or shrinks, whatever the object's size."""
    return profile / profile.mean() - 1 if profile.mean() > 0 else np.zeros_like(profile)


def flow_descriptor(field: MotionField) -> np.ndarray:
    """A fixed-length summary (named by DESCRIPTOR_NAMES) of what kind of motion a clip shows.

    Per frame, the moving region (pixels moving unlike the frame's median flow, i.e. unlike the camera)
    gives its mean velocity, mean speed, an affine fit of its flow (divergence, curl, horizontal-minus-
    vertical stretch), its spread, area and aspect. These per-frame series are averaged into TIME_BINS time
    bins; horizontal velocity, curl and stretch appear sign-normalised (so that mirrored motions, left or
    right, clockwise or not, match) and as absolute values; vertical velocity stays signed (gravity has a
    direction); spread, area and aspect appear relative to their clip mean (growth, not object size).
    Scalars: velocity reversals (bounce, swing), vertical acceleration (free fall), horizontal and vertical
    share of the speed, mean |curl| and divergence, spread growth (explode). Velocities are divided by the
    frame size, so the resolution does not matter; the region's own motion is kept in frame coordinates.
    """
    flow = field.displacement.astype(np.float64)
    scale = float(max(flow.shape[1:3]))
    region = _moving_region(flow)
    stats = np.stack([_frame_stats(f, r, scale) for f, r in zip(flow, region)])
    s = dict(zip(_FRAME_STATS, stats.T))
    binned = {name: _bins(values) for name, values in s.items()}
    profiles = [binned["vx"] * _first_half_sign(binned["vx"]), _bins(np.abs(s["vx"])), binned["vy"],
                binned["speed"], binned["div"], binned["curl"] * _first_half_sign(binned["curl"]),
                _bins(np.abs(s["curl"])), binned["aniso"] * _first_half_sign(binned["aniso"]),
                _bins(np.abs(s["aniso"])), _relative(binned["spread"]), _relative(binned["area"]),
                binned["aspect"] - binned["aspect"].mean()]
    speed = s["speed"].mean() + 1e-9
    time = np.linspace(-0.5, 0.5, len(flow))
    accel = float(np.dot(time, s["vy"]) / np.dot(time, time)) / speed
    spread = binned["spread"]
    scalars = [_reversals(s["vy"]), _reversals(s["vx"]), accel, np.abs(s["vx"]).mean() / speed,
               np.abs(s["vy"]).mean() / speed, np.abs(s["curl"]).mean(), s["div"].mean(),
               np.log((spread[-1] + 1e-3) / (spread[0] + 1e-3))]
    return np.concatenate(profiles + [np.array(scalars)]).astype(np.float32)


def clip_descriptor(frames: np.ndarray, estimator: MotionEstimator | None = None) -> np.ndarray:
    """Flow (default: the OpenCV estimator) then :func:`flow_descriptor` for a uint8 (T,H,W,3) clip."""
    return flow_descriptor((estimator or get_estimator("opencv")).estimate(frames))


# ------------------------------------------------------------------------------------------ classifier


def _standardize(descriptors: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return (np.asarray(descriptors, np.float64) - mean) / scale


def _fit_scale(descriptors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation; constant features get scale 1 so they stay finite."""
    std = descriptors.std(axis=0)
    return descriptors.mean(axis=0), np.where(std > 1e-8, std, 1.0)


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _fit_softmax(design: np.ndarray, targets: np.ndarray, l2: float, steps: int) -> np.ndarray:
    """Gradient descent from zero on the mean cross-entropy + l2/2·|W|² (last row, the bias, unpenalised).

    The step is 1/L with L = ||X||²/(2N) + l2, a bound on the loss's curvature, so it always descends.
    """
    penalty = np.ones((design.shape[1], 1))
    penalty[-1] = 0.0
    step = 1.0 / (0.5 * np.linalg.norm(design, 2) ** 2 / len(design) + l2)
    weights = np.zeros((design.shape[1], targets.shape[1]))
    for _ in range(steps):
        weights -= step * (design.T @ (_softmax(design @ weights) - targets) / len(design) + l2 * penalty * weights)
    return weights


class FlowMotionClassifier:
    """Which motion a clip shows, from its flow descriptor alone: no generative model involved.

    Multinomial logistic regression on standardised descriptors, fitted by plain gradient descent from
    zero (deterministic; L2 penalty ``l2`` on the weights, not the bias). It is what measures whether a
    generator produced the prompted motion; it saves to JSON (no pickle).
    """

    FORMAT = "motive-flow-motion-classifier"

    def __init__(self, l2: float = 0.01, steps: int = 2000):
        self.l2, self.steps = float(l2), int(steps)
        self.labels: list[str] = []
        self.mean = self.scale = self.weights = np.zeros(0)

    def fit(self, descriptors: np.ndarray, labels: Sequence[str]) -> FlowMotionClassifier:
        """Fit on (N, d) descriptors and their N motion labels (at least two distinct labels)."""
        descriptors = np.asarray(descriptors, np.float64)
        labels = [str(label) for label in labels]
        if descriptors.ndim != 2 or len(descriptors) != len(labels):
            raise MotiveError(f"fit needs (N, d) descriptors and N labels, got {descriptors.shape} and {len(labels)}")
        self.labels = sorted(set(labels))
        if len(self.labels) < 2:
            raise MotiveError("fit needs clips of at least two different motions")
        self.mean, self.scale = _fit_scale(descriptors)
        targets = np.eye(len(self.labels))[[self.labels.index(label) for label in labels]]
        self.weights = _fit_softmax(self._design(descriptors), targets, self.l2, self.steps)
        return self

    def _design(self, descriptors: np.ndarray) -> np.ndarray:
        """Standardised descriptors with a constant column for the bias."""
        descriptors = np.atleast_2d(descriptors)
        if descriptors.shape[1] != len(self.mean):
            raise MotiveError(f"descriptors have {descriptors.shape[1]} features, the classifier {len(self.mean)}")
        z = _standardize(descriptors, self.mean, self.scale)
        return np.hstack([z, np.ones((len(z), 1))])

    def predict_proba(self, descriptors: np.ndarray) -> np.ndarray:
        """(N, len(labels)) probabilities, columns in the order of ``self.labels``."""
        if not self.labels:
            raise MotiveError("This classifier is not fitted yet: call fit() or load() first")
        return _softmax(self._design(descriptors) @ self.weights)

    def predict(self, descriptors: np.ndarray) -> list[str]:
        """The most likely motion for each descriptor row."""
        return [self.labels[i] for i in self.predict_proba(descriptors).argmax(axis=1)]

    def save(self, path: str | Path) -> Path:
        """Write the fitted classifier as JSON (floats round-trip exactly), atomically."""
        path = Path(path)
        state = {"format": self.FORMAT, "descriptor": list(DESCRIPTOR_NAMES), "l2": self.l2, "steps": self.steps,
                 "labels": self.labels, "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                 "weights": self.weights.tolist()}
        atomic_write_text(path, json.dumps(state))
        return path

    @classmethod
    def load(cls, path: str | Path) -> FlowMotionClassifier:
        """Read a classifier written by :meth:`save`; refuses one fitted on a different descriptor."""
        try:
            state = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise MotiveError(f"Cannot read a flow motion classifier from {path}: {err}") from err
        if not isinstance(state, dict) or state.get("format") != cls.FORMAT:
            raise MotiveError(f"{path} is not a flow motion classifier file (written by FlowMotionClassifier.save)")
        if state["descriptor"] != list(DESCRIPTOR_NAMES):
            raise MotiveError(f"{path} was fitted on another version of the flow descriptor; fit it again")
        model = cls(state["l2"], state["steps"])
        model.labels = list(state["labels"])
        model.mean, model.scale, model.weights = (np.array(state[k], np.float64) for k in ("mean", "scale", "weights"))
        return model


def descriptor_similarity(query: np.ndarray, corpus: np.ndarray, mean: np.ndarray | None = None,
                          scale: np.ndarray | None = None) -> np.ndarray:
    """Cosine of standardised flow descriptors: the flow-only retrieval baseline.

    ``query`` (d,) or (M, d) against ``corpus`` (N, d) gives (N,) or (M, N). Features are standardised
    with ``mean``/``scale`` when given, else with the corpus's own statistics.
    """
    corpus = np.asarray(corpus, np.float64)
    if mean is None or scale is None:
        mean, scale = _fit_scale(corpus)
    a = _standardize(np.atleast_2d(query), mean, scale)
    b = _standardize(corpus, mean, scale)
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    similarity = a @ b.T
    return similarity[0] if np.ndim(query) == 1 else similarity


def color_histogram(frames: np.ndarray, bins: int = 8) -> np.ndarray:
    """Joint RGB histogram over all frames, (bins³,) summing to 1: the appearance-only baseline."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise MotiveError(f"color_histogram needs RGB frames shaped (T,H,W,3), got {frames.shape}")
    q = (frames.reshape(-1, 3).astype(np.int64) * bins) // 256
    counts = np.bincount((q[:, 0] * bins + q[:, 1]) * bins + q[:, 2], minlength=bins ** 3)
    return (counts / counts.sum()).astype(np.float32)


def histogram_similarity(query: np.ndarray, corpus: np.ndarray) -> np.ndarray:
    """Bhattacharyya coefficient in [0, 1] between histogram ``query`` (d,) and each row of ``corpus`` (N, d)."""
    return np.sqrt(np.clip(np.atleast_2d(corpus), 0, None)) @ np.sqrt(np.clip(query, 0, None))


def motion_accuracy(classifier: FlowMotionClassifier, clips_frames: Sequence[np.ndarray],
                    prompted_labels: Sequence[str], estimator: MotionEstimator | None = None) -> dict:
    """How often each clip shows its prompted motion, per the flow classifier.

    Returns ``per_category`` (accuracy per prompted motion), ``mean`` (their unweighted mean),
    ``overall`` (share of all clips) and ``predicted`` (one label per clip).
    """
    if len(clips_frames) != len(prompted_labels) or not len(clips_frames):
        raise MotiveError(f"motion_accuracy needs one prompted label per clip (got {len(clips_frames)} clips, "
                          f"{len(prompted_labels)} labels)")
    estimator = estimator or get_estimator("opencv")
    predicted = classifier.predict(np.stack([clip_descriptor(frames, estimator) for frames in clips_frames]))
    hits = np.array([p == t for p, t in zip(predicted, prompted_labels)])
    labels = np.array(prompted_labels)
    per_category = {label: float(hits[labels == label].mean()) for label in sorted(set(prompted_labels))}
    return {"per_category": per_category, "mean": float(np.mean(list(per_category.values()))),
            "overall": float(hits.mean()), "predicted": predicted}


# ------------------------------------------------------------------------------- VBench-style metrics

DYNAMIC_FPS = 8.0


def _dynamic_pair_scores(frames: np.ndarray, fps: float, field: MotionField | None,
                         estimator: MotionEstimator | None) -> tuple[np.ndarray, int]:
    """Per consecutive pair of the ~8 fps frames, the mean of the top 5 % flow magnitudes; and N frames."""
    sampled = frames[:: max(1, round(fps / DYNAMIC_FPS))]
    if len(sampled) < 2:
        raise MotiveError(f"dynamic degree needs at least 2 frames at ~8 fps, got {len(sampled)} from {len(frames)}")
    if field is None:
        field = (estimator or get_estimator("opencv")).estimate(sampled)
    elif field.displacement.shape[:3] != sampled.shape[:3]:
        raise MotiveError(f"the motion field {field.displacement.shape[:3]} is not the flow of the ~8 fps frames "
                          f"{sampled.shape[:3]} (one frame in {max(1, round(fps / DYNAMIC_FPS))}); pass field=None")
    magnitude = field.magnitude[1:].reshape(len(sampled) - 1, -1)
    top = max(1, int(magnitude.shape[1] * 0.05))
    return np.sort(magnitude, axis=1)[:, -top:].mean(axis=1), len(sampled)


def dynamic_degree(frames: np.ndarray, fps: float, field: MotionField | None = None,
                   estimator: MotionEstimator | None = None) -> bool:
    """VBench dynamic degree for one clip: does it move enough?

    Frames are subsampled to ~8 fps (every round(fps/8)-th); per consecutive pair the score is the mean
    of the top 5 % flow magnitudes in the clip's own pixels (our estimators return input-pixel units even
    when they upsample internally); the clip is dynamic if at least round(4·N/16) pairs (N sampled
    frames, and at least one pair) exceed 6·min(H, W)/256. ``field``, if given, must be the flow of
    the subsampled frames. Flow is DIS by default, not VBench's RAFT.
    """
    frames = np.asarray(frames)
    scores, count = _dynamic_pair_scores(frames, fps, field, estimator)
    threshold = 6.0 * min(frames.shape[1:3]) / 256.0
    return bool(np.count_nonzero(scores > threshold) >= max(1, round(4 * count / 16)))


def dynamic_degree_score(dynamic: Sequence[bool]) -> float:
    """The dimension score: share of clips that are dynamic (NaN for no clips)."""
    return float(np.mean(dynamic)) if len(dynamic) else math.nan


def _warp_half(frame: np.ndarray, came_from: np.ndarray) -> np.ndarray:
    """Frame seen half a step back along its own 'came from' displacement (samples at x + D(x)/2)."""
    height, width = came_from.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return cv2.remap(frame, xs + 0.5 * came_from[..., 0], ys + 0.5 * came_from[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE).astype(np.float32)


def motion_smoothness(frames: np.ndarray, estimator: MotionEstimator | None = None) -> float:
    """VBench-style motion smoothness: (255 − MAE)/255 of odd frames re-synthesised from their even neighbours.

    VBench interpolates with AMT-S; here each odd frame is the average of its two even neighbours, each
    warped half-way along the flow between them (the estimator's flow, both directions), so smooth motion
    is predicted well and jerky motion is not. A static clip scores 1.
    """
    frames = np.asarray(frames)
    if len(frames) < 3:
        raise MotiveError(f"motion smoothness needs at least 3 frames, got {len(frames)}")
    estimator = estimator or get_estimator("opencv")
    evens = frames[0::2]
    into = estimator.estimate(evens).displacement  # into[k]: on evens[k], from evens[k-1] (k >= 1)
    back = estimator.estimate(evens[::-1]).displacement[::-1]  # back[k]: on evens[k], from evens[k+1] (k <= n-2)
    errors = []
    for k in range(len(evens) - 1):
        middle = 0.5 * (_warp_half(evens[k], back[k]) + _warp_half(evens[k + 1], into[k + 1]))
        errors.append(np.abs(middle - frames[2 * k + 1].astype(np.float32)).mean())
    return float((255.0 - np.mean(errors)) / 255.0)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine; two all-zero rows count as identical (1), one all-zero row as unrelated (0)."""
    norm_a, norm_b = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    cos = (a * b).sum(axis=1) / np.maximum(norm_a * norm_b, 1e-12)
    return np.where((norm_a == 0) & (norm_b == 0), 1.0, cos)


def _frame_features(frames: np.ndarray, size: int) -> np.ndarray:
    """Per frame: the colour image area-resized to size×size, minus its mean grey level, flattened."""
    small = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames]).astype(np.float64)
    flat = small.reshape(len(frames), -1)
    return flat - flat.mean(axis=1, keepdims=True)


def subject_consistency(frames: np.ndarray, size: int = 32) -> float:
    """VBench-style subject consistency with pixel features instead of DINO.

    Mean over frames t >= 1 of (max(0, cos(f_t, f_{t-1})) + max(0, cos(f_t, f_0))) / 2, where f is the
    mean-centred, downsampled colour frame. 1 for a static clip, near 0 for unrelated (noise) frames.
    Unlike DINO features these are position-sensitive: a subject that travels far scores lower.
    """
    frames = np.asarray(frames)
    if len(frames) < 2:
        raise MotiveError(f"subject consistency needs at least 2 frames, got {len(frames)}")
    feats = _frame_features(frames, size)
    previous = np.clip(_cosines(feats[1:], feats[:-1]), 0, None)
    first = np.clip(_cosines(feats[1:], np.repeat(feats[:1], len(feats) - 1, axis=0)), 0, None)
    return float(np.mean((previous + first) / 2))
