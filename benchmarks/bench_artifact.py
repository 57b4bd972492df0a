"""Finding the cause of a planted motion artifact, and proving it causally (the artifact world).

World (``python -m motive_core demo --stage artifact``, docs/artifact-world.md): a fresh pool of MotionShapes
clips in which a share of the bounce clips jitters and a share of the swing clips stutters (captions never
say so), the clean demo model fine-tuned on that pool (the artifact model), and its Motive (mask) and no-mask
indexes over the pool.

Detector: every rate below comes from ``motive_core.demo.artifacts.detect_artifact`` (the object's track); its
true and false positive rates on the pool's rendered clips are reported first.

Finding the cause. Queries: clips the artifact model generates from held-out-look prompts of the affected
motion that the detector says show the artifact, and rendered held-out-look clips carrying it. Relevant =
the pool clips planted with the query's artifact kind. Methods: Motive (mask index), no mask, random, a
same-motion oracle (the query's motion first, in random order: what a perfect motion-only method gets),
the model-free flow descriptor, and the caption-only baseline (words shared with the query's caption).
P@10 and AP per query, and per-query paired differences with 95 % bootstrap intervals.

Proving it causally. Remove Motive's top-k for each artifact kind (k = the clips planted with it; majority
vote over that kind's generated queries), re-fine-tune the clean model with the artifact model's recipe
and seed, and measure how often its generations of the affected motions show the artifact; against the
whole pool, removing k random clips, and removing k random clips of the affected motion. Several seeds;
the flow classifier's motion accuracy on the same generations says whether the motion itself survives.

  python -m benchmarks.bench_artifact [--root precomputed] [--seeds 0,1] [--prompts 8] [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.common.curation import Query, common_rows, query_losses
from benchmarks.common.features import motion_classifier, training_features
from benchmarks.common.queries import paired_summary, word_overlap_scores
from benchmarks.common.results import REPO, cache_root, log, repo_relative, save
from benchmarks.common.runs import Runs, StudyPlan, past_deadline, selected, spread
from motive_core.attribution.scoring import majority_vote
from motive_core.config import AttributionSettings
from motive_core.data import load_clip_folder
from motive_core.demo.artifacts import PLANTED, artifact_rate, detect_artifact
from motive_core.demo.model import DemoVideoModel
from motive_core.demo.motionshapes import caption, render_clip, sample_specs
from motive_core.demo.train import TrainConfig, load_training_tensors
from motive_core.demo.world import DemoRecipe, finetune_from
from motive_core.eval.metrics import (FlowMotionClassifier, average_precision, clip_descriptor, descriptor_similarity,
                                      motion_accuracy, precision_at_k)
from motive_core.featurize import Featurizer
from motive_core.index import AttributionIndex, clip_list_sha
from motive_core.models.flow import sample
from motive_core.video import Video, read_video, standardize

QUERY_SEED, EVAL_SEED = 300, 400  # held-out-look specs for the queries and for the causal study's prompts
PREFERENCE_PAIRS = 4  # held-out-look (artifact, clean twin) pairs per kind for the loss probe
METHODS = ("Motive (mask)", "no mask", "random", "same-motion oracle", "flow descriptor (no model)",
           "caption-only: shared words (no model)")
FULL, BASE = "whole pool", "clean model (not fine-tuned)"


@dataclass(frozen=True)
class Plan(StudyPlan):
    """Everything that changes a causal arm's result (its runs file is keyed by this)."""

    generated_per_kind: int = 6
    candidates_per_kind: int = 16
    rendered_per_kind: int = 4
    prompts_per_motion: int = 8
    finetune: TrainConfig = DemoRecipe().artifact.finetune  # the artifact model's own recipe

    def key(self, model_hash: str) -> str:
        data = {**self.identity(), "model": model_hash}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]


# ------------------------------------------------------------------------------------------ the world

@dataclass
class World:
    plan: Plan
    base: Path  # the clean demo model
    art: Path  # precomputed/artifact
    model: DemoVideoModel  # the artifact model
    indexes: dict[str, AttributionIndex]
    rows: dict[str, np.ndarray]  # per index: rows of the clips every index holds, in one order
    records: list[dict]  # pool clip records (mask index), in that order
    cache: Path

    @property
    def artifacts(self) -> np.ndarray:
        return np.array([r["labels"].get("artifact", "none") for r in self.records])

    @property
    def motions(self) -> np.ndarray:
        return np.array([r["labels"]["motion"] for r in self.records])


