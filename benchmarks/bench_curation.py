"""Curation, the paper's Table 1 in miniature.

The world (base model, pool and its two indexes, held-out-look queries, evaluation prompts, classifier) is
``benchmarks.common.curation``'s; see its docstring. The arms are copies of the base fine-tuned with the same
steps, learning rate and seed on:
  (a) the Motive majority-vote top 10 % of the pool for the queries (percentile 90, fraction 0.1),
  (b) a random 10 %, (c) the whole pool, (d) the no-mask majority-vote top 10 %,
  (e) the 10 % with the largest mean motion magnitude; plus the base itself, not fine-tuned.
Each is scored with the VBench-style proxies of ``motive_core.eval.metrics`` (dynamic degree, motion
smoothness, subject consistency), the flow classifier's motion accuracy and the flow-matching loss of the
query clips at fixed (t, noise) pairs. The tables are rewritten after every finished arm, so an interrupted
run still leaves a table; a rerun skips finished arms.

  python -m benchmarks.bench_curation [--root precomputed] [--steps 120] [--seeds 0,1] [--quick]
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from benchmarks.common.curation import (ARMS, BASE, PROMPT_SEED, World, compute_note, design_notes, heldout_clips,
                                        make_world, parse_plan, run_arm)
from benchmarks.common.results import log, repo_relative, save
from benchmarks.common.runs import Runs, past_deadline, selected, spread
from motive_core.attribution.scoring import majority_vote, selection_size
from motive_core.eval.metrics import (dynamic_degree, dynamic_degree_score, motion_accuracy, motion_smoothness,
                                      subject_consistency)
from motive_core.video import standardize

# -------------------------------------------------------------------------------- selections

def pool_magnitude(world: World) -> np.ndarray:
    """Mean motion magnitude (px/frame) of each pool clip, from the no-mask index's records."""
    records = {r["id"]: r for r in world.indexes["no mask"].clips}
    return np.array([records[c.id]["motion"]["motion_mean"] for c in world.pool])


def selections(world: World, seed: int) -> dict[str, np.ndarray]:
    """Pool rows of each arm's fine-tuning set (the random one depends on the seed)."""
    plan, count = world.plan, len(world.pool)
    k = selection_size(plan.fraction, count)
    magnitude = pool_magnitude(world)
    return {"all pool": np.arange(count),
            "Motive top 10 %": majority_vote(world.score_matrix("mask"), plan.percentile, plan.fraction).indices,
            "random 10 %": np.sort(np.random.default_rng(1000 + seed).choice(count, k, replace=False)),
            "no-mask top 10 %": majority_vote(world.score_matrix("no mask"), plan.percentile, plan.fraction).indices,
            "largest motion 10 %": np.argsort(-magnitude, kind="stable")[:k]}


def selection_rows(world: World, chosen: dict[str, np.ndarray]) -> list[dict]:
    """What each selection holds: size, share of target-motion clips, per-target counts, mean magnitude."""
    magnitude = pool_magnitude(world)
    rows = []
    for name, rows_ in chosen.items():
        motions = [world.clip_motion(i) for i in rows_]
        row = {"selection": name, "clips": len(rows_),
               "target-motion share": float(np.mean([m in world.plan.motions for m in motions]))}
        row.update({m: motions.count(m) for m in world.plan.motions})
        row["mean motion (px/frame)"] = float(magnitude[rows_].mean())
        rows.append(row)
    return rows


def attribution_rows(world: World) -> list[dict]:
    """Same-motion precision of each query motion's top 10 % of the pool, Motive vs no mask (chance ≈ 0.1)."""
    k = selection_size(world.plan.fraction, len(world.pool))
    motions = np.array([c.labels["motion"] for c in world.pool])
    rows = []
    for motion in world.plan.motions:
        row = {"query motion": motion, "top k": k}
        for index in ("mask", "no mask"):
            hits = [np.mean(motions[np.argsort(-q.scores[index], kind="stable")[:k]] == motion)
                    for q in world.queries if q.motion == motion]
            row[f"P@{k} {'Motive' if index == 'mask' else 'no mask'}"] = float(np.mean(hits))
        row["chance"] = float(np.mean(motions == motion))
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------ tables

METRICS = ("motion accuracy", "dynamic degree", "motion smoothness", "subject consistency", "query loss",
           "query motion loss")


def metric_values(record: dict, world: World) -> dict[str, float]:
    losses = record["query losses"].values()
    return {**{m: record[m] for m in METRICS[:4]}, "query loss": float(np.mean([x["loss"] for x in losses])),
            "query motion loss": float(np.mean([x["motion loss"] for x in losses]))}


def summary_rows(world: World, runs: Runs, arms: list[str], seeds: tuple[int, ...]) -> list[dict]:
    rows = []
    for arm in arms:
        done = [runs.get(arm, s) for s in seeds if runs.get(arm, s)]
        if not done:
            continue
        values = [metric_values(r, world) for r in done]
        rows.append({"arm": arm, "clips": done[0]["clips"], "seeds": len(done),
                     **{m: spread([v[m] for v in values]) for m in METRICS}})
    return rows


