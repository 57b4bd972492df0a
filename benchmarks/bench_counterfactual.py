"""Counterfactual check of the attribution (the paper has none).

For one query motion m: fine-tune the base on the pool WITHOUT the top-k Motive clips of m's queries
(majority vote over those queries) and, separately, without k random clips; the reference is the base
fine-tuned on the whole pool (the "all pool" arm of bench_curation, shared through the runs file).
Same steps, learning rate and seeds everywhere. If the attribution is real, removing its top-k should
hurt the model on m clearly more than removing k random clips: a larger rise of the flow-matching loss on
m's query clips (at fixed (t, noise) pairs), a larger drop in how often generated clips of m's prompts
show m, and little change on the other motions' queries (the control).

The world (pool, indexes, queries, prompts, classifier) is ``benchmarks.common.curation``'s; see its docstring.

  python -m benchmarks.bench_counterfactual [--cf-motions bounce,spin] [--wait 20] [--k 30] [--seeds 0,1] [--quick]
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common.curation import (BASE, LOSS_T_INDICES, World, compute_note, design_notes, make_world, parse_plan,
                                        run_arm)
from benchmarks.common.results import log, save
from benchmarks.common.runs import Runs, past_deadline, selected, spread
from motive_core.attribution.scoring import majority_vote, selection_size

REFERENCE = "all pool"


def removal_arms(world: World, motion: str, k: int, seed: int) -> dict[str, np.ndarray]:
    """Pool rows kept by each removal arm: minus m's top-k Motive clips, minus k random clips."""
    count = len(world.pool)
    top = majority_vote(world.score_matrix("mask", (motion,)), world.plan.percentile, k / count).indices[:k]
    rand = np.random.default_rng(2000 + seed).choice(count, k, replace=False)
    return {f"pool − top-{k} Motive ({motion})": np.setdiff1d(np.arange(count), top),
            f"pool − {k} random": np.setdiff1d(np.arange(count), rand)}


def measures(record: dict, world: World, motion: str) -> dict[str, float]:
    """Loss on m's queries and on the other queries, accuracy on m's prompts and on the others'."""
    target = [v for q, v in record["query losses"].items() if q.endswith(f"-{motion}")]
    control = [v for q, v in record["query losses"].items() if not q.endswith(f"-{motion}")]
    others = [a for m, a in record["accuracy by motion"].items() if m != motion]
    return {"target query loss": float(np.mean([x["loss"] for x in target])),
            "target query motion loss": float(np.mean([x["motion loss"] for x in target])),
            "control query loss": float(np.mean([x["loss"] for x in control])) if control else float("nan"),
            f"accuracy on {motion}": record["accuracy by motion"][motion],
            "accuracy on other motions": float(np.mean(others)) if others else float("nan"),
            f"dynamic degree on {motion}": record["dynamic by motion"][motion]}


def removed_share(world: World, kept: list[int], motion: str) -> str:
    """How many removed clips show m, of how many removed."""
    removed = sorted(set(range(len(world.pool))) - set(kept))
    return f"{sum(world.clip_motion(i) == motion for i in removed)}/{len(removed)}"


def summary(world: World, runs: Runs, arms: list[str], motion: str) -> tuple[list[dict], list[dict], list[dict]]:
    """Per arm (spread over seeds), per arm minus the reference within each seed, and losses by t."""
    seeds = world.plan.seeds
    rows, deltas, by_t = [], [], []
    for arm in arms:
        done = [r for r in (runs.get(arm, s) for s in seeds) if r]
        if not done:
            continue
        values = [measures(r, world, motion) for r in done]
        removed = "–" if arm == BASE else removed_share(world, done[0]["rows"], motion)
        rows.append({"arm": arm, f"removed (of them {motion})": removed, "seeds": len(done),
                     **{key: spread([v[key] for v in values]) for key in values[0]}})
        for r in done:
            target = [v for q, v in r["query losses"].items() if q.endswith(f"-{motion}")]
            by_t.append({"arm": arm, "seed": r["seed"], **{f"target loss t={t}": float(np.mean(
                [x["loss by t"][str(t)] for x in target])) for t in LOSS_T_INDICES}})
        if arm in (BASE, REFERENCE):
            continue
        pairs = [(runs.get(arm, s), runs.get(REFERENCE, s)) for s in seeds]
        diffs = [{k: measures(a, world, motion)[k] - measures(b, world, motion)[k] for k in values[0]}
                 for a, b in pairs if a and b]
        if diffs:
            deltas.append({"arm − all pool": arm, **{k: " / ".join(f"{d[k]:+.4f}" for d in diffs) for k in diffs[0]}})
    return rows, deltas, by_t