def make_world(plan: Plan) -> World:
    art = Path(plan.root) / "artifact"
    if not (art / "index-motion" / "config.json").is_file():
        raise SystemExit(f"no artifact world in {art}: run `python -m motive_core demo --stage artifact` first")
    indexes = {"mask": AttributionIndex(art / "index-motion"), "no mask": AttributionIndex(art / "index-nomask")}
    rows = common_rows(indexes)
    model = DemoVideoModel.load(art / "model")
    cache = cache_root() / f"artifact-{model.identity()['weight_hash']}"
    cache.mkdir(exist_ok=True)
    records = [indexes["mask"].clips[i] for i in rows["mask"]]
    return World(plan, Path(plan.root) / "model", art, model, indexes, rows, records, cache)


def standardized(frames: np.ndarray, fps: float, geometry) -> np.ndarray:
    return standardize(Video(frames, fps, "rendered"), geometry.num_frames, geometry.fps, geometry.height,
                       geometry.width)


def generate(model: DemoVideoModel, prompt: str, seed: int, plan: Plan) -> np.ndarray:
    return sample(model, prompt, seed=seed, steps=plan.sample_steps, guidance=plan.guidance)


# ------------------------------------------------------------------------------------------ detector

def detector_rows(world: World) -> list[dict]:
    """The detector on the pool's rendered clips (decoded mp4s at the model's geometry), per planted label."""
    g = world.model.geometry
    readings = [detect_artifact(standardize(read_video(world.indexes["mask"].clip_path(r)), g.num_frames, g.fps,
                                            g.height, g.width)) for r in world.records]
    rows = []
    groups = [(f"planted {kind} ({motion})", (world.artifacts == kind)) for kind, motion in PLANTED.items()]
    groups += [(f"clean {motion}", (world.artifacts == "none") & (world.motions == motion)) for motion in PLANTED.values()]
    groups += [("clean, every motion", world.artifacts == "none")]
    for name, chosen in groups:
        picked = [r for r, c in zip(readings, chosen) if c]
        rows.append({"pool clips": name, "clips": len(picked), **{f"read as {kind}": artifact_rate(picked, kind)
                                                                   for kind in ("jitter", "stutter", "none")}})
    return rows


# ------------------------------------------------------------------------------------------ queries

def make_queries(world: World) -> list[dict]:
    """Generated clips of the artifact model that show the artifact (detector-picked), then rendered ones."""
    plan, g = world.plan, world.model.geometry
    path = world.cache / f"queries-{plan.key(world.model.identity()['weight_hash'])}.npz"
    looks = sample_specs(4 * len(PLANTED) * 10, seed=QUERY_SEED, appearance="heldout", pan_fraction=0.0,
                         static_fraction=0.0)
    queries = []
    stored = dict(np.load(path)) if path.is_file() else {}
    for kind, motion in PLANTED.items():
        specs = [s for s in looks if s.motion == motion]
        found, tried = 0, 0
        for attempt in range(plan.candidates_per_kind):
            if found == plan.generated_per_kind:
                break
            spec = specs[attempt % len(specs)]
            name = f"generated-{kind}-{attempt}"
            frames = stored[name] if name in stored else generate(world.model, caption(spec), QUERY_SEED + attempt, plan)
            stored[name] = frames
            tried += 1
            if detect_artifact(frames).kind == kind:
                found += 1
                queries.append({"name": name, "kind": "generated", "artifact": kind, "motion": motion,
                                "caption": caption(spec), "frames": frames})
        log(f"{kind}: {found} of {tried} generations of the artifact model show it")
        for n, spec in enumerate(specs[-plan.rendered_per_kind:]):
            frames = standardized(render_clip(replace(spec, artifact=kind)), 16.0, g)
            queries.append({"name": f"rendered-{kind}-{n}", "kind": "rendered", "artifact": kind, "motion": motion,
                            "caption": caption(spec), "frames": frames})
    np.savez_compressed(path, **stored)
    return queries


