"""Flow descriptors of a corpus's clips, seen at a model's geometry and cached: the model-free baselines'
features and the flow classifier that names the motion of a generated clip.

Decoding and estimating flow for hundreds of clips costs minutes on a small CPU, so both are kept under
benchmarks/results/cache/, keyed by the clip list and the geometry.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from benchmarks.common.results import cache_root
from motive_core.data import load_clip_folder
from motive_core.eval.metrics import FlowMotionClassifier, clip_descriptor, color_histogram
from motive_core.index import AttributionIndex, clip_list_sha
from motive_core.video import read_video, standardize


def standardized(path: Path, geometry) -> np.ndarray:
    """A video file's frames resampled and resized to ``geometry`` (frames, fps, height, width)."""
    return standardize(read_video(path), geometry.num_frames, geometry.fps, geometry.height, geometry.width)


def training_features(index: AttributionIndex, geometry) -> tuple[np.ndarray, np.ndarray]:
    """Flow descriptors and colour histograms of every indexed clip, at the model's geometry."""
    key = f"{index.header['clip_list_sha']}-{'-'.join(str(index.clips[i]['id']) for i in (0, -1))}-" \
          f"{geometry.num_frames}x{geometry.height}x{geometry.width}@{geometry.fps:g}"
    cache = cache_root() / f"features-{key}.npz"
    if cache.is_file():
        stored = np.load(cache)
        if len(stored["descriptors"]) == len(index.clips):
            return stored["descriptors"], stored["histograms"]
    descriptors, histograms = [], []
    for clip in index.clips:
        frames = standardized(index.clip_path(clip), geometry)
        descriptors.append(clip_descriptor(frames))
        histograms.append(color_histogram(frames))
    np.savez(cache, descriptors=np.stack(descriptors), histograms=np.stack(histograms))
    return np.stack(descriptors), np.stack(histograms)


def motion_classifier(clip_folder: Path, geometry, motions: tuple[str, ...] | None = None) -> FlowMotionClassifier:
    """The flow classifier fitted on a clip folder's motion labels at the model's geometry, cached as JSON.

    ``motions`` keeps only clips of those motions (e.g. MOTIONS, leaving the static clips out); None keeps all.
    """
    clips = load_clip_folder(clip_folder)
    if motions is not None:
        clips = [c for c in clips if c.labels.get("motion") in motions]
    key = f"{clip_list_sha(clips)}{geometry}" + ("" if motions is None else ",".join(motions))
    path = cache_root() / f"classifier-{hashlib.sha256(key.encode()).hexdigest()[:12]}.json"
    if path.is_file():
        return FlowMotionClassifier.load(path)
    print(f"fitting the flow motion classifier on {len(clips)} clips of {clip_folder}", flush=True)
    descriptors = np.stack([clip_descriptor(standardized(c.file, geometry)) for c in clips])
    classifier = FlowMotionClassifier().fit(descriptors, [c.labels["motion"] for c in clips])
    classifier.save(path)
    return classifier
