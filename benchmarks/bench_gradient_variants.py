"""Which change to how the vectors are made or compared makes the gradient carry more motion?

Every variant keeps the baseline's settings — the "motion" preset at one timestep, as the demo shipped it
before this study (null prompt on both sides, temporal-difference loss, motion mask, scheduler index 500,
Fastfood to 512) — and changes one thing:

- compared differently, same vectors: centred (the index's mean vector subtracted from index and query),
  whitened (ZCA with the index covariance plus a ridge of one mean eigenvalue, TRAK's (ΦᵀΦ + λI)⁻¹ made
  symmetric), CSLS (2·cos − each training clip's mean cosine to its 50 nearest training clips: a hubness
  correction, so clips close to everything stop filling every top 10), query expansion (each query plus
  its nearest training clip before the cosine, Chum et al.'s average query expansion: a new clip read
  through the training clip it is surely closest to), on the baseline and on the shipped ensemble;
- made differently: other noise draws ε_fix averaged (K = 2, 4), the gradient over the patch embedding
  only, other timesteps (scheduler index 400 or 600 instead of 500), and ensembles over timesteps — the mean
  of the ℓ2-normalised vectors of one clip at several t_fix, for index and query alike;
- a still reference, on the shipped ensemble and on its second noise draw: from each projected gradient,
  α times that of the same clip held still at its middle frame is subtracted before normalising (α = 0.5,
  1), so what the clip's look alone asks of the model is taken out and what its motion asks is left (twice
  the backward passes);
- time-resolved, at the baseline's one timestep: the masked loss split into three consecutive stretches of
  latent frames, one projected gradient per stretch, the three concatenated (raw, or each ℓ2-normalised
  first), so a clip's vector keeps *when* each part of its motion asks what of the model instead of summing
  it over the clip (three backward passes, as the ensemble, and three times the numbers per clip: 3 × 512);
- the timestep range widened: scheduler index 100 or 900 alone, and the five-index ensemble 100 … 900;
- the loss reshaped, at the baseline's one timestep (LossShape): the temporal change of the error pooled over
  2 × 2 or 4 × 4 latent locations before squaring, taken over two frames instead of one, with the first latent
  frame left out, or under the mask binarised at a quarter of its peak;
- scale views, on the shipped ensemble: the clip also seen zoomed in 1.33× and out 0.75×, each view's motion and
  mask estimated again, and the three views' vectors averaged, for index and query alike (three times the
  backward passes), alone and read with query expansion;
- parameter groups, on the shipped ensemble: the gradient of one group of the denoiser's parameters alone (by
  depth: patch embedding, first block, later blocks, output layer, timestep and text embedders; by kind:
  self-attention, cross-attention, feed-forward, modulation tables), each projected on its own, and every
  layer's gradient normalised before they are concatenated, so each layer counts the same.

Held-out queries are those of bench_retrieval (rendered with unseen looks, generated from held-out prompts,
drawn by the independent renderer), all under the no-prompt protocol. Every variant is paired per query
with that baseline (95 % bootstrap intervals). Its winner, the ensemble over indexes 300, 500 and 700, is
what the preset does now (``t_ensemble``), so precomputed/index-motion holds that ensemble's vectors. The
training clips' leave-one-out P@10 is reported beside it: a criterion that uses no query, for choosing among
variants without looking at them. So is how well each variant groups the rendered and the independent
queries among themselves (each one's nearest other query of its set shows its motion, or not), beside the
flow descriptor's: whether the gradient carries a new clip's motion at all, apart from comparing it with the
training clips'. So is how often a query's top clip shows its motion (the clip query expansion adds).
Indexes a variant needs that are missing are built into benchmarks/results/cache/indexes/ with the engine's
own build (about 3–5 min each for the 600 demo clips on one busy CPU core).

  python -m benchmarks.bench_gradient_variants [--per-motion 4] [--generated 2] [--independent 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import re
import time
from typing import Callable

import numpy as np
import torch

from benchmarks.common.features import training_features
from benchmarks.common.queries import (expanded_scores, in_subset, nearest_same_label, no_prompt_word_scores,
                                       paired_summary, precision_at_10, query_list)
from benchmarks.common.results import DEMO_CLIPS, DEMO_MODEL, cache_root, demo_model_hash, log, repo_relative, save
from benchmarks.independent_motions import independent_queries
from motive_core.attribution.fastfood import FastfoodConfig
from motive_core.attribution.gradient import GradientProjector
from motive_core.attribution.loss import temporal_change, weighted_mean
from motive_core.attribution.projectors import Projector, build_projector
from motive_core.build import build_index
from motive_core.config import PRESETS, AttributionSettings
from motive_core.eval.metrics import clip_descriptor, descriptor_similarity
from motive_core.featurize import Featurizer, PreparedClip
from motive_core.index import AttributionIndex
from motive_core.models import load_model
from motive_core.video import Video, resize_center_crop

BASE = "null-td-mask"  # the baseline's cache folder
BASE_SETTINGS = dataclasses.replace(PRESETS["motion"], t_ensemble="")  # the motion preset at one timestep
# cache folder -> the settings it changes from the baseline's
VARIANT_INDEXES: dict[str, dict] = {
    BASE: {},
    "null-td-mask-noise1": {"noise_seed": 1},
    "null-td-mask-noise2": {"noise_seed": 2},
    "null-td-mask-noise3": {"noise_seed": 3},
    "null-td-mask-patch": {"params": r"^patch_embedding\."},
    "null-td-mask-t300": {"t_index": 300},
    "null-td-mask-t400": {"t_index": 400},
    "null-td-mask-t600": {"t_index": 600},
    "null-td-mask-t700": {"t_index": 700},
    "null-td-mask-t100": {"t_index": 100},
    "null-td-mask-t900": {"t_index": 900},
    "null-td-mask-noise1-t300": {"noise_seed": 1, "t_index": 300},
    "null-td-mask-noise1-t700": {"noise_seed": 1, "t_index": 700},
}
SETS = ("rendered", "generated", "independent")
SUBSETS = (*SETS, "all queries")
CSLS_NEIGHBOURS = 50
TIME_BINS = 3  # stretches of frames of the time-resolved vectors
OWN_SETS = ("rendered", "independent")  # query sets whose clips are also compared among themselves

Similarity = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (index rows, query rows) -> (queries, clips)


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def cosine(train: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return unit(queries) @ unit(train).T


def centred(train: np.ndarray, queries: np.ndarray) -> np.ndarray:
    mean = train.mean(axis=0)
    return cosine(train - mean, queries - mean)


def whitened(train: np.ndarray, queries: np.ndarray, ridge: float = 1.0) -> np.ndarray:
    """Cosine after x → (C + λI)^(-1/2) x, C the index covariance, λ = ``ridge`` × its mean eigenvalue."""
    eigenvalues, vectors = np.linalg.eigh(train.T @ train / len(train))
    transform = vectors @ np.diag((eigenvalues + ridge * eigenvalues.mean()) ** -0.5) @ vectors.T
    return cosine(train @ transform, queries @ transform)


def hubness(train: np.ndarray, neighbours: int = CSLS_NEIGHBOURS) -> np.ndarray:
    """Each training clip's mean cosine to its ``neighbours`` nearest other training clips."""
    similar = cosine(train, train)
    np.fill_diagonal(similar, -np.inf)
    return np.sort(similar, axis=1)[:, -neighbours:].mean(axis=1)


