"""Does the demo model itself tell the motions apart? The model read as a diffusion classifier.

Motive ranks training clips by the model's own gradients, so it can only separate motions that the model
separates. This study asks the model directly. Each query clip is noised at a few fixed (timestep, noise)
pairs and denoised under ten captions: the query's own caption with each motion's phrase in turn (every
direction word of a two-way motion tried, the best kept). The motion whose captions the model denoises best is
its reading. The candidate captions differ only in the motion phrase, so words alone pick the right one at
chance (0.1).

Beside that reading, on the same queries: the model-free flow classifier (fitted on the demo's training
clips, the one that judges generated samples), Motive's P@10 by motion with no prompt through the model's
index (the shipped settings) and the flow descriptor's P@10. Queries are bench_retrieval's held-out rendered
and independent-renderer sets, the same clips for every model, so models are paired per query.

  python -m benchmarks.bench_diffusion_classifier [--independent 10] [--model NAME=FOLDER ...]

A model folder's index is its sibling ``index-motion`` (as in precomputed/ and in bench_retrain's cache).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common.features import motion_classifier
from benchmarks.common.queries import (caption_with_motion, flow_precision, in_subset, paired_summary,
                                       per_query_precision, query_list)
from benchmarks.common.results import DEMO_CLIPS, DEMO_MODEL, cache_root, log, model_folders, repo_relative, save
from benchmarks.independent_motions import independent_queries
from motive_core.attribution.loss import per_location_error, temporal_difference_error
from motive_core.demo.model import DemoVideoModel
from motive_core.demo.motionshapes import DIRECTION_WORDS, MOTIONS
from motive_core.demo.world import DemoRecipe
from motive_core.eval.metrics import clip_descriptor
from motive_core.featurize import Featurizer
from motive_core.index import AttributionIndex
from motive_core.models import load_model
from motive_core.models.flow import fixed_noise, noise_at_index
from motive_core.video import standardize

SETS = ("rendered", "independent")
READINGS = ("denoising loss", "motion-weighted temporal-difference loss")


def caption_losses(model: DemoVideoModel, featurizer: Featurizer, query: dict, timesteps: tuple[int, ...],
                   noises: list[torch.Tensor]) -> np.ndarray:
    """(readings, motions) losses of one query: the mean over (timestep, noise) pairs of the plain denoising
    loss and of the shipped motion-weighted temporal-difference loss, the best caption of each motion kept."""
    prepared = featurizer.prepare(query["video"])
    latents = model.encode(prepared.frames)
    weight = torch.from_numpy(prepared.latent_mask).float()
    noised = [noise_at_index(model.scheduler, latents, t, noise) for t in timesteps for noise in noises]
    losses = np.full((len(READINGS), len(MOTIONS)), np.inf)
    with torch.no_grad():
        for m, motion in enumerate(MOTIONS):
            for direction in DIRECTION_WORDS.get(motion, ("",)):
                condition = model.encode_prompt(caption_with_motion(query["caption"], motion, direction))
                total = np.zeros(len(READINGS))
                for x in noised:
                    prediction = model.predict(x.noisy, x.timestep, condition)
                    total += [per_location_error(prediction, x.target).mean().item(),
                              (temporal_difference_error(prediction, x.target)[0] * weight).mean().item()]
                losses[:, m] = np.minimum(losses[:, m], total / len(noised))
    return losses


def model_readings(model: DemoVideoModel, queries: list[dict], timesteps: tuple[int, ...], noise_draws: int,
                   cache: Path) -> np.ndarray:
    """(queries, readings, motions) caption losses of every query through ``model``, kept in ``cache`` (the
    readings take minutes; the tables can then be remade from them)."""
    if cache.is_file():
        return np.load(cache)
    featurizer = Featurizer(model, DemoRecipe().settings)
    noises = [fixed_noise(model.latent_shape(), seed) for seed in range(noise_draws)]
    out = []
    for number, query in enumerate(queries):
        out.append(caption_losses(model, featurizer, query, timesteps, noises))
        if number % 40 == 39:
            log(f"  {number + 1}/{len(queries)} queries read")
    np.save(cache, np.stack(out))
    return np.stack(out)


def mean_of(values: np.ndarray) -> float | str:
    """The mean of a split that may be empty."""
    return float(values.mean()) if len(values) else "–"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-motion", type=int, default=4, help="rendered queries per motion and look set")
    parser.add_argument("--independent", type=int, default=10, help="independent-renderer queries per motion")
    parser.add_argument("--timesteps", default="300,500,700", help="scheduler indexes the clip is noised at")
    parser.add_argument("--noise-draws", type=int, default=2, help="noise draws at each timestep")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FOLDER",
                        help="another demo model to read (its index: the sibling index-motion folder)")
    parser.add_argument("--name", default="diffusion_classifier")
    args = parser.parse_args()
    start = time.perf_counter()
    timesteps = tuple(int(part) for part in args.timesteps.split(",") if part.strip())
    models = model_folders(args.model)
    independent = independent_queries(args.independent, seed=0)
    shipped = load_model(DEMO_MODEL, device="cpu")
    queries = query_list(shipped, args.per_motion, 0, independent)
    sets = np.array([q["set"] for q in queries])
    truth = np.array([q["motion"] for q in queries])
    g = shipped.geometry
    flow_classifier = motion_classifier(DEMO_CLIPS, g, MOTIONS)
    flow_read = np.array(flow_classifier.predict(np.stack([clip_descriptor(standardize(
        q["video"], g.num_frames, g.fps, g.height, g.width)) for q in queries])))
    flow = flow_precision(shipped, AttributionIndex(DEMO_MODEL.parent / "index-motion"), queries)
    correct, motive, cached = {"flow classifier (no model)": flow_read == truth}, {}, 0
    for name, folder in models.items():
        log(f"reading {len(queries)} queries through the {name}")
        model = shipped if folder == DEMO_MODEL else load_model(folder, device="cpu")
        index = AttributionIndex(folder.parent / "index-motion")
        key = json.dumps([index.config["model"], timesteps, args.noise_draws, args.per_motion, args.independent])
        cache = cache_root() / f"diffusion-readings-{hashlib.sha256(key.encode()).hexdigest()[:12]}.npy"
        cached += cache.is_file()
        losses = model_readings(model, queries, timesteps, args.noise_draws, cache)
        for r, reading in enumerate(READINGS):
            correct[f"{name}: {reading}"] = np.array(MOTIONS)[losses[:, r].argmin(axis=1)] == truth
        motive[name] = per_query_precision(model, index, queries)
    tables = summary_tables(sets, truth, correct, motive, flow)
    counts = {s: int((sets == s).sum()) for s in SETS}
    notes = [
        f"Queries: {counts} (bench_retrieval's held-out rendered sets and benchmarks/independent_motions.py). "
        f"Models: {', '.join(f'{n} ({repo_relative(f)})' for n, f in models.items())}.",
        f"Model reading: the query noised at scheduler indexes {timesteps} with {args.noise_draws} fixed noise "
        "draws each and denoised under its own caption with each motion's phrase in turn (best direction word "
        "kept); the motion with the lowest mean loss is the reading. 'Denoising loss' is the plain flow-matching "
        "error; the other is the loss the shipped index differentiates (temporal change of the error, weighted "
        "by the query's motion mask). The captions differ only in the motion phrase, so text alone is at chance.",
        "Flow classifier: logistic regression on flow descriptors of the demo's training clips (no generative "
        "model). Retrieval: no prompt with any query; the indexes condition every clip on the null prompt. "
        "Intervals: 95 % bootstrap of the mean (10,000 resamples). "
        f"Run time {(time.perf_counter() - start) / 60:.1f} min on this CPU, with the readings of {cached} of "
        f"{len(models)} models taken from benchmarks/results/cache (about 6 min a model otherwise).",
    ]
    save(args.name, tables, notes)


def summary_tables(sets: np.ndarray, truth: np.ndarray, correct: dict[str, np.ndarray],
                   motive: dict[str, np.ndarray], flow: np.ndarray) -> dict[str, list[dict]]:
    """The saved tables from per-query results: which readings are right, Motive's and the flow descriptor's
    P@10; ``motive`` is keyed by model name, the committed demo model first."""
    def rate(values: np.ndarray, subset: str) -> float:
        return float(values[in_subset(sets, subset)].mean())

    independent_rows = sets == "independent"
    accuracy = [{"reading": name, **{f"accuracy {s}": rate(v, s) for s in SETS},
                 "independent 95 % interval": paired_summary(v[independent_rows], 0 * v[independent_rows])[
                     "95 % interval"]} for name, v in correct.items()]
    retrieval = [{"method": f"Motive through the {name} (no prompt)", **{f"P@10 {s}": rate(p, s) for s in SETS}}
                 for name, p in motive.items()]
    retrieval.append({"method": "flow descriptor (no model)", **{f"P@10 {s}": rate(flow, s) for s in SETS}})
    split = []
    for name in motive:
        known = correct[f"{name}: {READINGS[0]}"]
        for s in SETS:
            rows = sets == s
            for label, subset in (("right", rows & known), ("wrong", rows & ~known)):
                split.append({"model": name, "queries": s, "the model reads the motion": label,
                              "queries in it": int(subset.sum()), "Motive P@10": mean_of(motive[name][subset]),
                              "flow descriptor P@10": mean_of(flow[subset])})
    per_motion = []
    for m in MOTIONS:
        rows = independent_rows & (truth == m)
        per_motion.append({"motion": m, **{name: float(v[rows].mean()) for name, v in correct.items()},
                           **{f"Motive P@10, {name}": float(p[rows].mean()) for name, p in motive.items()},
                           "flow descriptor P@10": float(flow[rows].mean())})
    tables = {"Which motion the model reads (accuracy, chance 0.1)": accuracy,
              "Retrieval on the same queries (P@10 by motion, no prompt)": retrieval,
              f"P@10 by whether the model reads the motion right ({READINGS[0]}), Motive and the flow "
              "descriptor on the same queries": split,
              "Per motion, independent renderer": per_motion}
    if len(motive) > 1:
        base = correct[f"committed demo model: {READINGS[0]}"]
        tables["Other models − committed, paired per query (accuracy, independent renderer)"] = [
            {"comparison": f"{name} − committed demo model ({READINGS[0]})",
             **paired_summary(correct[f"{name}: {READINGS[0]}"][independent_rows], base[independent_rows])}
            for name in list(motive)[1:]]
    return tables


if __name__ == "__main__":
    main()