def per_seed_rows(world: World, runs: Runs, arms: list[str], seeds: tuple[int, ...]) -> list[dict]:
    rows = []
    for seed in seeds:
        for arm in arms:
            record = runs.get(arm, seed)
            if record:
                rows.append({"seed": seed, "arm": arm, **metric_values(record, world),
                             **{f"acc {m}": record["accuracy by motion"].get(m, float("nan"))
                                for m in world.plan.motions}})
    return rows


def paired_rows(world: World, runs: Runs, arms: list[str], seeds: tuple[int, ...], reference: str) -> list[dict]:
    """Arm minus ``reference`` within each seed (same prompts and noise), listed per seed."""
    rows = []
    for arm in arms:
        if arm == reference:
            continue
        pairs = [(runs.get(arm, s), runs.get(reference, s)) for s in seeds]
        pairs = [(a, b) for a, b in pairs if a and b]
        if not pairs:
            continue
        diffs = [{m: metric_values(a, world)[m] - metric_values(b, world)[m] for m in METRICS} for a, b in pairs]
        rows.append({"arm": arm, **{m: " / ".join(f"{d[m]:+.3f}" for d in diffs) for m in METRICS}})
    return rows


def reference_rows(world: World) -> list[dict]:
    """The same metrics on real rendered clips of the evaluation prompts: what 'right' looks like here."""
    rendered = heldout_clips(world.plan, world.plan.prompts_per_motion, PROMPT_SEED)
    g = world.geometry
    clips = [standardize(c["video"], g.num_frames, g.fps, g.height, g.width) for c in rendered]
    accuracy = motion_accuracy(world.classifier, clips, [c["motion"] for c in rendered])
    return [{"clips": "rendered (ground truth) for the evaluation prompts", "motion accuracy": accuracy["mean"],
             "dynamic degree": dynamic_degree_score([dynamic_degree(c, g.fps) for c in clips]),
             "motion smoothness": float(np.mean([motion_smoothness(c) for c in clips])),
             "subject consistency": float(np.mean([subject_consistency(c) for c in clips]))}]


def write_tables(world: World, runs: Runs, chosen: dict[str, np.ndarray], name: str, reference: list[dict],
                 started: float, skipped: list[str]) -> None:
    arms, seeds = [BASE, *ARMS], world.plan.seeds
    notes = design_notes(world, [compute_note(runs, arms, seeds, started)]
                         + ([f"Not run (time limit): {', '.join(skipped)}."] if skipped else []))
    tables = {"Curation: generated motion and VBench-style metrics per fine-tuning set": summary_rows(world, runs, arms, seeds),
              "Difference from the random 10 % arm, per seed (same prompts and noise)":
                  paired_rows(world, runs, arms, seeds, "random 10 %"),
              "Per seed": per_seed_rows(world, runs, arms, seeds),
              "What each selection holds (random: seed 0)": selection_rows(world, chosen),
              "Attribution precision on the pool: share of each query's top 10 % showing the query's motion":
                  attribution_rows(world),
              "Reference: rendered clips": reference}
    save(name, {title: rows for title, rows in tables.items() if rows}, notes, model=Path(world.plan.root) / "model",
         extra={"plan": {**asdict(world.plan), "root": repo_relative(world.plan.root)},
                "runs": [runs.get(a, s) for s in seeds for a in arms if runs.get(a, s)]})


# -------------------------------------------------------------------------------------- main

def run_order(seeds: tuple[int, ...]) -> list[tuple[int, str]]:
    """(seed, arm) pairs, the central comparison first so that a run cut short still has a spread for it:
    the first seed's base, Motive, random and all-pool arms; base, Motive and random for every other seed;
    then the remaining arms seed by seed."""
    first = [(seeds[0], arm) for arm in (BASE, "Motive top 10 %", "random 10 %", "all pool")]
    key = [(seed, arm) for seed in seeds[1:] for arm in (BASE, "Motive top 10 %", "random 10 %")]
    rest = [(seed, arm) for seed in seeds for arm in (BASE, *ARMS) if (seed, arm) not in first + key]
    return first + key + rest


def main() -> None:
    torch.set_num_threads(1)
    plan, args = parse_plan(__doc__.splitlines()[0])
    name = args.name or ("cache/curation-quick" if args.quick else "curation")
    started = time.perf_counter()
    world = make_world(plan)
    runs = world.runs()
    log(f"world ready: {len(world.pool)} pool clips, {len(world.queries)} queries, {len(world.prompts)} prompts; "
        f"runs file {runs.path}")
    reference = reference_rows(world)
    skipped, last = [], 0.0
    for seed, arm in run_order(plan.seeds):
        if not selected(arm, args.arms):
            continue
        rows = None if arm == BASE else selections(world, seed)[arm]
        if runs.reload().get(arm, seed) is None and past_deadline(args.deadline, last):
            skipped.append(f"{arm} (seed {seed})")
            continue
        record = run_arm(world, runs, arm, rows, seed)
        last = max(last, record["seconds"]) if rows is not None else last
        write_tables(world, runs, selections(world, plan.seeds[0]), name, reference, started, skipped)
    write_tables(world, runs, selections(world, plan.seeds[0]), name, reference, started, skipped)
    log(f"finished in {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
