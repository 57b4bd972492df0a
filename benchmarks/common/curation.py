"""The curation world shared by bench_curation and bench_counterfactual (CPU-sized; every number is an option).

  base   the trained demo model (``<root>/model``, trained on ``<root>/clips``).
  pool   a fresh set of MotionShapes clips (``sample_specs(300, seed=7)``, training looks), written to
         benchmarks/results/cache/ (never committed) and indexed twice with the engine: Motive's motion
         mask and the no-mask baseline (W ≡ 1), same settings as the demo index.
  queries clips with held-out looks (``appearance="heldout"``) of a few target motions (3 × 2), with their
         scores on both pool indexes.
  arms   copies of the base fine-tuned on a subset of the pool (``run_arm``), all with the same steps,
         learning rate and seed, evaluated on clips generated from held-out-look prompts of the target
         motions (fixed prompts; noise seeds fixed per training seed, shared by all arms) with the
         VBench-style proxies of ``motive_core.eval.metrics`` and the flow classifier's motion accuracy,
         plus the flow-matching loss of the query clips at fixed (t, noise) pairs.
Every finished arm is appended to a runs file in the cache, so an interrupted study resumes and the two
studies share the arms they have in common (the base and the whole pool).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.common.features import motion_classifier
from benchmarks.common.queries import heldout_queries
from benchmarks.common.results import REPO, cache_root, log, repo_relative
from benchmarks.common.runs import Runs, StudyPlan
from motive_core.attribution.loss import per_location_error
from motive_core.build import compute_unit, run_build
from motive_core.data import Clip, load_clip_folder
from motive_core.demo.model import DemoVideoModel
from motive_core.demo.motionshapes import caption, heldout_appearance, sample_specs, write_clip_folder
from motive_core.demo.train import TrainConfig, load_training_tensors, train
from motive_core.demo.world import DemoRecipe
from motive_core.eval.metrics import (FlowMotionClassifier, dynamic_degree, dynamic_degree_score, motion_accuracy,
                                      motion_smoothness, subject_consistency)
from motive_core.featurize import Featurizer, PreparedClip
from motive_core.index import CONFIG, AttributionIndex, prepare_build
from motive_core.models.flow import fixed_noise, noise_at_index, sample

QUERY_SEED, PROMPT_SEED = 100, 200  # held-out-look specs for the queries and for the evaluation prompts
LOSS_T_INDICES, LOSS_NOISE_SEEDS = (250, 500, 750), (101, 102, 103)  # fixed (t, ε) pairs for the query loss
ARMS = ("all pool", "Motive top 10 %", "random 10 %", "no-mask top 10 %", "largest motion 10 %")  # run order
BASE = "base (no fine-tuning)"
FINETUNE = TrainConfig(steps=120, batch_size=16, lr=1e-4, warmup=10)  # every arm's recipe: plain flow-matching loss


@dataclass(frozen=True)
class Plan(StudyPlan):
    """Everything that changes an arm's result (the runs file is keyed by its hash)."""

    pool_size: int = 300
    pool_seed: int = 7
    motions: tuple[str, ...] = ("bounce", "spin", "swing")
    queries_per_motion: int = 2
    fraction: float = 0.1
    prompts_per_motion: int = 6
    finetune: TrainConfig = FINETUNE

    def key(self) -> str:
        """Hash of everything but the seeds. The recipe enters by the fields a plan varies (steps, batch size,
        learning rate, warm-up), so that runs files written before the recipe was a TrainConfig keep their names."""
        data = {k: v for k, v in self.identity().items() if k != "finetune"}
        data.update({k: getattr(self.finetune, k) for k in ("steps", "batch_size", "lr", "warmup")})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]

    def train_config(self, seed: int) -> TrainConfig:
        return replace(self.finetune, seed=seed, log_every=max(1, self.finetune.steps // 4))


QUICK = dict(pool_size=20, motions=("bounce", "spin"), queries_per_motion=1,
             finetune=replace(FINETUNE, steps=2, batch_size=4), prompts_per_motion=1, sample_steps=2, seeds=(0,))


# --------------------------------------------------------------------------------- the world

@dataclass
class Query:
    """A held-out-look clip of a target motion, standardised, with its masks and attribution scores."""

    name: str
    motion: str
    caption: str
    prepared: PreparedClip
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # index name → (N,) cosine scores


@dataclass
class World:
    plan: Plan
    cache: Path  # per base model
    pool: list[Clip]  # in index row order
    indexes: dict[str, AttributionIndex]
    queries: list[Query]
    prompts: list[tuple[str, str]]  # (caption, motion)
    classifier: FlowMotionClassifier
    geometry: object

    @property
    def base_path(self) -> Path:
        return Path(self.plan.root) / "model"

    def score_matrix(self, index: str, motions: tuple[str, ...] | None = None) -> np.ndarray:
        return np.stack([q.scores[index] for q in self.queries if motions is None or q.motion in motions])

    def clip_motion(self, i: int) -> str:
        return self.pool[i].labels["motion"]

    def runs(self) -> Runs:
        """The finished arms of this world's plan (one runs file per base model and plan)."""
        return Runs(self.cache / f"runs-{self.plan.key()}.jsonl")


def pool_clips(plan: Plan) -> Path:
    """Render the fine-tuning pool once (it does not depend on the model).

    The folder is named after the specs and their captions, so a pool cached before the caption wording
    changed is not reused.
    """
    specs = sample_specs(plan.pool_size, seed=plan.pool_seed)
    tag = hashlib.sha256("".join(f"{spec!r}{caption(spec)}" for spec in specs).encode()).hexdigest()[:8]
    folder = cache_root() / f"pool-{plan.pool_size}-seed{plan.pool_seed}-{tag}"
    if not (folder / "metadata.jsonl").is_file():
        log(f"rendering {plan.pool_size} pool clips into {folder}")
        tmp = folder.with_name(folder.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        recipe = DemoRecipe()
        write_clip_folder(tmp, specs, num_frames=recipe.clip_frames, size=recipe.clip_size, fps=recipe.clip_fps)
        tmp.rename(folder)
    return folder


def heldout_clips(plan: Plan, per_motion: int, seed: int) -> list[dict]:
    """Rendered held-out-look clips (bench_retrieval's query sets) of the target motions, ``per_motion`` each."""
    clips = heldout_queries(heldout_appearance(), per_motion, 0, None, seed=seed)
    return sorted((c for c in clips if c["motion"] in plan.motions), key=lambda c: plan.motions.index(c["motion"]))


def featurizers(model: DemoVideoModel) -> dict[str, Featurizer]:
    """The demo's index settings at one timestep (without the ensemble the demo adopted later), as the
    recorded curation and counterfactual studies were measured and their cached pool indexes built."""
    base = replace(DemoRecipe().settings, t_ensemble="")
    return {"mask": Featurizer(model, replace(base, use_mask=True)),
            "no mask": Featurizer(model, replace(base, use_mask=False))}


def build_pool_indexes(pool: Path, folder: Path, feats: dict[str, Featurizer], model_spec: str) -> dict[str, AttributionIndex]:
    """Index the pool under both settings; motion (decode, flow, mask) is computed once per clip. The index
    folders are named after the pool, so a quick run's small pool never reuses the full pool's indexes."""
    prepared: dict[str, PreparedClip] = {}

    def prepare(clip: Clip) -> PreparedClip:
        if clip.id not in prepared:
            prepared[clip.id] = feats["mask"].prepare_file(clip.file)
        return prepared[clip.id]

    indexes = {}
    for name, featurizer in feats.items():
        out = folder / f"{pool.name}-{'index-motion' if name == 'mask' else 'index-nomask'}"
        done = (out / CONFIG).is_file() and json.loads((out / CONFIG).read_text()).get("complete")
        if not done:
            log(f"indexing the pool ({name}) into {out}")
            build = prepare_build(pool, out, featurizer.config(), featurizer.settings.proj_dim, model_spec=model_spec)
            summary = run_build(build, lambda p, pending: ((u, compute_unit(featurizer, p, u, prepare)) for u in pending))
            log(f"  {summary['indexed']} clips in {summary['seconds']:.0f} s")
        indexes[name] = AttributionIndex(out)
    return indexes


def common_rows(indexes: dict[str, AttributionIndex]) -> dict[str, np.ndarray]:
    """Rows, per index, of the clips present in every index (a motionless clip has a zero motion-masked
    gradient, so the mask index leaves it out), in the mask index's order."""
    ids = [{r["id"]: i for i, r in enumerate(index.clips)} for index in indexes.values()]
    shared = [r["id"] for r in indexes["mask"].clips if all(r["id"] in m for m in ids)]
    return {name: np.array([m[i] for i in shared]) for name, m in zip(indexes, ids)}


def make_world(plan: Plan) -> World:
    """Pool, indexes, queries (with their scores), evaluation prompts and classifier; all cached."""
    root = Path(plan.root)
    model = DemoVideoModel.load(root / "model")
    cache = cache_root() / f"base-{model.identity()['weight_hash']}"
    cache.mkdir(exist_ok=True)
    pool_folder = pool_clips(plan)
    feats = featurizers(model)
    indexes = build_pool_indexes(pool_folder, cache, feats, str(root / "model"))
    by_id = {c.id: c for c in load_clip_folder(pool_folder)}
    rows = common_rows(indexes)
    pool = [by_id[indexes["mask"].clips[i]["id"]] for i in rows["mask"]]
    queries = []
    for n, clip in enumerate(heldout_clips(plan, plan.queries_per_motion, QUERY_SEED)):
        query = Query(f"q{n}-{clip['motion']}", clip["motion"], clip["caption"], feats["mask"].prepare(clip["video"]))
        for name, featurizer in feats.items():
            query.scores[name] = indexes[name].scores(featurizer.vector(query.prepared, query.caption))[rows[name]]
        queries.append(query)
    prompts = [(c["caption"], c["motion"]) for c in heldout_clips(plan, plan.prompts_per_motion, PROMPT_SEED)]
    return World(plan, cache, pool, indexes, queries, prompts, motion_classifier(root / "clips", model.geometry), model.geometry)


# ---------------------------------------------------------------------------------- training

_FRAMES: dict[str, torch.Tensor] = {}


def training_tensors(model: DemoVideoModel, clips: list) -> tuple[torch.Tensor, list[str]]:
    """``load_training_tensors`` with each clip decoded only once per process (the arms reuse the pool)."""
    missing = [c for c in clips if str(c.file) not in _FRAMES]
    if missing:
        videos, _ = load_training_tensors(model, missing)
        _FRAMES.update({str(c.file): v for c, v in zip(missing, videos)})
    return torch.stack([_FRAMES[str(c.file)] for c in clips]), [c.caption for c in clips]


def finetune(world: World, rows: np.ndarray, seed: int) -> DemoVideoModel:
    """A fresh copy of the base fine-tuned on the given pool rows (plain flow-matching loss)."""
    model = DemoVideoModel.load(world.base_path)
    train(model, training_tensors(model, [world.pool[i] for i in rows]), world.plan.train_config(seed),
          progress=False)
    return model


# -------------------------------------------------------------------------------- evaluation

@torch.no_grad()
def query_losses(model: DemoVideoModel, query: Query) -> dict[str, float]:
    """Flow-matching loss of a query clip under its caption, mean over the fixed (t, ε) pairs: plain, and
    weighted by the query's motion mask (normalised by the mask's mean, so both are per-location errors)."""
    latents = model.encode(query.prepared.frames)
    condition = model.encode_prompt(query.caption)
    weight = torch.from_numpy(query.prepared.latent_mask).unsqueeze(0)
    plain, moving = {}, {}
    for t_index in LOSS_T_INDICES:
        for noise_seed in LOSS_NOISE_SEEDS:
            noised = noise_at_index(model.scheduler, latents, t_index, fixed_noise(model.latent_shape(), noise_seed))
            error = per_location_error(model.predict(noised.noisy, noised.timestep, condition), noised.target)
            plain.setdefault(t_index, []).append(float(error.mean()))
            moving.setdefault(t_index, []).append(float((error * weight).mean() / weight.mean().clamp_min(1e-8)))
    return {"loss": float(np.mean(list(plain.values()))), "motion loss": float(np.mean(list(moving.values()))),
            "loss by t": {str(t): float(np.mean(v)) for t, v in plain.items()},
            "motion loss by t": {str(t): float(np.mean(v)) for t, v in moving.items()}}


def generate_and_score(model: DemoVideoModel, world: World, seed: int) -> dict:
    """Generate one clip per evaluation prompt (noise seed fixed by the training seed) and score them."""
    plan, fps = world.plan, model.geometry.fps
    clips, per_clip = [], []
    for i, (prompt, motion) in enumerate(world.prompts):
        frames = sample(model, prompt, seed=10_000 * (seed + 1) + i, steps=plan.sample_steps, guidance=plan.guidance)
        clips.append(frames)
        per_clip.append({"dynamic": dynamic_degree(frames, fps), "smoothness": motion_smoothness(frames),
                         "consistency": subject_consistency(frames)})
    accuracy = motion_accuracy(world.classifier, clips, [m for _, m in world.prompts])
    return {"dynamic degree": dynamic_degree_score([c["dynamic"] for c in per_clip]),
            "motion smoothness": float(np.mean([c["smoothness"] for c in per_clip])),
            "subject consistency": float(np.mean([c["consistency"] for c in per_clip])),
            "motion accuracy": accuracy["mean"], "accuracy by motion": accuracy["per_category"],
            "predicted": accuracy["predicted"],
            "dynamic by motion": {m: float(np.mean([c["dynamic"] for c, (_, pm) in zip(per_clip, world.prompts)
                                                    if pm == m])) for m in plan.motions}}


def evaluate(model: DemoVideoModel, world: World, seed: int) -> dict:
    return {**generate_and_score(model, world, seed),
            "query losses": {q.name: query_losses(model, q) for q in world.queries}}


def run_arm(world: World, runs: Runs, arm: str, rows: np.ndarray | None, seed: int, extra: dict | None = None) -> dict:
    """Fine-tune (unless ``rows`` is None: the base) and evaluate one arm, or return its cached record."""
    cached = runs.get(arm, seed)
    if cached is not None:
        return cached
    start = time.perf_counter()
    log(f"{arm}, seed {seed}: " + ("evaluating the base" if rows is None else f"fine-tuning on {len(rows)} clips"))
    model = DemoVideoModel.load(world.base_path) if rows is None else finetune(world, rows, seed)
    trained = time.perf_counter() - start
    record = {"arm": arm, "seed": seed, "clips": 0 if rows is None else len(rows),
              "rows": [] if rows is None else [int(i) for i in rows], **evaluate(model, world, seed), **(extra or {}),
              "train seconds": trained, "seconds": time.perf_counter() - start}
    runs.add(record)
    log(f"  done in {record['seconds']:.0f} s (train {trained:.0f} s): accuracy {record['motion accuracy']:.3f}, "
        f"dynamic {record['dynamic degree']:.3f}")
    return record


# -------------------------------------------------------------------- notes and command line

def design_notes(world: World, extra: list[str] | None = None) -> list[str]:
    p = world.plan
    root = repo_relative(p.root)
    return [f"Design: base = {root}/model (the demo model, trained on {root}/clips). Pool = {len(world.pool)} "
            f"fresh MotionShapes clips (sample_specs({p.pool_size}, seed={p.pool_seed}), training looks), indexed "
            f"with and without the motion mask under conditioning {world.indexes['mask'].config['settings']['conditioning']!r} "
            f"(query protocol: each query is given its caption, which enters its gradient only under 'caption'). "
            f"Queries: {len(world.queries)} rendered clips with held-out looks "
            f"({p.queries_per_motion} each of {', '.join(p.motions)}). Selections: majority vote (percentile "
            f"{p.percentile:g}, fraction {p.fraction:g}). Each arm fine-tunes a fresh copy of the base for "
            f"{p.finetune.steps} steps (batch {p.finetune.batch_size}, AdamW lr {p.finetune.lr:g}, warm-up "
            f"{p.finetune.warmup}, cosine decay; plain flow-matching "
            f"loss), same steps and seed for every arm. Evaluation: {len(world.prompts)} generated clips per arm "
            f"({p.prompts_per_motion} held-out-look prompts per target motion; {p.sample_steps} Euler steps, "
            f"guidance {p.guidance:g}; noise seeds fixed per training seed and shared by all arms).",
            "Metrics: motion accuracy = flow classifier (fitted on the base training clips) agrees with the prompted "
            "motion, mean over target motions; dynamic degree / motion smoothness / subject consistency are the "
            "VBench-style proxies of motive_core.eval.metrics (our flow and pixel features, not RAFT/AMT/DINO: compare "
            "rows with each other only); query loss = flow-matching MSE of the query clips under their captions, "
            f"mean over t index {LOSS_T_INDICES} × noise seeds {LOSS_NOISE_SEEDS} (lower is better), 'motion' = "
            "weighted by the query's motion mask. Cells: mean [min, max] over training seeds.",
            *(extra or [])]


def compute_note(runs: Runs, arms: list[str], seeds: tuple[int, ...], started: float) -> str:
    """Time spent on the arms in the tables (from their records, so a rerun that only rewrites the tables
    reports the same) and this process's wall time."""
    seconds = sum(r["seconds"] for r in (runs.get(a, s) for a in arms for s in seeds) if r)
    return (f"Compute: {seconds / 60:.1f} min for the arms above (fine-tuning + evaluation), on a shared 2-core "
            f"CPU, niced, one torch thread; this process ran {(time.perf_counter() - started) / 60:.1f} min.")


def parse_plan(description: str, argv: list[str] | None = None) -> tuple[Plan, argparse.Namespace]:
    """The plan and the options of a study of this world (curation and counterfactual share one command line)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--root", default=str(REPO / "precomputed"))
    parser.add_argument("--pool", type=int, default=300)
    parser.add_argument("--motions", default="bounce,spin,swing")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--prompts-per-motion", type=int, default=6)
    parser.add_argument("--deadline", default=None, help="UTC HH:MM after which no new arm is started")
    parser.add_argument("--arms", default=None, help="run only arms whose names contain one of these comma-separated "
                        "words (the tables still show every finished arm); for splitting a run over processes")
    parser.add_argument("--quick", action="store_true", help="a tiny run (20-clip pool, 2 steps) on --root, for debugging")
    parser.add_argument("--name", default=None)
    parser.add_argument("--k", type=int, default=None, help="counterfactual: clips removed (default: 10 %% of the pool)")
    parser.add_argument("--cf-motions", default=None, help="counterfactual: query motions, comma-separated "
                        "(default: the first target motion)")
    parser.add_argument("--wait", type=float, default=0.0, help="counterfactual: minutes to wait for bench_curation "
                        "to finish the all-pool reference before training it here")
    args = parser.parse_args(argv)
    plan = Plan(root=args.root, pool_size=args.pool, motions=tuple(args.motions.split(",")),
                finetune=replace(FINETUNE, steps=args.steps),
                prompts_per_motion=args.prompts_per_motion, seeds=tuple(int(s) for s in args.seeds.split(",")))
    if args.quick:
        plan = replace(plan, **QUICK)
    return plan, args