def csls(train: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Cross-domain similarity local scaling without its query term (constant per query, so rank-neutral)."""
    return 2 * cosine(train, queries) - hubness(train)[None, :]


def expanded(train: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Cosine after average query expansion: each unit query plus its nearest unit training row. A query that is
    itself one of the rows (the leave-one-out criterion) is not expanded with itself."""
    first = cosine(train, queries)
    nearest = np.argmax(np.where(first > 1 - 1e-9, -np.inf, first), axis=1)
    return expanded_scores(first, cosine(train, train), nearest)


def top_clip_same(scores: np.ndarray, clip_motions: np.ndarray, query_motions: list[str]) -> np.ndarray:
    """Whether each query's highest-scored training clip shows the query's motion."""
    return clip_motions[np.argmax(scores, axis=1)] == np.array(query_motions)


def own_grouping(similarity: np.ndarray, motions: list[str], sets: np.ndarray, subset: str) -> float:
    """Share of ``subset``'s queries whose nearest other query of that set shows the same motion, from their
    ``similarity`` among themselves (diagonal masked)."""
    return float(nearest_same_label(similarity, np.array(motions)[sets == subset]).mean())


def leave_one_out_similarity(similarity: Similarity, train: np.ndarray) -> np.ndarray:
    """Training clips ranked against the others (their own row masked): a criterion that needs no query."""
    scores = similarity(train, train)
    np.fill_diagonal(scores, -np.inf)
    return scores


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    indexes: tuple[str, ...]  # VARIANT_INDEXES keys; several: the mean of their unit vectors
    similarity: Similarity = cosine
    passes: int | None = None  # backward passes per clip, when not one per index

    @property
    def gradients_per_clip(self) -> int:
        return self.passes or len(self.indexes)

    def vectors(self, index_vectors: dict[str, np.ndarray]) -> np.ndarray:
        return unit(sum(unit(index_vectors[name]) for name in self.indexes))


VARIANTS = (
    Variant("one timestep (t 500, one noise draw, cosine): the baseline", (BASE,)),
    Variant("centred", (BASE,), centred),
    Variant("whitened, ridge = mean eigenvalue", (BASE,), whitened),
    Variant(f"CSLS, k = {CSLS_NEIGHBOURS}", (BASE,), csls),
    Variant("query expansion, k = 1", (BASE,), expanded),
    Variant("noise ensemble K = 2", (BASE, "null-td-mask-noise1")),
    Variant("noise ensemble K = 4", (BASE, "null-td-mask-noise1", "null-td-mask-noise2", "null-td-mask-noise3")),
    Variant("patch embedding only (params ^patch_embedding\\.)", ("null-td-mask-patch",)),
    Variant("t index 400", ("null-td-mask-t400",)),
    Variant("t index 600", ("null-td-mask-t600",)),
    Variant("timestep ensemble t 400 + 500 + 600", ("null-td-mask-t400", BASE, "null-td-mask-t600")),
    Variant(f"timestep ensemble t 400 + 500 + 600, CSLS k = {CSLS_NEIGHBOURS}",
            ("null-td-mask-t400", BASE, "null-td-mask-t600"), csls),
    Variant("timestep ensemble t 300 + 500 + 700", ("null-td-mask-t300", BASE, "null-td-mask-t700")),
    Variant("timestep ensemble t 300 + 500 + 700, query expansion k = 1",
            ("null-td-mask-t300", BASE, "null-td-mask-t700"), expanded),
    Variant("t index 100", ("null-td-mask-t100",)),
    Variant("t index 900", ("null-td-mask-t900",)),
    Variant("timestep ensemble t 100 + 300 + 500 + 700 + 900",
            ("null-td-mask-t100", "null-td-mask-t300", BASE, "null-td-mask-t700", "null-td-mask-t900")),
    Variant("noise draw 1, t 500", ("null-td-mask-noise1",)),
    Variant("noise draw 1, timestep ensemble t 300 + 500 + 700",
            ("null-td-mask-noise1-t300", "null-td-mask-noise1", "null-td-mask-noise1-t700")),
)
# (variant, its own baseline): the timestep ensembles' gain measured again on another noise draw
REPLICATIONS = (("noise draw 1, timestep ensemble t 300 + 500 + 700", "noise draw 1, t 500"),)

# A still reference: from each projected gradient, before normalising, subtract α times that of the same clip
# held still at its middle frame (same mask, same t_fix and ε_fix): what the clip's look alone asks of the
# model, so what is left is what its motion asks. On the shipped ensemble (t 300, 500, 700).
# Replicated, like the ensemble, on the second noise draw.
ENSEMBLE, ENSEMBLE_NOISE1 = "timestep ensemble t 300 + 500 + 700", "noise draw 1, timestep ensemble t 300 + 500 + 700"
ENSEMBLE_SETTINGS = dataclasses.replace(BASE_SETTINGS, t_ensemble="300,700")


@dataclasses.dataclass(frozen=True)
class StillReference:
    ensemble: str  # the variant it is taken on
    settings: AttributionSettings  # that variant's settings
    alpha: float

    @property
    def variant(self) -> Variant:
        name = f"{self.ensemble}, still reference α = {self.alpha:g}"
        return Variant(name, (name,), passes=2 * len(self.settings.timesteps))


STILL_REFERENCES = (StillReference(ENSEMBLE, ENSEMBLE_SETTINGS, 0.5), StillReference(ENSEMBLE, ENSEMBLE_SETTINGS, 1.0),
                    StillReference(ENSEMBLE_NOISE1, dataclasses.replace(ENSEMBLE_SETTINGS, noise_seed=1), 0.5))
# variant name -> whether each stretch's gradient is normalised before concatenating
TIME_RESOLVED = {f"time-resolved: {TIME_BINS} stretches of frames concatenated (t 500)": False,
                 f"time-resolved: {TIME_BINS} stretches of frames, each normalised, concatenated (t 500)": True}


@dataclasses.dataclass(frozen=True)
class LossShape:
    """The baseline's loss (temporal change of the error, masked, at t_fix) reshaped in one way."""

    name: str
    key: str  # its training gradients' cache name
    pool: int = 1  # the change averaged over pool × pool latent locations before squaring
    lag: int = 1  # frames between the two errors the change compares
    first_frame: bool = True  # False: the first latent frame (its error as is, a look, not a change) left out
    binary_mask: bool = False  # True: the mask set to 1 where it reaches a quarter of its peak, 0 elsewhere

    def loss(self, error: torch.Tensor, weight: torch.Tensor, num_frames: int) -> torch.Tensor:
        """The scalar loss of ``error`` (1, C, T', h', w') under ``weight`` (T', h', w'), as Eq. 16 weighs it."""
        change = temporal_change(error, self.lag)
        if not self.first_frame:
            change, weight = change[:, :, 1:], weight[1:]
        if self.binary_mask:
            weight = (weight >= weight.max() / 4).to(weight.dtype)
        if self.pool > 1:
            window = (1, self.pool, self.pool)
            pool = torch.nn.functional.avg_pool3d
            change, weight = pool(change, window), pool(weight[None, None], window)[0, 0]
        return weighted_mean(change.pow(2).mean(dim=1), weight, num_frames)


# Each at the baseline's one timestep, one backward pass: pooling keeps the coarse displacement and drops the
# outline's detail, in which two renderers' shapes differ; a lag of two frames reads slower change; leaving the
# first frame out leaves only changes; a binary mask weighs slow and fast moving regions alike.
LOSS_SHAPES = (LossShape("loss pooled over 2 × 2 latent locations", "pool2", pool=2),
               LossShape("loss pooled over 4 × 4 latent locations", "pool4", pool=4),
               LossShape("change over 2 frames", "lag2", lag=2),
               LossShape("first latent frame left out", "nofirst", first_frame=False),
               LossShape("mask binarised at a quarter of its peak", "binary-mask", binary_mask=True))

# Scale views: the clip zoomed in (its centre 1/1.33 of the frame enlarged) and out (shrunk to 0.75 and framed by
# its own reflection), each through the shipped ensemble; averaged with the clip as it is, for index and query
# alike. The size a motion is drawn at is a nuisance for "which clips taught this motion", like t_fix.
SCALE_VIEWS = (0.75, 1.33)
SCALED = f"{ENSEMBLE}, scale views {' / '.join(f'{z:g}' for z in sorted((1, *SCALE_VIEWS)))}"
SCALED_PASSES = len(ENSEMBLE_SETTINGS.timesteps) * (1 + len(SCALE_VIEWS))
SCALED_VARIANTS = (Variant(SCALED, (SCALED,), passes=SCALED_PASSES),
                   Variant(f"{SCALED}, query expansion k = 1", (SCALED,), expanded, passes=SCALED_PASSES))
# Parameter groups: which of the denoiser's parameters carry the motion. One backward pass per timestep gives
# every group's gradient; each group is projected on its own (Fastfood to D′, a seed of its own) and read alone,
# over the shipped ensemble's timesteps. LAYERS split the parameters by depth (every parameter in exactly one),
# the other groups by kind.
LAYERS = {"patch embedding": r"^patch_embedding\.", "first block": r"^blocks\.0\.", "later blocks": r"^blocks\.[1-9]",
          "output layer": r"^(proj_out\.|scale_shift_table$)", "timestep and text embedders": r"^condition_embedder\."}
PARAMETER_GROUPS = {**LAYERS, "self-attention": r"\.attn1\.", "cross-attention": r"\.(attn2|norm2)\.",
                    "feed-forward": r"\.ffn\.", "modulation tables": r"scale_shift_table"}
EACH_LAYER = f"{ENSEMBLE}, each layer's gradient normalised, then concatenated"
GROUP_VARIANTS = tuple(Variant(name, (name,), passes=len(ENSEMBLE_SETTINGS.timesteps))
                      for name in (*(f"{ENSEMBLE}, {group} only" for group in PARAMETER_GROUPS), EACH_LAYER))
ALL_VARIANTS = (*VARIANTS, *(still.variant for still in STILL_REFERENCES),
                *(Variant(name, (name,), passes=TIME_BINS) for name in TIME_RESOLVED),
                *(Variant(shape.name, (shape.name,)) for shape in LOSS_SHAPES), *SCALED_VARIANTS, *GROUP_VARIANTS)


def held_still(prepared: PreparedClip) -> PreparedClip:
    """The clip with every frame replaced by its middle one (its motion mask kept)."""
    frames = prepared.frames
    return dataclasses.replace(prepared, frames=np.repeat(frames[len(frames) // 2][None], len(frames), axis=0))


def reference_gradients(featurizer: Featurizer, prepared: PreparedClip) -> np.ndarray:
    """(2, timesteps, D′): the projected gradients, not normalised, of the clip and of it held still."""
    adapter, gradients = featurizer.adapter, featurizer.gradients
    condition = adapter.encode_prompt(featurizer.settings.conditioning_prompt(""))
    weight = torch.from_numpy(prepared.latent_mask)
    return np.stack([np.stack([gradients.projected_gradient(adapter.encode(clip.frames), condition, weight, t)
                               .cpu().numpy() for t in featurizer.settings.timesteps])
                     for clip in (prepared, held_still(prepared))]).astype(np.float64)


def still_reference(pairs: np.ndarray, alpha: float) -> np.ndarray:
    """Vectors from ``reference_gradients`` rows (n, 2, timesteps, D′): the normalised mean over timesteps of
    unit(g − α·g_still)."""
    return unit(unit(pairs[:, 0] - alpha * pairs[:, 1]).sum(axis=1))


def binned_gradients(featurizer: Featurizer, prepared: PreparedClip, bins: int = TIME_BINS) -> np.ndarray:
    """(bins, D′): the projected gradients, not normalised, of the masked loss restricted to each of ``bins``
    consecutive stretches of latent frames (the mask zeroed outside the stretch), at the settings' t_fix; a
    stretch where nothing moves has no masked loss and gives zeros."""
    adapter, gradients = featurizer.adapter, featurizer.gradients
    condition = adapter.encode_prompt(featurizer.settings.conditioning_prompt(""))
    latents = adapter.encode(prepared.frames)
    rows = []
    for stretch in np.array_split(np.arange(len(prepared.latent_mask)), bins):
        weight = np.zeros_like(prepared.latent_mask)
        weight[stretch] = prepared.latent_mask[stretch]
        rows.append(gradients.projected_gradient(latents, condition, torch.from_numpy(weight),
                                                 featurizer.settings.t_index).cpu().numpy()
                    if weight.any() else np.zeros(featurizer.settings.proj_dim))
    return np.stack(rows).astype(np.float64)


def time_resolved(rows: np.ndarray, each_unit: bool) -> np.ndarray:
    """Vectors from ``binned_gradients`` rows (n, bins, D′): the stretches' gradients concatenated, each
    ℓ2-normalised first when ``each_unit`` (every stretch counts the same), then normalised."""
    if each_unit:
        rows = rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-300)  # still stretches stay 0
    return unit(rows.reshape(len(rows), -1))


def shaped_gradient(shape: LossShape) -> Callable[[Featurizer, PreparedClip], np.ndarray]:
    """The projected gradient, not normalised, of ``shape``'s loss at the settings' t_fix and ε_fix."""
    def compute(featurizer: Featurizer, prepared: PreparedClip) -> np.ndarray:
        adapter, gradients = featurizer.adapter, featurizer.gradients
        condition = adapter.encode_prompt(featurizer.settings.conditioning_prompt(""))
        prediction, target = gradients.prediction(adapter.encode(prepared.frames), condition)
        loss = shape.loss(prediction.float() - target.float(), torch.from_numpy(prepared.latent_mask).float(),
                          adapter.geometry.num_frames)
        return gradients.project(loss).cpu().numpy().astype(np.float64)
    return compute


def zoomed(frames: np.ndarray, factor: float) -> np.ndarray:
    """(T, H, W, 3) frames seen ``factor`` times closer (> 1: the centre cropped and enlarged; < 1: shrunk, the
    border filled by reflecting the frame), same size."""
    height, width = frames.shape[1:3]
    if factor > 1:
        crop_h, crop_w = round(height / factor), round(width / factor)
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        return resize_center_crop(frames[:, top:top + crop_h, left:left + crop_w], height, width)
    small_h, small_w = round(height * factor), round(width * factor)
    top, left = (height - small_h) // 2, (width - small_w) // 2
    return np.pad(resize_center_crop(frames, small_h, small_w),
                  ((0, 0), (top, height - small_h - top), (left, width - small_w - left), (0, 0)), mode="reflect")


def scale_view_vectors(featurizer: Featurizer, prepared: PreparedClip) -> np.ndarray:
    """(len(SCALE_VIEWS), D′): the clip's vector under ``featurizer``'s settings at each zoom of SCALE_VIEWS,
    its motion and mask estimated again on the zoomed frames."""
    fps = featurizer.adapter.geometry.fps
    return np.stack([featurizer.vector(featurizer.prepare(Video(zoomed(prepared.frames, z), fps, f"zoom {z:g}")), "")
                     for z in SCALE_VIEWS]).astype(np.float64)


@functools.cache  # one set per featurizer: building a projector draws its random tables
def group_projectors(gradients: GradientProjector) -> dict[str, tuple[list[int], Projector]]:
    """For each PARAMETER_GROUPS group: the positions of its parameters among ``gradients``' and a Fastfood
    projection of their entries to the same D′ (seed: the settings' plus the group's number)."""
    names = [name for name, _ in gradients.parameters]
    settings, groups = gradients.settings, {}
    for number, (group, pattern) in enumerate(PARAMETER_GROUPS.items()):
        members = [i for i, name in enumerate(names) if re.search(pattern, name)]
        size = sum(gradients.parameters[i][1].numel() for i in members)
        config = FastfoodConfig(settings.proj_dim, settings.proj_seed + 1 + number, settings.block_size)
        groups[group] = members, build_projector(settings.projector, config, size)
    return groups


def group_gradients(featurizer: Featurizer, prepared: PreparedClip) -> np.ndarray:
    """(timesteps, groups, D′): each PARAMETER_GROUPS group's projected gradient, not normalised, at each of the
    settings' scheduler indexes (one backward pass each)."""
    adapter, gradients = featurizer.adapter, featurizer.gradients
    condition = adapter.encode_prompt(featurizer.settings.conditioning_prompt(""))
    latents, weight = adapter.encode(prepared.frames), torch.from_numpy(prepared.latent_mask)
    rows = []
    for t in featurizer.settings.timesteps:
        grads = gradients.parameter_gradients(gradients.loss(latents, condition, weight, t))
        rows.append([])
        for members, projector in group_projectors(gradients).values():
            stream = projector.stream()
            for i in members:
                stream.update(grads[i])
            rows[-1].append(stream.finish().cpu().numpy())
    return np.array(rows, np.float64)


def group_vectors(rows: np.ndarray) -> dict[str, np.ndarray]:
    """Each GROUP_VARIANTS variant's vectors from ``group_gradients`` rows (n, timesteps, groups, D′): one
    group's gradient alone, or each layer's normalised and concatenated; per timestep, then the normalised mean
    over timesteps, as the shipped ensemble."""
    groups = list(PARAMETER_GROUPS)
    vectors = {f"{ENSEMBLE}, {group} only": unit(unit(rows[:, :, g]).sum(axis=1)) for g, group in enumerate(groups)}
    layers = unit(rows[:, :, [groups.index(layer) for layer in LAYERS]])
    vectors[EACH_LAYER] = unit(unit(layers.reshape(*layers.shape[:2], -1)).sum(axis=1))
    return vectors


def training_rows(kind: str, model, index: AttributionIndex, settings: AttributionSettings,
                  compute: Callable[[Featurizer, PreparedClip], np.ndarray]) -> np.ndarray:
    """``compute`` of every clip of ``index`` under ``settings``, cached per demo model, noise draw and
    ``kind`` (extra backward passes for all the demo's clips: about 5 min each)."""
    path = cache_root() / "indexes" / f"{kind}-{demo_model_hash()}-noise{settings.noise_seed}.npz"
    ids = [clip["id"] for clip in index.clips]
    if path.is_file():
        cached = np.load(path)
        if list(cached["ids"]) == ids:
            return cached["rows"]
    featurizer = Featurizer(model, settings)
    log(f"{kind} gradients of {len(ids)} training clips (noise draw {settings.noise_seed})")
    rows = np.stack([compute(featurizer, featurizer.prepare_file(index.clip_path(clip))) for clip in index.clips])
    np.savez(path, ids=np.array(ids), rows=rows)
    return rows


def variant_index(name: str, model) -> AttributionIndex:
    """The cached index for ``name``, built with the engine (and its build time recorded) when missing."""
    folder = cache_root() / "indexes" / name
    if not (folder / "config.json").is_file() or not json.loads((folder / "config.json").read_text()).get("complete"):
        settings = dataclasses.replace(BASE_SETTINGS, **VARIANT_INDEXES[name])
        log(f"building {repo_relative(folder)} ({VARIANT_INDEXES[name]})")
        start = time.perf_counter()
        build_index(DEMO_CLIPS, folder, Featurizer(model, settings), model_spec=str(DEMO_MODEL))
        (folder.parent / f"{name}.seconds.json").write_text(json.dumps({"seconds": time.perf_counter() - start}))
    return AttributionIndex(folder)


def build_seconds(name: str) -> float | None:
    path = cache_root() / "indexes" / f"{name}.seconds.json"
    return json.loads(path.read_text())["seconds"] if path.is_file() else None


def paired_rows(per_query: dict[str, np.ndarray], sets: np.ndarray, pairs: list[tuple[str, str]]) -> list[dict]:
    """Per pair and query set: P@10 of the first minus the second, paired per query."""
    return [{"queries": subset, "comparison": f"{first} − {second}",
             **paired_summary(per_query[first][in_subset(sets, subset)], per_query[second][in_subset(sets, subset)])}
            for first, second in pairs for subset in SUBSETS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-motion", type=int, default=4, help="rendered queries per motion and look set")
    parser.add_argument("--generated", type=int, default=2, help="generated queries per motion")
    parser.add_argument("--independent", type=int, default=10, help="independent-renderer queries per motion")
    parser.add_argument("--name", default="gradient_variants")
    args = parser.parse_args()
    start = time.perf_counter()
    model = load_model(DEMO_MODEL, device="cpu")
    names = list(dict.fromkeys(name for variant in ALL_VARIANTS for name in variant.indexes
                               if name in VARIANT_INDEXES))
    indexes = {name: variant_index(name, model) for name in names}
    base = indexes[BASE]
    clip_ids = [clip["id"] for clip in base.clips]
    for name, index in indexes.items():
        if [clip["id"] for clip in index.clips] != clip_ids:
            raise SystemExit(f"{repo_relative(index.folder)} does not hold the baseline's clips in its order")
    clip_motions = np.array([clip["labels"]["motion"] for clip in base.clips])

    log("rendering, generating and preparing the queries")
    independent = independent_queries(args.independent, seed=0) if args.independent else []
    queries = query_list(model, args.per_motion, args.generated, independent)
    featurizers = {name: Featurizer(model, AttributionSettings.from_vector_config(index.config))
                   for name, index in indexes.items()}
    for name, featurizer in featurizers.items():
        indexes[name].check_query_config(featurizer.config())
    prepared = [featurizers[BASE].prepare(q["video"]) for q in queries]
    query_vectors, query_seconds = {}, {}
    for name, featurizer in featurizers.items():
        log(f"query vectors under {name}")
        begin = time.perf_counter()
        query_vectors[name] = np.stack([featurizer.vector(p, "") for p in prepared]).astype(np.float64)
        query_seconds[name] = (time.perf_counter() - begin) / len(queries)
    index_vectors = {name: np.asarray(index.vectors, np.float64) for name, index in indexes.items()}
    log("still-reference gradients of the queries")
    for settings in dict.fromkeys(still.settings for still in STILL_REFERENCES):
        training_pairs = training_rows("still-reference", model, base, settings, reference_gradients)
        begin = time.perf_counter()
        featurizer = Featurizer(model, settings)
        query_pairs = np.stack([reference_gradients(featurizer, p) for p in prepared])
        seconds = (time.perf_counter() - begin) / len(queries)
        for still in (s for s in STILL_REFERENCES if s.settings == settings):
            name = still.variant.name
            index_vectors[name] = still_reference(training_pairs, still.alpha)
            query_vectors[name] = still_reference(query_pairs, still.alpha)
            query_seconds[name] = seconds
    log("time-resolved gradients of the queries")
    training_bins = training_rows(f"time-resolved{TIME_BINS}", model, base, BASE_SETTINGS, binned_gradients)
    begin = time.perf_counter()
    query_bins = np.stack([binned_gradients(featurizers[BASE], p) for p in prepared])
    seconds = (time.perf_counter() - begin) / len(queries)
    for name, each_unit in TIME_RESOLVED.items():
        index_vectors[name] = time_resolved(training_bins, each_unit)
        query_vectors[name] = time_resolved(query_bins, each_unit)
        query_seconds[name] = seconds
    log("gradients of other loss shapes for the queries")
    for shape in LOSS_SHAPES:
        compute = shaped_gradient(shape)
        index_vectors[shape.name] = unit(training_rows(f"loss-{shape.key}", model, base, BASE_SETTINGS, compute))
        begin = time.perf_counter()
        query_vectors[shape.name] = unit(np.stack([compute(featurizers[BASE], p) for p in prepared]))
        query_seconds[shape.name] = (time.perf_counter() - begin) / len(queries)
    log("scale views of the queries")
    ensemble = next(v for v in VARIANTS if v.name == ENSEMBLE)
    training_views = training_rows("scale-views", model, base, ENSEMBLE_SETTINGS, scale_view_vectors)
    begin = time.perf_counter()
    featurizer = Featurizer(model, ENSEMBLE_SETTINGS)
    query_views = np.stack([scale_view_vectors(featurizer, p) for p in prepared])
    query_seconds[SCALED] = ((time.perf_counter() - begin) / len(queries)
                             + sum(query_seconds[name] for name in ensemble.indexes))
    index_vectors[SCALED] = unit(ensemble.vectors(index_vectors) + training_views.sum(axis=1))
    query_vectors[SCALED] = unit(ensemble.vectors(query_vectors) + query_views.sum(axis=1))
    log("parameter groups' gradients of the queries")
    training_groups = group_vectors(training_rows("parameter-groups", model, base, ENSEMBLE_SETTINGS,
                                                  group_gradients))
    begin = time.perf_counter()
    query_groups = group_vectors(np.stack([group_gradients(featurizer, p) for p in prepared]))
    seconds = (time.perf_counter() - begin) / len(queries)
    for name, vectors in training_groups.items():
        index_vectors[name], query_vectors[name], query_seconds[name] = vectors, query_groups[name], seconds
    descriptors, _ = training_features(base, model.geometry)
    flow = np.stack([descriptor_similarity(clip_descriptor(p.frames), descriptors) for p in prepared])

    query_motions = [q["motion"] for q in queries]
    sets = np.array([q["set"] for q in queries])
    per_query, top_one, loo, own = {}, {}, {}, {}
    for variant in ALL_VARIANTS:
        train = variant.vectors(index_vectors)
        asked = unit(sum(unit(query_vectors[name]) for name in variant.indexes))
        scores = variant.similarity(train, asked)
        per_query[variant.name] = precision_at_10(scores, clip_motions, query_motions)
        top_one[variant.name] = top_clip_same(scores, clip_motions, query_motions)
        loo[variant.name] = float(precision_at_10(leave_one_out_similarity(variant.similarity, train), clip_motions,
                                                  list(clip_motions)).mean())
        own[variant.name] = {s: own_grouping(leave_one_out_similarity(variant.similarity, asked[sets == s]),
                                              query_motions, sets, s) for s in OWN_SETS}
    base_name = ALL_VARIANTS[0].name
    figure_rows = [{
        "variant": variant.name,
        **{f"P@10 {s}": float(per_query[variant.name][in_subset(sets, s)].mean()) for s in SUBSETS},
        **{f"top clip same motion, {s}": float(top_one[variant.name][sets == s].mean()) for s in OWN_SETS},
        "training clips, leave-one-out P@10": loo[variant.name],
        **{f"{s} clips, nearest own clip same motion": own[variant.name][s] for s in OWN_SETS},
        "gradients per clip": variant.gradients_per_clip,
        "query seconds": sum(query_seconds[n] for n in variant.indexes),
    } for variant in ALL_VARIANTS]
    flow_scores = precision_at_10(flow, clip_motions, query_motions)
    query_flow = np.stack([clip_descriptor(p.frames) for p in prepared])
    flow_top = top_clip_same(flow, clip_motions, query_motions)
    figure_rows.append({"variant": "flow descriptor (no model)",
                        **{f"P@10 {s}": float(flow_scores[in_subset(sets, s)].mean()) for s in SUBSETS},
                        **{f"top clip same motion, {s}": float(flow_top[sets == s].mean()) for s in OWN_SETS},
                        **{f"{s} clips, nearest own clip same motion": own_grouping(
                            leave_one_out_similarity(descriptor_similarity, query_flow[sets == s]),  # own statistics
                            query_motions, sets, s) for s in OWN_SETS}})
    words_only = precision_at_10(no_prompt_word_scores([clip["caption"] for clip in base.clips], len(queries)),
                                 clip_motions, query_motions)
    figure_rows.append({"variant": "caption-only: words shared with the prompt (none given)",
                        **{f"P@10 {s}": float(words_only[in_subset(sets, s)].mean()) for s in SUBSETS}})
    against_base = [(variant.name, base_name) for variant in ALL_VARIANTS[1:]]
    built = {name: build_seconds(name) for name in names if build_seconds(name) is not None}
    counts = {s: int((sets == s).sum()) for s in SETS}
    notes = [
        f"Queries (no prompt; every index here is conditioned on the null prompt, so a prompt would change "
        f"nothing; the caption-only row ranks clips by the words their captions share with the query's prompt, "
        f"of which there is none): {counts}, the held-out sets of bench_retrieval. Training clips: the "
        f"{len(clip_ids)} of {repo_relative(base.folder)} (static clips are refused by a masked index). Variant "
        f"indexes: "
        f"{repo_relative(cache_root() / 'indexes')}/<name> ("
        + ", ".join(f"{name}: {changes}" for name, changes in VARIANT_INDEXES.items()) + ").",
        "Ensembles average the ℓ2-normalised vectors of the listed indexes, for the index and the query alike, "
        "then compare by cosine (or CSLS where named). 'gradients per clip' is the build and query cost in units "
        "of today's one backward pass; 'query seconds' is measured here per query (motion estimation excluded).",
        "Recorded build times of the variant indexes on this machine (seconds, one worker, 597 clips): "
        + (", ".join(f"{name} {seconds:.0f}" for name, seconds in built.items()) or "none recorded") + ".",
        f"Intervals: 95 % bootstrap of the mean per-query difference (10,000 resamples). Run time "
        f"{(time.perf_counter() - start) / 60:.1f} min on this CPU.",
    ]
    save(args.name, {"P@10 by motion, no prompt": figure_rows,
                     "Paired per query against the one-timestep baseline (P@10 by motion, no prompt)":
                         paired_rows(per_query, sets, against_base),
                     "The same gain on another noise draw (paired per query, no prompt)":
                         paired_rows(per_query, sets, list(REPLICATIONS)),
                     "A still reference against the ensemble it is taken on (paired per query, no prompt)":
                         paired_rows(per_query, sets, STILL_PAIRS),
                     "Time-resolved vectors against the shipped ensemble (paired per query, no prompt)":
                         paired_rows(per_query, sets, TIME_RESOLVED_PAIRS),
                     "Two more timesteps against the shipped ensemble (paired per query, no prompt)":
                         paired_rows(per_query, sets, WIDER_PAIRS),
                     "Query expansion against the shipped ensemble (paired per query, no prompt)":
                         paired_rows(per_query, sets, EXPANSION_PAIRS),
                     "Scale views against the shipped ensemble (paired per query, no prompt)":
                         paired_rows(per_query, sets, SCALE_PAIRS),
                     "Parameter groups against the whole gradient (paired per query, no prompt)":
                         paired_rows(per_query, sets, GROUP_PAIRS)},
         [*notes, reading(per_query, sets, base_name)])


def reading(per_query: dict[str, np.ndarray], sets: np.ndarray, baseline: str) -> str:
    """The paragraph that reads the tables, its figures taken from them."""
    others = [v for v in ALL_VARIANTS if v.name != baseline]
    rows = {(row["comparison"], row["queries"]): row
            for row in paired_rows(per_query, sets, [(v.name, baseline) for v in others])}

    def stated(name: str, subset: str = "all queries") -> str:
        row = rows[(f"{name} − {baseline}", subset)]
        return f"{row['mean difference']:+.3f} {row['95 % interval']}"

    def better_everywhere(name: str) -> bool:
        pooled = rows[(f"{name} − {baseline}", "all queries")]
        return (pooled["excludes 0"] and pooled["mean difference"] > 0
                and all(rows[(f"{name} − {baseline}", s)]["mean difference"] > 0 for s in SETS))

    winners = [v for v in others if better_everywhere(v.name)]
    found = "; ".join(f"{v.name} ({', '.join(f'{s} {stated(v.name, s)}' for s in SETS)}; {v.gradients_per_clip} "
                      f"backward pass{'es' if v.gradients_per_clip > 1 else ''} per clip and per query)" for v in winners)
    return ("**Reading.** Paired difference against the one-timestep baseline over all queries, 95 % interval: "
            + "; ".join(f"{v.name} {stated(v.name)}" for v in others) + ". "
            + (f"Higher on every query set, with the pooled interval above zero: {found}." if winners else
               "No variant is higher on every query set with the pooled interval above zero.")
            + " The demo's motion preset now averages t 300, 500 and 700 (t_ensemble), so precomputed/index-motion "
              "holds that ensemble; the baseline is the index it replaced. "
            + still_reading(per_query, sets))


STILL_PAIRS = [(still.variant.name, still.ensemble) for still in STILL_REFERENCES]
# the time-resolved vectors against the shipped ensemble: the same three backward passes, spent otherwise
TIME_RESOLVED_PAIRS = [(name, ENSEMBLE) for name in TIME_RESOLVED]
# the five-timestep ensemble against the shipped three: what two more backward passes buy
WIDER = "timestep ensemble t 100 + 300 + 500 + 700 + 900"
WIDER_PAIRS = [(WIDER, ENSEMBLE)]
# query expansion on the shipped ensemble against the ensemble alone: what re-reading the query buys, at no
# backward pass
EXPANSION_PAIRS = [(f"{ENSEMBLE}, query expansion k = 1", ENSEMBLE)]
# the scale views against the shipped ensemble, alone and both read with query expansion: what looking at the
# clip at other sizes buys, and whether it stacks with the expansion
SCALE_PAIRS = [(SCALED, ENSEMBLE), (f"{SCALED}, query expansion k = 1", f"{ENSEMBLE}, query expansion k = 1")]
# the parameter groups that come nearest the whole gradient, and every layer weighed alike, against it
NEAREST_GROUPS = ("patch embedding", "first block", "self-attention")
GROUP_PAIRS = [*((f"{ENSEMBLE}, {group} only", ENSEMBLE) for group in NEAREST_GROUPS), (EACH_LAYER, ENSEMBLE)]


def pairs_reading(per_query: dict[str, np.ndarray], sets: np.ndarray, pairs: list[tuple[str, str]]) -> str:
    """Each pair's paired difference on every query set, as a sentence."""
    rows = {(row["comparison"], row["queries"]): row for row in paired_rows(per_query, sets, pairs)}
    return "; ".join(f"{first} − {second}: " + ", ".join(
        f"{subset} {row['mean difference']:+.3f} {row['95 % interval']}"
        for subset in SETS for row in [rows[(f"{first} − {second}", subset)]]) for first, second in pairs) + "."


def still_reading(per_query: dict[str, np.ndarray], sets: np.ndarray) -> str:
    """The still reference against the ensemble it is taken on (a gain over the one-timestep baseline above is
    mostly the ensemble's, so this says what the still reference adds), the time-resolved vectors against the
    shipped ensemble, which spends the same backward passes on timesteps instead of stretches of frames, and
    the five-timestep ensemble, query expansion, the scale views and parameter groups against the shipped
    ensemble."""
    return ("Against the ensemble it is taken on: " + pairs_reading(per_query, sets, STILL_PAIRS)
            + " Against the shipped ensemble, at the same cost: " + pairs_reading(per_query, sets, TIME_RESOLVED_PAIRS)
            + " Against the shipped ensemble, with two more timesteps: " + pairs_reading(per_query, sets, WIDER_PAIRS)
            + " Against the shipped ensemble, its query expanded: " + pairs_reading(per_query, sets, EXPANSION_PAIRS)
            + " Scale views against the shipped ensemble (alone; both expanded): "
            + pairs_reading(per_query, sets, SCALE_PAIRS)
            + " Parameter groups against the whole gradient: " + pairs_reading(per_query, sets, GROUP_PAIRS))


if __name__ == "__main__":
    main()