def protocol(world: World) -> str:
    settings = AttributionSettings.from_vector_config(world.indexes["mask"].config)
    if settings.conditioning == "null":
        return "no prompt (the indexes' conditioning is null: query and pool gradients both use the empty prompt)"
    return "full caption (the query's generation prompt or rendered caption; pool gradients use their captions)"


def cached(path: Path, compute):
    """``compute()``'s dict of arrays, kept in ``path`` (npz) so that parallel runs of the causal arms share it."""
    if path.is_file():
        return dict(np.load(path))
    result = compute()
    np.savez_compressed(path, **result)
    return result


def score_queries(world: World, queries: list[dict]) -> dict[str, np.ndarray]:
    """{method: (Q, N) scores} over the pool rows every index holds (higher = ranked first)."""
    featurizers = {name: Featurizer(world.model, AttributionSettings.from_vector_config(index.config))
                   for name, index in world.indexes.items()}
    g = world.model.geometry
    descriptors, _ = training_features(world.indexes["mask"], g)
    captions = [r["caption"] for r in world.records]
    rng = np.random.default_rng(0)
    out: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
    for n, query in enumerate(queries):
        prepared = featurizers["mask"].prepare(Video(query["frames"], g.fps, query["kind"]))
        for name, label in (("mask", "Motive (mask)"), ("no mask", "no mask")):
            featurizer = featurizers[name]
            vector = featurizer.vector(prepared, featurizer.settings.conditioning_prompt(query["caption"]))
            out[label].append(world.indexes[name].scores(vector)[world.rows[name]])
        count = len(world.records)
        out["random"].append(rng.random(count))
        out["same-motion oracle"].append((world.motions == query["motion"]) + rng.random(count) * 0.5)
        out["flow descriptor (no model)"].append(
            descriptor_similarity(clip_descriptor(query["frames"]), descriptors)[world.rows["mask"]])
        out["caption-only: shared words (no model)"].append(
            word_overlap_scores(query["caption"], captions) + 1e-9 * rng.random(count))
        log(f"  scored query {n + 1}/{len(queries)}")
    return {m: np.stack(v) for m, v in out.items()}


def variant_scores(world: World, queries: list[dict], variants: dict[str, Path]) -> dict[str, np.ndarray]:
    """{name: (Q, N) scores} from other indexes over the same pool (other settings of the attribution), aligned
    with the world's pool rows; a clip an index leaves out ranks last."""
    out = {}
    g = world.model.geometry
    for name, folder in variants.items():
        index = AttributionIndex(folder)
        featurizer = Featurizer(world.model, AttributionSettings.from_vector_config(index.config))
        position = {c["id"]: i for i, c in enumerate(index.clips)}
        rows = np.array([position.get(r["id"], -1) for r in world.records])
        matrix = []
        for query in queries:
            prepared = featurizer.prepare(Video(query["frames"], g.fps, query["kind"]))
            scores = index.scores(featurizer.vector(prepared, query["caption"]))
            matrix.append(np.where(rows >= 0, scores[rows], -np.inf))
        out[name] = np.stack(matrix)
        log(f"scored {len(queries)} queries on {name}")
    return out


