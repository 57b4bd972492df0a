"""The on-disk attribution index: build once (resumable, parallel), load memory-mapped, query cheaply.

Layout (DESIGN "Contracts"):
  config.json   {"vector_config": every setting that changes a vector, "clip_list_sha", "num_clips",
                 "unit_size", "dim", "complete"}
  units/        unit-NNNNNN.jsonl + unit-NNNNNN.npy: one work unit of clips; the .npy is renamed into place
                last, so its presence marks the unit done (kill -9 at any moment loses at most the unit in
                flight and never leaves a half-written file under a final name)
  masks/        optional: each clip's latent mask + motion statistics, cached by a cluster build's mask stage
                (``distributed.py``)
  clips.jsonl   per-clip metadata (id, file, caption, labels, motion statistics, row), after the last unit
  vectors.npy   (N, D′) float32 ℓ2-normalised rows, memory-mapped on load
No pickle anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from motive_core.attribution.scoring import cosine_scores, top_and_bottom
from motive_core.config import require_same_config, upgrade_vector_config
from motive_core.data import Clip, load_clip_folder
from motive_core.errors import ConfigMismatchError, MotiveError
from motive_core.featurize import Featurizer, PreparedClip

CONFIG, CLIPS, VECTORS, UNITS = "config.json", "clips.jsonl", "vectors.npy", "units"


def _temporary_name(path: Path) -> str:
    """A sibling name no other writer uses, even another host's process with the same pid on a shared disk."""
    return f".{path.name}.{uuid.uuid4().hex}.tmp"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary sibling, fsync, then rename: readers never see a partial file."""
    tmp = path.with_name(_temporary_name(path))
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, data: dict) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=2, sort_keys=True).encode())


def atomic_write_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(_temporary_name(path) + ".npy")
    np.save(tmp, array)
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    atomic_write_bytes(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows).encode())


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def clip_list_sha(clips: list[Clip]) -> str:
    """Identity of the clip list (ids, captions, file sizes) so a resume cannot mix two corpora."""
    digest = hashlib.sha256()
    for clip in clips:
        size = clip.file.stat().st_size if clip.file.exists() else -1
        digest.update(f"{clip.id}\t{clip.caption}\t{size}\n".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class BuildPlan:
    """What an index build must do: the clips, how they are cut into units, and where they go."""

    out: Path
    clips: list[Clip]
    unit_size: int

    @property
    def num_units(self) -> int:
        return (len(self.clips) + self.unit_size - 1) // self.unit_size

    def unit_clips(self, unit: int) -> list[Clip]:
        return self.clips[unit * self.unit_size:(unit + 1) * self.unit_size]

    def unit_paths(self, unit: int) -> tuple[Path, Path]:
        base = self.out / UNITS / f"unit-{unit:06d}"
        return base.with_suffix(".jsonl"), base.with_suffix(".npy")

    def unit_done(self, unit: int) -> bool:
        meta, vectors = self.unit_paths(unit)
        return meta.is_file() and vectors.is_file()

    def is_complete(self) -> bool:
        config = self.out / CONFIG
        return config.is_file() and bool(json.loads(config.read_text()).get("complete"))

    def pending_units(self) -> list[int]:
        if self.is_complete():
            return []
        return [u for u in range(self.num_units) if not self.unit_done(u)]


Preparer = Callable[[Clip], PreparedClip]


def compute_unit(featurizer: Featurizer, plan: BuildPlan, unit: int, prepare: Preparer | None = None) -> dict:
    """Featurize one unit's clips and commit them atomically; returns summed per-stage seconds.

    ``prepare`` replaces the decode → motion → mask step (e.g. by a read from a mask cache); it must give
    the same frames, latent mask and statistics. A clip that fails (unreadable video, non-finite
    gradient) is recorded with its error and no row; the rest of the unit is kept.
    """
    rows, vectors, timings = [], [], {}
    for clip in plan.unit_clips(unit):
        record = clip.to_dict()
        try:
            prepared = prepare(clip) if prepare else featurizer.prepare_file(clip.file)
            vectors.append(featurizer.vector(prepared, clip.caption))
            record.update(row=len(vectors) - 1, motion=prepared.stats.to_dict())
            for stage, seconds in prepared.timings.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
        except MotiveError as err:
            record.update(row=None, error=str(err))
        rows.append(record)
    meta_path, vector_path = plan.unit_paths(unit)
    dim = featurizer.settings.proj_dim
    write_jsonl(meta_path, rows)
    atomic_write_npy(vector_path, np.stack(vectors) if vectors else np.zeros((0, dim), np.float32))
    return timings


def prepare_build(data: str | Path, out: str | Path, vector_config: dict, dim: int, unit_size: int = 8,
                  model_spec: str | None = None) -> BuildPlan:
    """Create or reopen an index folder; refuse to resume one built with other settings or clips.

    ``vector_config`` is ``Featurizer.config()`` of the process(es) that compute the vectors.
    """
    clips = load_clip_folder(data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    header = {"vector_config": vector_config, "clip_list_sha": clip_list_sha(clips),
              "num_clips": len(clips), "unit_size": unit_size, "dim": dim}
    config_path = out / CONFIG
    if config_path.is_file():
        existing = json.loads(config_path.read_text())
        existing["vector_config"] = upgrade_vector_config(existing.get("vector_config", {}))
        try:
            require_same_config({k: existing.get(k) for k in header}, header)
        except ConfigMismatchError as err:
            raise ConfigMismatchError(f"{out} holds an index built differently; use a new --out folder. {err}") from None
    else:
        data_root = os.path.relpath(Path(data).resolve(), out.resolve())
        atomic_write_json(config_path, {**header, "data_root": data_root, "model_spec": model_spec, "complete": False})
    plan = BuildPlan(out, clips, unit_size)
    if not plan.is_complete():
        (out / UNITS).mkdir(exist_ok=True)
    return plan


def finalize(plan: BuildPlan) -> dict:
    """Merge the units, in order, into clips.jsonl + vectors.npy, mark the index complete, drop the units.

    The units are only the build's working state: once merged they would double the index on disk.
    """
    if plan.is_complete():
        config = json.loads((plan.out / CONFIG).read_text())
        return {"indexed": config["num_indexed"], "failed": config["failed"]}
    missing = plan.pending_units()
    if missing:
        raise MotiveError(f"{len(missing)} of {plan.num_units} units are not built yet; run build-index again")
    records, blocks = [], []
    for unit in range(plan.num_units):
        meta_path, vector_path = plan.unit_paths(unit)
        unit_vectors = np.load(vector_path)
        offset = sum(len(b) for b in blocks)
        for record in read_jsonl(meta_path):
            if record.get("row") is not None:
                record["row"] += offset
            records.append(record)
        blocks.append(unit_vectors)
    vectors = np.concatenate(blocks).astype(np.float32)
    indexed = [r for r in records if r.get("row") is not None]
    atomic_write_npy(plan.out / VECTORS, vectors)
    write_jsonl(plan.out / CLIPS, indexed)
    config = json.loads((plan.out / CONFIG).read_text())
    failed = [{"id": r["id"], "error": r["error"]} for r in records if r.get("row") is None]
    atomic_write_json(plan.out / CONFIG, {**config, "complete": True, "num_indexed": len(indexed), "failed": failed})
    shutil.rmtree(plan.out / UNITS, ignore_errors=True)
    return {"indexed": len(indexed), "failed": failed}


@dataclass(frozen=True)
class BuildProgress:
    """Where one stage of a build stands: units done of total, and this run's clip rate and time to go."""

    stage: str
    units_done: int
    units_total: int
    clips_done: int
    clips_left: int
    seconds: float

    @property
    def clips_per_second(self) -> float:
        return self.clips_done / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        rate = self.clips_per_second
        return self.clips_left / rate if rate > 0 else None

    def __str__(self) -> str:
        eta = "?" if self.eta_seconds is None else _hours(self.eta_seconds)
        return (f"{self.stage}: {self.units_done}/{self.units_total} units, "
                f"{self.clips_per_second:.2f} clips/s, ETA {eta}")


