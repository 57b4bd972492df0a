"""Index builds: featurize every clip of a folder into the units of an index (``index.py``), locally or in
a process pool, with progress reports; resumable because finished units are kept.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from motive_core.data import Clip
from motive_core.errors import MotiveError
from motive_core.featurize import Featurizer, PreparedClip
from motive_core.index import BuildPlan, finalize, prepare_build

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
    plan.commit_unit(unit, rows, vectors, featurizer.settings.proj_dim)
    return timings


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