def effect_rows(world: World, runs: Runs, arms: list[str], motion: str) -> list[dict]:
    """(minus Motive) − (minus random), per seed: the counterfactual effect of the attribution."""
    motive, rand = arms
    rows = []
    for seed in world.plan.seeds:
        a, b = runs.get(motive, seed), runs.get(rand, seed)
        if a and b:
            ma, mb = measures(a, world, motion), measures(b, world, motion)
            rows.append({"seed": seed, **{k: f"{ma[k] - mb[k]:+.4f}" for k in ma}})
    return rows


def wait_for(runs: Runs, arm: str, seed: int, minutes: float) -> None:
    """Poll the shared runs file until ``arm`` (trained by bench_curation) appears or time runs out."""
    end = time.time() + 60 * minutes
    while runs.reload().get(arm, seed) is None and time.time() < end:
        time.sleep(20)


def main() -> None:
    torch.set_num_threads(1)
    plan, args = parse_plan(__doc__.splitlines()[0])
    name = args.name or ("cache/counterfactual-quick" if args.quick else "counterfactual")
    started = time.perf_counter()
    world = make_world(plan)
    motions = tuple(args.cf_motions.split(",")) if args.cf_motions else plan.motions[:1]
    k = args.k or selection_size(plan.fraction, len(world.pool))
    runs = world.runs()
    log(f"counterfactual for {', '.join(motions)}: k = {k} of {len(world.pool)} pool clips; runs file {runs.path}")
    skipped, last = [], 0.0
    todo = [(m, seed, arm, rows) for m in motions for seed in plan.seeds for arm, rows in removal_arms(world, m, k, seed).items()]
    todo += [(None, seed, arm, rows) for seed in plan.seeds
             for arm, rows in ((REFERENCE, np.arange(len(world.pool))), (BASE, None))]
    for motion, seed, arm, rows in todo:
        if not selected(arm, args.arms):
            continue
        if motion is None and args.wait:
            wait_for(runs, arm, seed, args.wait)
        if runs.reload().get(arm, seed) is None and past_deadline(args.deadline, last):
            skipped.append(f"{arm} (seed {seed})")
            continue
        record = run_arm(world, runs, arm, rows, seed)
        last = max(last, record["seconds"]) if rows is not None else last
        write(world, runs.reload(), motions, k, name, started, skipped)
    log(f"finished in {(time.perf_counter() - started) / 60:.1f} min")


def arms_of(world: World, motions: tuple[str, ...], k: int) -> list[str]:
    """Every arm the counterfactual tables use, each once."""
    return list(dict.fromkeys([BASE, REFERENCE, *(a for m in motions for a in removal_arms(world, m, k, 0))]))


def write(world: World, runs: Runs, motions: tuple[str, ...], k: int, name: str, started: float,
          skipped: list[str]) -> None:
    tables = {}
    for motion in motions:
        arms = [BASE, REFERENCE, *removal_arms(world, motion, k, 0)]
        rows, deltas, by_t = summary(world, runs, arms, motion)
        tables.update({f"Counterfactual ({motion}): per arm, mean [min, max] over seeds": rows,
                       f"Counterfactual ({motion}): arm minus the all-pool reference, per seed": deltas,
                       f"Counterfactual ({motion}): effect of the attribution, (pool − top-{k} Motive) minus "
                       f"(pool − {k} random), per seed": effect_rows(world, runs, arms[2:], motion),
                       f"Counterfactual ({motion}): loss on the {motion} queries by timestep index "
                       "(mean over the noise draws)": by_t})
    notes = design_notes(world, [
        f"Counterfactual, per query motion m in {', '.join(motions)}: top-{k} = majority vote over m's "
        f"{world.plan.queries_per_motion} query clips on the Motive (mask) index; random = {k} pool clips drawn per "
        f"seed (the same draw for every m, so that arm is shared). Reference = the base fine-tuned on the whole pool ({len(world.pool)} clips) with the same steps and "
        "seed (bench_curation's all-pool arm). Target query loss: m's queries; control: the other target motions' "
        "queries. A real attribution gives a clearly positive effect on the target loss, a clearly negative one on "
        "the accuracy on m, and about zero on the controls.",
        compute_note(runs, arms_of(world, motions, k), world.plan.seeds, started)]
        + ([f"Not run (time limit): {', '.join(skipped)}."] if skipped else []))
    arms = arms_of(world, motions, k)
    save(name, {title: t for title, t in tables.items() if t}, notes, model=Path(world.plan.root) / "model",
         extra={"motions": list(motions), "k": k,
                "runs": [runs.get(a, s) for s in world.plan.seeds for a in arms if runs.get(a, s)]})


if __name__ == "__main__":
    main()