def _hours(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


ProgressCallback = Callable[[BuildProgress], None]


class ProgressMeter:
    """Counts the units (and their clips) a run finishes, for BuildProgress reports."""

    def __init__(self, plan: BuildPlan, pending: list[int], stage: str = "units"):
        self.plan, self.stage = plan, stage
        self.units_done = plan.num_units - len(pending)
        self.clips_done = 0
        self.clips_left = sum(len(plan.unit_clips(unit)) for unit in pending)
        self.start = time.perf_counter()

    def advance(self, unit: int) -> BuildProgress:
        clips = len(self.plan.unit_clips(unit))
        self.units_done += 1
        self.clips_done += clips
        self.clips_left -= clips
        return self.report()

    def report(self) -> BuildProgress:
        return BuildProgress(self.stage, self.units_done, self.plan.num_units, self.clips_done, self.clips_left,
                             time.perf_counter() - self.start)


UnitRunner = Callable[[BuildPlan, list[int]], Iterable[tuple[int, dict]]]


def build_index(data: str | Path, out: str | Path, featurizer: Featurizer, unit_size: int = 8,
                workers: int = 1, model_spec: str | None = None, progress: ProgressCallback | None = None) -> dict:
    """Build (or resume) an index of every clip in ``data``; returns counts and per-stage seconds.

    ``workers > 1`` runs units in that many local processes (each loads the model from ``model_spec``).
    """
    plan = prepare_build(data, out, featurizer.config(), featurizer.settings.proj_dim, unit_size, model_spec)

    def run_units(plan: BuildPlan, pending: list[int]) -> Iterable[tuple[int, dict]]:
        if workers > 1:
            return _run_parallel(plan, pending, featurizer, workers, model_spec)
        return ((unit, compute_unit(featurizer, plan, unit)) for unit in pending)
    return run_build(plan, run_units, progress)


def run_build(plan: BuildPlan, run_units: UnitRunner, progress: ProgressCallback | None = None) -> dict:
    """Compute the pending units with ``run_units`` (which yields (unit, per-stage seconds) as units
    finish, in any order), report progress, then merge; the same for local and cluster builds."""
    pending = plan.pending_units()
    start = time.perf_counter()
    timings: dict[str, float] = {}
    meter = ProgressMeter(plan, pending)
    if progress:
        progress(meter.report())
    for unit, unit_timings in (run_units(plan, pending) if pending else ()):
        for stage, seconds in unit_timings.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
        report = meter.advance(unit)
        if progress:
            progress(report)
    summary = finalize(plan)
    return {**summary, "units": plan.num_units, "units_built": len(pending),
            "seconds": time.perf_counter() - start, "stage_seconds": timings}


def _run_parallel(plan: BuildPlan, units: list[int], featurizer: Featurizer, workers: int, model_spec: str | None):
    """Units over a local process pool; every process loads its own model once."""
    import multiprocessing as mp

    if model_spec is None:
        raise MotiveError("parallel builds need the model given by name or folder (model_spec)")
    device = str(featurizer.adapter.device)
    dtype = str(featurizer.adapter.dtype).replace("torch.", "")
    context = mp.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker,
                      initargs=(model_spec, device, dtype, featurizer.settings, max(1, (os.cpu_count() or 1) // workers))) as pool:
        yield from pool.imap_unordered(_worker_unit, [(plan, unit) for unit in units])


_WORKER: dict = {}


def _init_worker(model_spec: str, device: str, dtype: str, settings, threads: int) -> None:
    import torch

    from motive_core.models import load_model

    torch.set_num_threads(threads)
    _WORKER["featurizer"] = Featurizer(load_model(model_spec, device=device, dtype=dtype), settings)


def _worker_unit(args: tuple[BuildPlan, int]) -> tuple[int, dict]:
    plan, unit = args
    return unit, compute_unit(_WORKER["featurizer"], plan, unit)


class AttributionIndex:
    """A complete index folder: its settings, clip records and memory-mapped vectors."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        config_path = self.folder / CONFIG
        if not config_path.is_file():
            raise MotiveError(f"{self.folder} is not an attribution index (no {CONFIG}); build one with build-index")
        self.header = json.loads(config_path.read_text())
        if not self.header.get("complete"):
            raise MotiveError(f"the index at {self.folder} is incomplete; run build-index with the same --out to finish it")
        self.clips = read_jsonl(self.folder / CLIPS)
        self.vectors = np.load(self.folder / VECTORS, mmap_mode="r")
        if self.vectors.shape[0] != len(self.clips):
            raise MotiveError(f"{self.folder} is damaged: {self.vectors.shape[0]} vectors for {len(self.clips)} clips")

    @property
    def config(self) -> dict:
        """Every setting that changed these vectors (settings added since the index was built filled in)."""
        return upgrade_vector_config(self.header["vector_config"])

    def check_query_config(self, query_config: dict) -> None:
        require_same_config(self.config, query_config)

    def scores(self, query_vector: np.ndarray) -> np.ndarray:
        """Cosine influence of every indexed clip on the query (Eq. 10)."""
        return cosine_scores(self.vectors, query_vector)

    def rank(self, scores: np.ndarray, top: int = 10) -> dict:
        """Most positive and most negative clips (by the given scores) with their metadata."""
        positives, negatives = top_and_bottom(scores, top)
        return {"positives": [self._entry(i, scores) for i in positives.indices],
                "negatives": [self._entry(i, scores) for i in negatives.indices]}

    def _entry(self, row: int, scores: np.ndarray) -> dict:
        clip = self.clips[int(row)]
        return {"id": clip["id"], "file": clip["file"], "caption": clip["caption"], "labels": clip.get("labels", {}),
                "score": float(scores[int(row)]), "motion": clip.get("motion", {})}

    def clip_path(self, clip: dict) -> Path:
        """A clip's video: the clip folder is recorded relative to the index folder."""
        return (self.folder / self.header.get("data_root", ".") / clip["file"]).resolve()
