"""How faithful are Motive's shortcuts? (paper §3.2-3.3, §4.4; DESIGN "How we know it works")

Four measurements on the demo world, all with the index's settings (mask on, index 500, noise seed, D′):

1. Projection: exact cosines of the full flattened gradients (every selected parameter) between held-out
   queries and N training clips vs the cosines of their Fastfood projections at D′ = 128 … 2048, and of the
   other projectors (count-sketches) at D′ = 512; Spearman ρ per query, averaged (paper Fig. 4). Each full
   gradient is computed once and projected by every projector.
2. Single vs several timesteps: ρ between scores at the fixed index 500 and the mean of per-timestep
   cosines over 10 evenly spaced indices (paper Eq. 6 as ground truth, same noise draw; paper: 66 %).
3. Which timestep index retrieves best: P@10 by motion label at indices 100 … 900 (the N clips as corpus).
4. Length bias: MotionShapes specs rendered at 1-4 s (16 fps), scored (a) through the normal pipeline,
   which resamples every clip to the model's 16 frames at 8 fps, and (b) at each clip's native length
   (own frame count, own-shape noise from the same seed, per-frame mask at that length); Spearman ρ
   between clip length and score, averaged over queries (paper: 78 % without standardisation, cut by 54 %).

  OMP_NUM_THREADS=1 python -m benchmarks.bench_fidelity [--root precomputed] [--clips 120] [--queries 10]
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from scipy.stats import spearmanr

from benchmarks.common.queries import heldout_queries, rows_in_order
from benchmarks.common.results import REPO, repo_relative, save
from motive_core.attribution.fastfood import FastfoodConfig, l2_normalize
from motive_core.attribution.gradient import GradientProjector
from motive_core.attribution.loss import motion_weighted_loss
from motive_core.attribution.projectors import build_projector
from motive_core.config import PROJECTORS, AttributionSettings
from motive_core.demo.motionshapes import MOTIONS, caption, heldout_appearance, render_clip, sample_specs
from motive_core.eval.metrics import precision_at_k
from motive_core.featurize import Featurizer, prepare_clip
from motive_core.index import AttributionIndex
from motive_core.models import load_model
from motive_core.models.flow import fixed_noise, noise_at_index
from motive_core.video import Video, read_video

DIMS = (128, 256, 512, 1024, 2048)
PAPER_RHO = {128: 0.469, 256: float("nan"), 512: 0.747, 1024: 0.757, 2048: 0.761}
FIXED_INDEX = 500
RETRIEVAL_INDICES = (100, 300, 500, 700, 900)
AVERAGE_INDICES = tuple(range(50, 1000, 100))  # 10 evenly spaced indices (bin midpoints, 500 not among them)
PIPELINE_DIM = 512
OTHER_PROJECTORS = tuple(name for name in PROJECTORS if name != "fastfood")  # beside Fastfood at PIPELINE_DIM
RENDER_FPS = 16.0


@dataclass
class Item:
    """One clip ready for the loss: model input, prompt condition (as the index conditions), latent mask, labels.

    ``noise`` is None for clips at the model's geometry (the library's ε_fix is used); native-length
    clips carry their own draw of the fixed seed at their own shape.
    """

    latents: torch.Tensor
    condition: torch.Tensor
    weight: torch.Tensor
    motion: str
    noise: torch.Tensor | None = None
    seconds: float = 0.0


@dataclass
class Scores:
    """Cosine scores (queries × corpus): exact full-gradient ones and projected ones per projection key."""

    exact: np.ndarray
    projected: dict[int | str, np.ndarray]


class Progress:
    """Counts gradients and prints a running line with the elapsed time."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.count = 0

    def tick(self, label: str) -> None:
        self.count += 1
        if self.count % 10 == 0:
            print(f"  {label}: {self.count} gradients, {time.perf_counter() - self.start:.0f} s", flush=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def projection(key: int | str) -> tuple[str, int]:
    """What a projection key names: a D′ alone is Fastfood at that size, a projector's name is that projector
    at the pipeline's D′."""
    return ("fastfood", key) if isinstance(key, int) else (key, PIPELINE_DIM)


class GradientLab:
    """Full flat gradients of the attribution loss at any scheduler index, and their projections."""

    def __init__(self, adapter, settings: AttributionSettings, keys: tuple[int | str, ...]):
        self.adapter = adapter
        self.settings = settings
        self._losses: dict[int, GradientProjector] = {}
        self.base = self.loss_at(settings.t_index)
        self.projectors = {}
        for key in keys:
            name, dim = projection(key)
            config = FastfoodConfig(dim, settings.proj_seed, settings.block_size)
            self.projectors[key] = build_projector(name, config, self.base.num_parameters)
        self.progress = Progress()

    def loss_at(self, t_index: int) -> GradientProjector:
        """The library's gradient machinery at one scheduler index (same noise seed and mask)."""
        if t_index not in self._losses:
            self._losses[t_index] = GradientProjector(self.adapter, replace(self.settings, t_index=t_index,
                                                                            t_ensemble=""))
        return self._losses[t_index]

    def loss(self, item: Item, t_index: int) -> torch.Tensor:
        """L_mot at (t_index, ε_fix); a native-length clip uses its own noise draw and frame count F."""
        if item.noise is None:
            return self.loss_at(t_index).loss(item.latents, item.condition, item.weight)
        noised = noise_at_index(self.adapter.scheduler, item.latents, t_index, item.noise)
        prediction = self.adapter.predict(noised.noisy, noised.timestep, item.condition)
        return motion_weighted_loss(prediction, noised.target, item.weight, item.latents.shape[2],
                                    self.settings.loss)

    def gradient(self, item: Item, t_index: int) -> torch.Tensor:
        """∇L over every selected parameter, flattened in the projector's order (float32, (D,))."""
        flat = self.base.flat_gradient(self.loss(item, t_index))
        self.progress.tick(f"index {t_index}")
        return flat

    def unit_vectors(self, item: Item, t_index: int, keys: tuple[int | str, ...]) -> tuple[torch.Tensor, dict]:
        """The normalised full gradient and its normalised projections by the projectors ``keys`` name."""
        flat = self.gradient(item, t_index)
        return l2_normalize(flat), {key: l2_normalize(self.projectors[key].project(flat)) for key in keys}

    def scores(self, queries: list[Item], corpus: list[Item], t_index: int, dims: tuple[int | str, ...]) -> Scores:
        """Exact and projected cosines of every corpus clip against every query at one index."""
        exact_q, proj_q = zip(*(self.unit_vectors(q, t_index, dims) for q in queries))
        exact_q = torch.stack(exact_q)
        proj_q = {d: torch.stack([p[d] for p in proj_q]) for d in dims}
        exact = np.zeros((len(queries), len(corpus)))
        projected = {d: np.zeros((len(queries), len(corpus))) for d in dims}
        for j, clip in enumerate(corpus):
            full, proj = self.unit_vectors(clip, t_index, dims)
            exact[:, j] = (exact_q @ full).numpy()
            for d in dims:
                projected[d][:, j] = (proj_q[d] @ proj[d]).numpy()
        return Scores(exact, projected)


# ---------------------------------------------------------------------------------------------- clips


def make_item(featurizer: Featurizer, video: Video, text: str, motion: str, native: bool = False) -> Item:
    """A clip through the pipeline's own preparation (``prepare_clip``) and conditioning.

    Standardised to the model's frames, fps and size; or, ``native``, at the clip's own frame count and
    rate (only resized to the model's size), with its mask at that length and its own-shape draw of ε_fix.
    """
    adapter = featurizer.adapter
    geometry = replace(adapter.geometry, num_frames=len(video.frames), fps=video.fps) if native else adapter.geometry
    prepared = prepare_clip(video, geometry, featurizer.estimator)
    latents = adapter.encode(prepared.frames)
    noise = fixed_noise(tuple(latents.shape), featurizer.settings.noise_seed) if native else None
    return Item(latents, adapter.encode_prompt(featurizer.settings.conditioning_prompt(text)),
                torch.from_numpy(prepared.latent_mask), motion, noise=noise, seconds=video.duration)


def balanced_clips(index: AttributionIndex, n: int) -> list[dict]:
    """The first ⌈n/10⌉ indexed clips of each motion (static clips left out), n in all."""
    per_motion = -(-n // len(MOTIONS))
    chosen = [c for m in MOTIONS for c in [c for c in index.clips if c["labels"]["motion"] == m][:per_motion]]
    by_motion = {m: [c for c in chosen if c["labels"]["motion"] == m] for m in MOTIONS}
    interleaved = [by_motion[m][i] for i in range(per_motion) for m in MOTIONS if i < len(by_motion[m])]
    return interleaved[:n]


def query_items(featurizer: Featurizer, count: int, native: bool = False) -> list[Item]:
    """``count`` held-out MotionShapes queries (unseen shape, colour and background), balanced by motion."""
    look = heldout_appearance()
    raw = heldout_queries(look, -(-count // len(MOTIONS)), 0, featurizer.adapter)[:count]
    return [make_item(featurizer, q["video"], q["caption"], q["motion"], native) for q in raw]


def length_corpus(featurizer: Featurizer, per_motion: int, seconds: tuple[int, ...], native: bool) -> list[Item]:
    """Each of ``per_motion`` specs per motion rendered at every length in ``seconds`` (16 fps)."""
    specs = sample_specs(per_motion * len(MOTIONS), seed=7, pan_fraction=0.0, static_fraction=0.0)
    items = []
    for spec in specs:
        for s in seconds:
            video = Video(render_clip(spec, num_frames=int(s * RENDER_FPS)), RENDER_FPS, "rendered")
            items.append(make_item(featurizer, video, caption(spec), spec.motion, native))
    return items


# -------------------------------------------------------------------------------------------- metrics


def mean_spearman(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Spearman ρ between rows of a and b (one per query): mean and smallest."""
    rhos = [spearmanr(x, y).statistic for x, y in zip(a, b)]
    return float(np.nanmean(rhos)), float(np.nanmin(rhos))


def p_at_10(scores: np.ndarray, queries: list[Item], corpus: list[dict]) -> float:
    """Mean P@10 by motion label of each query's ranking of the corpus (index records: id, labels)."""
    holder = SimpleNamespace(clips=corpus)
    return float(np.mean([precision_at_k([r["motion"] for r in rows_in_order(holder, row)], q.motion, 10)
                          for row, q in zip(scores, queries)]))


def length_rho(scores: np.ndarray, corpus: list[Item]) -> tuple[float, float]:
    """Spearman ρ between clip length and score for each query: mean ρ and mean |ρ|."""
    lengths = np.array([c.seconds for c in corpus])
    rhos = np.array([spearmanr(lengths, row).statistic for row in scores])
    return float(np.mean(rhos)), float(np.mean(np.abs(rhos)))


def pct(value: float) -> str:
    return "–" if math.isnan(value) else f"{100 * value:.1f} %"


# ------------------------------------------------------------------------------------------- studies


def projection_study(base: Scores, queries: list[Item], corpus: list[dict]) -> list[dict]:
    """Study 1: projected vs exact cosines across D′, and of the other projectors at the pipeline's D′ (and the
    retrieval each gives)."""
    rows = [{"projector": "exact (full gradient)", "D′": "", "ρ mean": 1.0, "ρ worst query": 1.0, "paper ρ": "",
             "P@10 motion": p_at_10(base.exact, queries, corpus)}]
    for key in DIMS + OTHER_PROJECTORS:
        name, dim = projection(key)
        mean, worst = mean_spearman(base.exact, base.projected[key])
        rows.append({"projector": name, "D′": dim, "ρ mean": mean, "ρ worst query": worst,
                     "paper ρ": pct(PAPER_RHO[dim]) if name == "fastfood" else "",
                     "P@10 motion": p_at_10(base.projected[key], queries, corpus)})
    return rows


def timestep_studies(lab: GradientLab, base: Scores, queries: list[Item], items: list[Item], corpus: list[dict],
                     subset: int) -> tuple[list[dict], list[dict]]:
    """Studies 2 and 3: single index vs the 10-index mean (on the first ``subset`` clips), P@10 per index."""
    dims = (PIPELINE_DIM,)
    per_index = {FIXED_INDEX: base}
    for t in RETRIEVAL_INDICES:
        if t not in per_index:
            print(f"retrieval at index {t}: {len(queries)} queries × {len(items)} clips", flush=True)
            per_index[t] = lab.scores(queries, items, t, dims)
    averaged = {"exact": 0.0, "projected": 0.0}
    for t in AVERAGE_INDICES:
        print(f"ground truth, index {t}: {len(queries)} queries × {subset} clips", flush=True)
        s = lab.scores(queries, items[:subset], t, dims)
        averaged["exact"] = averaged["exact"] + s.exact / len(AVERAGE_INDICES)
        averaged["projected"] = averaged["projected"] + s.projected[PIPELINE_DIM] / len(AVERAGE_INDICES)
    agreement = []
    for name, kind in (("exact cosines (full gradient)", "exact"), (f"projected, D′ = {PIPELINE_DIM}", "projected")):
        single = base.exact if kind == "exact" else base.projected[PIPELINE_DIM]
        mean, worst = mean_spearman(single[:, :subset], averaged[kind])
        agreement.append({"scores": name, "ρ (index 500 vs 10-index mean)": mean, "ρ worst query": worst,
                          "paper": pct(0.66)})
    retrieval = []
    for t in RETRIEVAL_INDICES:
        s = per_index[t]
        sigma = float(lab.adapter.scheduler.sigmas[t])
        retrieval.append({"index": t, "σ": sigma, "timestep": float(lab.adapter.scheduler.timesteps[t]),
                          "P@10 exact": p_at_10(s.exact, queries, corpus),
                          f"P@10 D′={PIPELINE_DIM}": p_at_10(s.projected[PIPELINE_DIM], queries, corpus),
                          "ρ vs 10-index mean (exact)": mean_spearman(s.exact[:, :subset], averaged["exact"])[0]})
    return agreement, retrieval


def length_study(lab: GradientLab, featurizer: Featurizer, queries: int, per_motion: int,
                 seconds: tuple[int, ...]) -> tuple[list[dict], list[dict]]:
    """Study 4: correlation of score with clip length, with and without standardisation."""
    summary, by_length = [], []
    for native, name in ((True, "native length (no standardisation)"),
                         (False, "standardised to 16 frames at 8 fps (pipeline)")):
        print(f"length study, {name}", flush=True)
        q_items = query_items(featurizer, queries, native=native)
        corpus = length_corpus(featurizer, per_motion, seconds, native)
        s = lab.scores(q_items, corpus, FIXED_INDEX, (PIPELINE_DIM,))
        proj = s.projected[PIPELINE_DIM]
        labels = [{"id": str(i), "labels": {"motion": c.motion}} for i, c in enumerate(corpus)]
        rho, abs_rho = length_rho(proj, corpus)
        rho_exact, _ = length_rho(s.exact, corpus)
        summary.append({"clips": name, f"ρ(length, score) D′={PIPELINE_DIM}": rho, "mean abs ρ": abs_rho,
                        "ρ exact": rho_exact, "P@10 motion": p_at_10(proj, q_items, labels)})
        lengths = np.array([c.seconds for c in corpus])
        for sec in seconds:
            cols = lengths == sec
            by_length.append({"clips": name, "seconds": sec, "mean score": float(proj[:, cols].mean()),
                              "mean score, same motion": _same_motion_mean(proj, q_items, corpus, cols)})
    # Per-query |ρ|, averaged: a mean of signed ρ can sit near 0 while every query is length-biased.
    before, after = summary[0]["mean abs ρ"], summary[1]["mean abs ρ"]
    summary[0].update({"mean abs ρ cut by": "", "paper": "ρ = 78.0 %"})
    summary[1].update({"mean abs ρ cut by": pct(1 - after / before) if before else "–", "paper": "cut by 54.0 %"})
    return summary, by_length


def _same_motion_mean(scores: np.ndarray, queries: list[Item], corpus: list[Item], cols: np.ndarray) -> float:
    same = np.array([[c.motion == q.motion for c in corpus] for q in queries]) & cols[None, :]
    return float(scores[same].mean()) if same.any() else float("nan")


# ---------------------------------------------------------------------------------------------- main


def projection_check(lab: GradientLab, index: AttributionIndex, clip: dict, item: Item) -> float:
    """Max |difference| between our projection of one clip by the index's projector and its stored vector."""
    key = PIPELINE_DIM if lab.settings.projector == "fastfood" else lab.settings.projector
    _, proj = lab.unit_vectors(item, FIXED_INDEX, (key,))
    row = index.clips.index(clip)
    return float(np.abs(proj[key].numpy() - np.asarray(index.vectors[row])).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO / "precomputed"))
    parser.add_argument("--clips", type=int, default=120, help="training clips N (balanced over motions)")
    parser.add_argument("--queries", type=int, default=10, help="held-out queries Q")
    parser.add_argument("--timestep-clips", type=int, default=40,
                        help="clips (of the N) for the 10-index ground truth")
    parser.add_argument("--length-per-motion", type=int, default=2, help="specs per motion in the length study")
    parser.add_argument("--seconds", default="1,2,3,4", help="clip lengths (s, at 16 fps) in the length study")
    parser.add_argument("--name", default="fidelity")
    args = parser.parse_args()
    root = Path(args.root)
    index = AttributionIndex(root / "index-motion")
    model = load_model(root / "model", device="cpu")
    settings = AttributionSettings.from_vector_config(index.config)
    featurizer = Featurizer(model, settings)
    lab = GradientLab(model, settings, DIMS + OTHER_PROJECTORS)
    clips = balanced_clips(index, args.clips)
    print(f"{len(clips)} training clips, {args.queries} queries, {lab.projectors[DIMS[0]].total_dim} "
          f"gradient entries", flush=True)
    items = [make_item(featurizer, read_video(index.clip_path(c)), c["caption"], c["labels"]["motion"])
             for c in clips]
    queries = query_items(featurizer, args.queries)
    corpus = clips
    check = projection_check(lab, index, clips[0], items[0])
    print(f"projection check vs the index's stored vector: max |Δ| = {check:.2e}", flush=True)
    print(f"exact + projected scores at index {FIXED_INDEX}", flush=True)
    base = lab.scores(queries, items, FIXED_INDEX, DIMS + OTHER_PROJECTORS)
    projection = projection_study(base, queries, corpus)
    subset = min(args.timestep_clips, len(items))
    agreement, retrieval = timestep_studies(lab, base, queries, items, corpus, subset)
    seconds = tuple(int(s) for s in args.seconds.split(","))
    lengths, by_length = length_study(lab, featurizer, args.queries, args.length_per_motion, seconds)
    shown = repo_relative(root)
    notes = [
        f"Demo world at {shown}: {len(clips)} training clips of index-motion (balanced over the ten motions) and "
        f"{len(queries)} held-out queries (unseen shape, colour and background); mask on, noise seed "
        f"{settings.noise_seed}, projection seed {settings.proj_seed}; {lab.projectors[DIMS[0]].total_dim} "
        f"gradient entries (every denoiser parameter), loss {settings.loss!r}. Chance P@10 by motion ≈ 0.1.",
        f"Query protocol: the index's conditioning {settings.conditioning!r}: every clip and query is conditioned on "
        + ("the empty prompt (no caption enters any gradient)." if settings.conditioning == "null"
           else "its own caption (queries on their full caption).")
        + " The rank correlations compare two estimates of the same scores, so the prompt enters both sides equally.",
        f"Check: our D′ = {PIPELINE_DIM} {settings.projector} projection of a training clip matches the index's "
        "stored vector to "
        f"{check:.1e} (max |Δ|), so these are the pipeline's own vectors.",
        f"Timestep ground truth: mean of per-index cosines over scheduler indices {list(AVERAGE_INDICES)} "
        f"(same ε_fix), on the first {subset} of the clips; the single index {FIXED_INDEX} is not one of them.",
        f"Length study: {args.length_per_motion} specs per motion (training looks), each rendered at "
        f"{', '.join(map(str, seconds))} s at 16 fps, so length is the only thing that differs within a spec; "
        "queries are the same held-out clips (2 s), treated the same way as the corpus in each variant. The "
        "paper's 1/F factor is not applied separately: it scales a gradient and cannot change a cosine.",
        f"{lab.progress.count} gradients in {lab.progress.elapsed():.0f} s.",
    ]
    save(args.name, {"Projection fidelity: Spearman ρ of projected vs exact cosines (paper Fig. 4)": projection,
                     "Single index 500 vs the 10-index mean (paper Eq. 6 vs Eq. 7)": agreement,
                     "Retrieval by scheduler index (same queries and clips)": retrieval,
                     "Length bias: Spearman ρ between clip length and score (paper Fig. 5)": lengths,
                     "Mean score by clip length": by_length}, notes, model=root / "model")


if __name__ == "__main__":
    main()