def ranking_metrics(world: World, queries: list[dict], scores: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """{method: {"P@10": (Q,), "AP": (Q,)}} with relevant = pool clips planted with the query's kind."""
    out = {}
    for method, matrix in scores.items():
        p10, ap = [], []
        for query, row in zip(queries, matrix):
            ranked = world.artifacts[np.argsort(-row, kind="stable")]
            p10.append(precision_at_k(ranked, query["artifact"], 10))
            ap.append(average_precision(ranked, query["artifact"]))
        out[method] = {"P@10": np.array(p10), "AP": np.array(ap)}
    return out


def finding_rows(world: World, queries: list[dict], metrics: dict) -> list[dict]:
    """Mean P@10 and AP per query set and method."""
    rows = []
    for kind in ("generated", "rendered"):
        for artifact in PLANTED:
            chosen = np.array([q["kind"] == kind and q["artifact"] == artifact for q in queries])
            if not chosen.any():
                continue
            for method in metrics:
                rows.append({"queries": f"{kind} {artifact} ({PLANTED[artifact]})", "n": int(chosen.sum()),
                             "planted share of pool": float(np.mean(world.artifacts == artifact)), "method": method,
                             "P@10": float(metrics[method]["P@10"][chosen].mean()),
                             "AP": float(metrics[method]["AP"][chosen].mean())})
    return rows


def paired_rows(queries: list[dict], metrics: dict) -> list[dict]:
    """Motive minus every other method, per query, by query kind."""
    rows = []
    for kind in ("generated", "rendered", "all"):
        chosen = np.array([kind == "all" or q["kind"] == kind for q in queries])
        for other in [m for m in metrics if m != "Motive (mask)"]:
            for measure in ("P@10", "AP"):
                rows.append({"queries": kind, "Motive minus": other, "measure": measure, "n": int(chosen.sum()),
                             **paired_summary(metrics["Motive (mask)"][measure][chosen],
                                              metrics[other][measure][chosen])})
    return rows


# ------------------------------------------------------------------------------------------ causal

def voting_queries(queries: list[dict], kind: str) -> list[int]:
    """The queries whose majority vote picks a kind's removal: its generated ones (the review's case), or its
    rendered ones when the artifact model generated none that shows the kind."""
    generated = [i for i, q in enumerate(queries) if q["kind"] == "generated" and q["artifact"] == kind]
    return generated or [i for i, q in enumerate(queries) if q["artifact"] == kind]


def removals(world: World, queries: list[dict], scores: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """Pool rows each arm removes: for every kind, k = its planted count, chosen by Motive / at random / at
    random among the affected motion's clips (the random draws depend on the seed)."""
    rng = np.random.default_rng(3000 + seed)
    count = len(world.records)
    arms: dict[str, list[int]] = {"− Motive top-k": [], "− k random": [], "− k random same-motion": []}
    for kind, motion in PLANTED.items():
        k = int(np.sum(world.artifacts == kind))
        voters = voting_queries(queries, kind)
        top = majority_vote(scores["Motive (mask)"][voters], world.plan.percentile, k / count).indices[:k]
        arms["− Motive top-k"] += [int(i) for i in top]
        arms["− k random"] += [int(i) for i in rng.choice(count, k, replace=False)]
        same = np.flatnonzero(world.motions == motion)
        arms["− k random same-motion"] += [int(i) for i in rng.choice(same, k, replace=False)]
    return {arm: np.array(sorted(set(rows))) for arm, rows in arms.items()}


def eval_prompts() -> list[tuple[str, str]]:
    """(caption, motion): held-out-look prompts of the affected motions, shared by every arm."""
    plan_motions = tuple(PLANTED.values())
    specs = sample_specs(40 * len(plan_motions), seed=EVAL_SEED, appearance="heldout", pan_fraction=0.0,
                         static_fraction=0.0)
    return [(caption(s), s.motion) for s in specs if s.motion in plan_motions]


def preference_pairs(world: World) -> dict[str, list[tuple[Query, Query]]]:
    """Per kind: (artifact clip, its clean twin) rendered with held-out looks, prepared for loss probes."""
    featurizer = Featurizer(world.model, AttributionSettings.from_vector_config(world.indexes["mask"].config))
    specs = sample_specs(20 * len(PLANTED), seed=EVAL_SEED + 1, appearance="heldout", pan_fraction=0.0,
                         static_fraction=0.0)
    pairs = {}
    for kind, motion in PLANTED.items():
        pairs[kind] = [tuple(Query(f"{kind}-{n}-{version.artifact}", motion, caption(version),
                                   featurizer.prepare(Video(render_clip(version), 16.0, "rendered")))
                             for version in (replace(spec, artifact=kind), spec))
                       for n, spec in enumerate([s for s in specs if s.motion == motion][:PREFERENCE_PAIRS])]
    return pairs


def preference(model: DemoVideoModel, pairs: dict[str, list[tuple[Query, Query]]]) -> dict[str, float]:
    """Per kind: mean over pairs of loss(clean twin) − loss(artifact clip) under the clip's caption, at the fixed
    (t, noise) pairs of the curation world; > 0 when the model fits the artifact version better."""
    return {kind: float(np.mean([query_losses(model, clean)["loss"] - query_losses(model, planted)["loss"]
                                 for planted, clean in kind_pairs])) for kind, kind_pairs in pairs.items()}


def evaluate(model: DemoVideoModel, world: World, classifier: FlowMotionClassifier, seed: int,
             pairs: dict[str, list[tuple[Query, Query]]]) -> dict:
    """Artifact rates and motion accuracy of generations from the evaluation prompts (noise fixed per seed)."""
    prompts = [p for motion in PLANTED.values() for p in
               [p for p in eval_prompts() if p[1] == motion][:world.plan.prompts_per_motion]]
    clips, readings = [], []
    for i, (prompt, motion) in enumerate(prompts):
        frames = generate(model, prompt, 50_000 + 1000 * seed + i, world.plan)
        clips.append(frames)
        readings.append(detect_artifact(frames))
    accuracy = motion_accuracy(classifier, clips, [m for _, m in prompts])
    out = {"accuracy": accuracy["mean"], "accuracy by motion": accuracy["per_category"],
           "preference": preference(model, pairs)}
    for kind, motion in PLANTED.items():
        mine = [r for r, (_, m) in zip(readings, prompts) if m == motion]
        out[f"{kind} rate"] = artifact_rate(mine, kind)
        out[f"{kind} scores"] = [round(getattr(r, kind), 3) for r in mine]
    return out


def run_arm(world: World, runs: Runs, arm: str, kept: np.ndarray | None, seed: int, data, classifier,
            pairs: dict[str, list[tuple[Query, Query]]]) -> dict:
    removed = [] if kept is None else sorted(set(range(len(data[1]))) - {int(i) for i in kept})
    cached = runs.get(arm, seed)
    if cached is not None and cached.get("removed pool clips") == removed:
        return cached
    start = time.perf_counter()
    recipe = world.plan.finetune
    if kept is None:
        model = DemoVideoModel.load(world.base)
    elif arm == FULL and replace(recipe, seed=seed) == DemoRecipe().artifact.finetune:
        model = world.model  # the committed artifact model is this very fine-tune
    else:
        log(f"{arm}, seed {seed}: fine-tuning on {len(kept)} clips")
        model = finetune_from(world.base, (data[0][kept], [data[1][i] for i in kept]), replace(recipe, seed=seed))
    trained = time.perf_counter() - start
    record = {"arm": arm, "seed": seed, "clips": 0 if kept is None else len(kept), "removed pool clips": removed,
              **evaluate(model, world, classifier, seed, pairs),
              "train seconds": trained, "seconds": time.perf_counter() - start}
    runs.add(record)
    log(f"  {arm}, seed {seed}: " + ", ".join(f"{k} {record[f'{k} rate']:.2f}" for k in PLANTED)
        + f", accuracy {record['accuracy']:.2f} ({record['seconds']:.0f} s)")
    return record


def arm_removals(world: World, queries: list[dict], scores: dict[str, np.ndarray], seed: int) -> dict:
    """{arm: pool rows it removes}; None for the clean model (no fine-tuning), none removed for the whole pool."""
    return {BASE: None, FULL: np.array([], int), **removals(world, queries, scores, seed)}


def causal_rows(world: World, runs: Runs, arms: dict[str, np.ndarray | None]) -> tuple[list[dict], list[dict]]:
    seeds = world.plan.seeds
    summary, per_seed = [], []
    for arm, removed in arms.items():
        done = [r for r in (runs.get(arm, s) for s in seeds) if r]
        if not done:
            continue
        planted = 0 if removed is None else int(np.sum(world.artifacts[removed] != "none"))
        row = {"arm": arm, "removed (of them planted)": "–" if removed is None else f"{len(removed)} ({planted})",
               "seeds": len(done)}
        for kind, motion in PLANTED.items():
            row[f"{kind} rate on {motion}"] = spread([r[f"{kind} rate"] for r in done])
        for kind in PLANTED:
            row[f"{kind} preference (loss gap)"] = spread([r["preference"][kind] for r in done])
        row["motion accuracy"] = spread([r["accuracy"] for r in done])
        summary.append(row)
        for r in done:
            per_seed.append({"arm": arm, "seed": r["seed"], **{f"{k} rate": r[f"{k} rate"] for k in PLANTED},
                             **{f"{k} preference": r["preference"][k] for k in PLANTED},
                             **{f"accuracy {m}": r["accuracy by motion"].get(m, float("nan")) for m in PLANTED.values()},
                             "seconds": round(r["seconds"])})
    return summary, per_seed


def finding_reading(queries: list[dict], metrics: dict) -> str:
    """The finding aim (Motive P@10 ≥ 0.8 and clearly above the same-motion oracle), checked on every query set."""
    parts = []
    for kind in ("generated", "rendered"):
        chosen = np.array([q["kind"] == kind for q in queries])
        if not chosen.any():
            continue
        motive, oracle = (metrics[m]["P@10"][chosen] for m in ("Motive (mask)", "same-motion oracle"))
        paired = paired_summary(motive, oracle)
        met = motive.mean() >= 0.8 and paired["excludes 0"] and paired["mean difference"] > 0
        parts.append(f"{kind} queries: Motive P@10 {motive.mean():.2f} vs the same-motion oracle {oracle.mean():.2f} "
                     f"(paired {paired['mean difference']:+.2f}, 95 % {paired['95 % interval']}) — aim "
                     f"{'met' if met else 'missed'}")
    return "Finding the cause, aim P@10 ≥ 0.8 and clearly above the same-motion oracle: " + "; ".join(parts) + "."


def causal_reading(world: World, runs: Runs) -> str:
    """The causal aim: Motive's removal halves the artifact rate, random removals move it less than the seed
    spread of the whole-pool arm, and motion accuracy holds."""
    seeds = world.plan.seeds

    def values(arm: str, key) -> list[float]:
        return [key(r) for r in (runs.get(arm, s) for s in seeds) if r]

    parts = []
    for kind in PLANTED:
        full = values(FULL, lambda r: r[f"{kind} rate"])
        if not full:
            continue
        spread_ = max(full) - min(full)
        motive = values("− Motive top-k", lambda r: r[f"{kind} rate"])
        randoms = {arm: values(arm, lambda r: r[f"{kind} rate"]) for arm in ("− k random", "− k random same-motion")}
        base = values(BASE, lambda r: r[f"{kind} rate"])
        text = (f"{kind}: whole pool {np.mean(full):.2f} (seed spread {spread_:.2f}), clean model "
                f"{np.mean(base):.2f}" if base else f"{kind}: whole pool {np.mean(full):.2f}")
        if motive:
            halved = np.mean(motive) <= np.mean(full) / 2 and np.mean(full) > 0
            text += f", − Motive top-k {np.mean(motive):.2f} ({'halved' if halved else 'not halved'})"
        for arm, rates in randoms.items():
            if rates:
                moved = abs(np.mean(rates) - np.mean(full))
                text += f", {arm} {np.mean(rates):.2f} ({'within' if moved <= spread_ else 'beyond'} the seed spread)"
        parts.append(text)
    for kind in PLANTED:
        gaps = {arm: values(arm, lambda r: r["preference"][kind])
                for arm in (BASE, FULL, "− Motive top-k", "− k random", "− k random same-motion")}
        if all(gaps.values()):
            parts.append(f"{kind} loss preference " + ", ".join(f"{arm} {np.mean(v):+.4f}" for arm, v in gaps.items()))
    accuracy = {arm: values(arm, lambda r: r["accuracy"]) for arm in (FULL, "− Motive top-k")}
    if all(accuracy.values()):
        parts.append(f"motion accuracy whole pool {np.mean(accuracy[FULL]):.2f}, − Motive top-k "
                     f"{np.mean(accuracy['− Motive top-k']):.2f}")
    return "Proving it causally (rates read by the detector): " + "; ".join(parts) + "."


def selection_rows(world: World, removed: dict[str, np.ndarray]) -> list[dict]:
    """What each removal (seed 0) takes out of the pool."""
    rows = []
    for arm, chosen in removed.items():
        labels = world.artifacts[chosen]
        rows.append({"arm": arm, "removed": len(chosen), **{f"planted {k}": int(np.sum(labels == k)) for k in PLANTED},
                     **{m: int(np.sum(world.motions[chosen] == m)) for m in PLANTED.values()}})
    return rows


# ------------------------------------------------------------------------------------------ main

def parse(argv: list[str] | None = None) -> tuple[Plan, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO / "precomputed"))
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--prompts", type=int, default=8, help="evaluation prompts per affected motion and arm")
    parser.add_argument("--deadline", default=None, help="UTC HH:MM after which no new fine-tune is started")
    parser.add_argument("--no-causal", action="store_true", help="finding the cause only (no fine-tuning)")
    parser.add_argument("--index", action="append", default=[], metavar="NAME=DIR",
                        help="also rank with this index over the pool (another setting of the attribution; finding only)")
    parser.add_argument("--arms", default=None, help="run only causal arms whose names contain one of these "
                        "comma-separated words (the tables show every finished arm); for splitting a run over processes")
    parser.add_argument("--quick", action="store_true", help="a tiny run for debugging (2 prompts, 2-step "
                        "fine-tunes, 1 seed)")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    plan = Plan(root=args.root, prompts_per_motion=args.prompts, seeds=tuple(int(s) for s in args.seeds.split(",")))
    if args.quick:
        plan = replace(plan, generated_per_kind=2, candidates_per_kind=4, rendered_per_kind=1, prompts_per_motion=2,
                       sample_steps=4, finetune=replace(plan.finetune, steps=2, batch_size=4), seeds=(0,))
    return plan, args


def main() -> None:
    torch.set_num_threads(1)
    plan, args = parse()
    name = args.name or ("cache/artifact-quick" if args.quick else "artifact")
    started = time.perf_counter()
    world = make_world(plan)
    log(f"world: {len(world.records)} pool clips, planted " + ", ".join(
        f"{int(np.sum(world.artifacts == k))} {k}" for k in PLANTED))
    key = plan.key(world.model.identity()["weight_hash"])
    reused = (world.cache / f"scores-{key}.npz").is_file()
    detector = json.loads(cached(world.cache / f"detector-{key}.npz",
                                 lambda: {"rows": np.array(json.dumps(detector_rows(world)))})["rows"].item())
    queries = make_queries(world)
    scores = cached(world.cache / f"scores-{key}.npz", lambda: score_queries(world, queries))
    variants = dict(item.split("=", 1) for item in args.index)
    scores = {**scores, **variant_scores(world, queries, {name: Path(d) for name, d in variants.items()})}
    metrics = ranking_metrics(world, queries, scores)
    finding_seconds = time.perf_counter() - started
    tables = {"Detector on the pool's rendered clips (share of clips read as each verdict)": detector,
              "Finding the cause: P@10 and AP of planted clips of the query's artifact kind":
                  finding_rows(world, queries, metrics),
              "Motive (mask) minus each method, per query (mean, 95 % bootstrap interval)": paired_rows(queries, metrics)}
    notes = [f"Query protocol: {protocol(world)}. Queries: {sum(q['kind'] == 'generated' for q in queries)} clips "
             f"the artifact model generated from held-out-look prompts of the affected motion and the detector "
             f"picked as showing the artifact, and {sum(q['kind'] == 'rendered' for q in queries)} rendered clips with "
             "held-out looks carrying it. Relevant: pool clips planted with the query's kind. The captions name the "
             "motion but never the artifact; the caption-only baseline and the same-motion oracle show what the "
             "motion alone gets.",
             finding_reading(queries, metrics),
             f"Finding the cause took {finding_seconds / 60:.1f} min in this process (detector on the pool, query "
             "generation, scoring" + ("; reused from the cache of an earlier run" if reused else "") + ")."]
    if not args.no_causal:
        runs = Runs(world.cache / f"runs-{plan.key(world.model.identity()['weight_hash'])}.jsonl")
        # Fine-tuning data: the whole pool folder in its own order (the artifact model's training data, static
        # clips included, which the mask index leaves out); removals name pool rows of the indexes.
        pool_clips = load_clip_folder(world.indexes["mask"].folder / world.indexes["mask"].header["data_root"])
        data = load_training_tensors(world.model, pool_clips)
        classifier = motion_classifier(Path(plan.root) / "clips", world.model.geometry)
        pairs = preference_pairs(world)
        causal_start, skipped = time.perf_counter(), []
        for seed in plan.seeds:
            for arm, removed in arm_removals(world, queries, scores, seed).items():
                if (arm == BASE and seed != plan.seeds[0]) or not selected(arm, args.arms):
                    continue
                if runs.reload().get(arm, seed) is None and past_deadline(args.deadline, 0):
                    skipped.append(f"{arm} (seed {seed})")
                    continue
                gone = set() if removed is None else {world.records[i]["id"] for i in removed}
                kept = None if removed is None else np.array([i for i, c in enumerate(pool_clips) if c.id not in gone])
                run_arm(world, runs, arm, kept, seed, data, classifier, pairs)
        removed0 = removals(world, queries, scores, plan.seeds[0])
        arms0 = arm_removals(world, queries, scores, plan.seeds[0])
        summary, per_seed = causal_rows(world, runs, arms0)
        notes.append(causal_reading(world, runs))
        tables["Proving it causally: artifact rate of generations after re-fine-tuning without each removal"] = summary
        tables["Per seed"] = per_seed
        tables[f"What each removal takes out (seed {plan.seeds[0]})"] = selection_rows(world, removed0)
        recipe = plan.finetune
        notes += [f"Causal: every arm re-fine-tunes the clean model ({repo_relative(Path(plan.root) / 'model')}) with the artifact model's "
                  f"recipe ({recipe.steps} steps, batch {recipe.batch_size}, lr {recipe.lr:g}, {recipe.loss_space} loss "
                  f"with temporal weight {recipe.temporal_weight:g}) from the training seed; k = the clips planted with "
                  "each kind, Motive's top-k by majority vote over that kind's generated queries (its rendered ones where "
                  "none was generated; voters: " + ", ".join(f"{k} {len(voting_queries(queries, k))} "
                  f"{queries[voting_queries(queries, k)[0]]['kind']}" for k in PLANTED) + "; percentile "
                  f"{plan.percentile:g}); random draws per seed. Evaluation: {plan.prompts_per_motion} held-out-look "
                  f"prompts per affected motion ({', '.join(PLANTED.values())}), {plan.sample_steps} Euler steps, "
                  f"guidance {plan.guidance:g}, noise fixed per seed and shared by every arm; rate = share the "
                  "detector reads as the kind; motion accuracy = the flow classifier (fitted on the clean model's "
                  "training clips) agrees with the prompted motion; preference = flow-matching loss of the clean twin minus "
                  f"that of the artifact version, mean over {PREFERENCE_PAIRS} held-out-look pairs per kind at the fixed "
                  "(t, noise) pairs of bench_curation (> 0: the model fits the artifact better; a generation-free, "
                  "more sensitive read of the same effect). Cells: mean [min, max] over seeds.",
                  f"The causal study took {(time.perf_counter() - causal_start) / 60:.1f} min in this process; its "
                  f"arms recorded {sum(r['seconds'] for r in runs.records.values()) / 60:.1f} min of fine-tuning and "
                  "evaluation in all (process time of each arm, whichever process ran it; arms run side by side "
                  "with --arms overlap in wall time).",
                  *([f"Not run (deadline): {', '.join(skipped)}."] if skipped else [])]
    notes.append(f"This process: {(time.perf_counter() - started) / 60:.1f} min on a shared 2-core CPU, niced, one "
                 "torch thread.")
    notes.append(f"Artifact world: pool clip list {clip_list_sha(load_clip_folder(world.art / 'clips'))[:16]}, artifact model "
                 f"weights {world.model.identity()['weight_hash']}, fine-tuned from the demo model recorded above.")
    save(name, {t: rows for t, rows in tables.items() if rows}, notes, model=world.base,
         extra={"plan": {**asdict(plan), "root": repo_relative(Path(plan.root))}, "queries": [{k: v for k, v in q.items() if k != "frames"} for q in queries],
                "per_query": {m: {k: v.tolist() for k, v in d.items()} for m, d in metrics.items()}})


if __name__ == "__main__":
    main()
