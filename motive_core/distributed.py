"""Index builds on a Ray cluster: the units, shards and index format of a local build, spread over many workers.

What the driver (the process running ``build-index --ray``) does:

1. One task with a worker's resources loads the model and returns ``Featurizer.config()``, so ``config.json``
   records the workers' device, dtype and weight hash, not the driver's. The index folder is then opened
   exactly like a local build (``prepare_build``: other settings or clips are refused, a finished unit is
   never redone).
2. With ``mask_stage``, CPU-only tasks decode, standardise and estimate the motion of the pending units'
   clips and cache each clip's latent mask and motion statistics as ``masks/<clip id>.npz``. A GPU worker
   then only decodes a clip and reads its mask; a clip without a cached mask is prepared inline.
3. One actor per worker loads the model once and computes whole units with ``compute_unit``, each unit's
   shard written atomically into ``units/``. Each live actor holds one unit at a time, so a dead worker
   loses one unit: it goes back to the queue (``max_attempts`` tries per unit), Ray restarts the actor
   (``max_restarts``) and it rejoins once its model is loaded again.
4. ``finalize`` merges the shards, as for a local build.

Killing the driver kills its actors (Ray ties them to it) and loses only the units in flight: rerunning the
command finishes the rest. Every node must see the clip, model and index folders at the same paths (a shared
file system) and have this package's dependencies installed; the package's folder is put on the workers'
Python path.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from motive_core.build import Preparer, ProgressCallback, ProgressMeter, compute_unit, run_build
from motive_core.config import AttributionSettings
from motive_core.data import Clip
from motive_core.errors import MotiveError
from motive_core.featurize import Featurizer, PreparedClip, prepare_clip
from motive_core.files import atomic_write_bytes
from motive_core.index import UNITS, BuildPlan, prepare_build
from motive_core.mask import MotionStats
from motive_core.models import load_model
from motive_core.models.base import VideoGeometry
from motive_core.motion import get_estimator
from motive_core.video import read_video, standardize

MASKS = "masks"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RayOptions:
    """How a build uses the cluster. ``workers=None``: as many workers as the cluster's resources hold.

    ``device``/``dtype`` ``None``: CUDA + bf16 (+ gradient checkpointing, via ``load_model``) for workers
    with a GPU, CPU + fp32 for workers without one.
    """

    address: str = "auto"
    workers: int | None = None
    num_gpus_per_worker: float = 0.0
    num_cpus_per_worker: float = 1.0
    mask_stage: bool = False
    device: str | None = None
    dtype: str | None = None
    max_attempts: int = 3
    max_restarts: int = 3

    def resources(self) -> dict:
        return {"num_cpus": self.num_cpus_per_worker, "num_gpus": self.num_gpus_per_worker}

    def worker_device(self) -> str | None:
        """The device workers load the model on; refuses CUDA for workers given no GPU."""
        if self.num_gpus_per_worker > 0:
            return self.device
        if self.device and self.device.startswith("cuda"):
            raise MotiveError(f"--device {self.device} needs GPUs: give --num-gpus-per-worker (e.g. 1)")
        return self.device or "cpu"

    def capacity(self, cluster: dict) -> int:
        """How many workers the cluster's resources hold (at least one must fit)."""
        fits = [cluster.get("CPU", 0.0) / self.num_cpus_per_worker] if self.num_cpus_per_worker > 0 else []
        if self.num_gpus_per_worker > 0:
            fits.append(cluster.get("GPU", 0.0) / self.num_gpus_per_worker)
        count = int(min(fits) + 1e-9) if fits else 1
        if count < 1:
            raise MotiveError(f"no worker fits on the cluster: each needs {self.num_cpus_per_worker} CPU and "
                              f"{self.num_gpus_per_worker} GPU, the cluster has {cluster.get('CPU', 0)} CPU and "
                              f"{cluster.get('GPU', 0)} GPU")
        return count


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to build the same Featurizer as every other worker."""

    model_spec: str
    settings: AttributionSettings
    device: str | None
    dtype: str | None
    threads: int

    def featurizer(self) -> Featurizer:
        """Load the model; torch threads are pinned so results do not depend on the node's core count."""
        import torch

        torch.set_num_threads(self.threads)
        return Featurizer(load_model(self.model_spec, device=self.device, dtype=self.dtype), self.settings)


# ------------------------------------------------------------------------------------------- mask cache


def mask_path(out: str | Path, clip: Clip) -> Path:
    return Path(out) / MASKS / f"{clip.id}.npz"


def save_mask(path: Path, prepared: PreparedClip) -> None:
    """A clip's latent mask and motion statistics as one .npz (plain arrays, no pickle), written atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, latent_mask=prepared.latent_mask, stats=np.array(json.dumps(prepared.stats.to_dict())))
    atomic_write_bytes(path, buffer.getvalue())


def load_mask(path: Path) -> tuple[np.ndarray, MotionStats]:
    with np.load(path, allow_pickle=False) as data:
        return data["latent_mask"], MotionStats(**json.loads(str(data["stats"])))


def cached_preparer(featurizer: Featurizer, out: str | Path) -> Preparer:
    """Prepare a clip from its cached mask when there is one (no motion estimation), else inline.

    The pixel-grid motion field and mask are not cached (hundreds of MB per Wan clip) and a vector does not
    need them, so a clip prepared from the cache has ``motion`` and ``mask`` set to None.
    """
    g = featurizer.adapter.geometry

    def prepare(clip: Clip) -> PreparedClip:
        path = mask_path(out, clip)
        if not path.is_file():
            return featurizer.prepare_file(clip.file)
        start = time.perf_counter()
        frames = standardize(read_video(clip.file), g.num_frames, g.fps, g.height, g.width)
        decoded = time.perf_counter()
        latent_mask, stats = load_mask(path)
        return PreparedClip(frames, None, None, latent_mask, stats,
                            {"decode": decoded - start, "mask_cache": time.perf_counter() - decoded})
    return prepare


def compute_masks(out: str, clips: list[Clip], geometry: dict, settings: AttributionSettings) -> int:
    """CPU task: cache the mask of each clip that has none yet, with :func:`prepare_clip` itself (no model
    needed, only its geometry), so the cache holds what inline preparation computes. Clips that fail are left
    to the gradient stage, which records their error. Returns how many masks were written."""
    model_geometry, estimator = VideoGeometry(**geometry), get_estimator(settings.tracker)
    written = 0
    for clip in clips:
        path = mask_path(out, clip)
        if path.is_file():
            continue
        try:
            save_mask(path, prepare_clip(read_video(clip.file), model_geometry, estimator))
            written += 1
        except MotiveError:
            continue
    return written


# -------------------------------------------------------------------------------------- remote workers


def worker_config(spec: WorkerSpec) -> dict:
    """Task: the vector config as a worker sees it (its device's dtype, its weight hash)."""
    return spec.featurizer().config()


class UnitWorker:
    """Ray actor: loads the model once, joins a build, then computes whole units into its index folder.

    The plan comes through ``join`` rather than the constructor so that a restart (which reruns only the
    constructor) needs no large argument kept alive in the object store; the driver calls ``join`` again.
    """

    def __init__(self, spec: WorkerSpec):
        self.featurizer = spec.featurizer()
        self.plan: BuildPlan | None = None
        self.prepare: Preparer | None = None

    def join(self, plan: BuildPlan) -> int:
        """Take the build's plan; returns the worker's process id (an answer means the model is loaded)."""
        self.plan = plan
        self.prepare = cached_preparer(self.featurizer, plan.out)
        return os.getpid()

    def run(self, unit: int) -> dict:
        return compute_unit(self.featurizer, self.plan, unit, self.prepare)


# ------------------------------------------------------------------------------------------------ driver


def build_index_ray(data: str | Path, out: str | Path, model_spec: str, settings: AttributionSettings,
                    unit_size: int = 8, options: RayOptions = RayOptions(),
                    progress: ProgressCallback | None = None) -> dict:
    """Build (or resume) the index of ``data`` on the Ray cluster at ``options.address``.

    ``model_spec`` is a model folder every node sees at that path. Returns what ``build_index``
    returns, plus ``retries`` (units handed out again after a worker died or failed). Ray's own messages to the
    driver (a worker died, …) go to stderr, so stdout keeps only what the caller prints.
    """
    with contextlib.redirect_stdout(sys.stderr):
        ray = _connect(options.address)
        try:
            return _build(ray, data, out, model_spec, settings, unit_size, options, progress)
        finally:
            ray.shutdown()


def _build(ray, data: str | Path, out: str | Path, model_spec: str, settings: AttributionSettings, unit_size: int,
           options: RayOptions, progress: ProgressCallback | None) -> dict:
    """The stages of ``build_index_ray`` on a connected cluster; paths are made absolute for the workers."""
    data, out = Path(data).resolve(), Path(out).resolve()
    model_spec = str(Path(model_spec).resolve())
    spec = WorkerSpec(model_spec, settings, options.worker_device(), options.dtype,
                      max(1, int(options.num_cpus_per_worker)))
    capacity = options.capacity(ray.cluster_resources())
    config = _get(ray, ray.remote(**options.resources())(worker_config).remote(spec))
    plan = prepare_build(data, out, config, settings.proj_dim, unit_size, model_spec)
    if options.mask_stage:
        _mask_stage(ray, plan, plan.pending_units(), config["geometry"], settings, options, progress)
    scheduler = UnitScheduler(ray, spec, options, options.workers or capacity)
    summary = run_build(plan, scheduler.run, progress)
    _remove_temporaries(plan.out)
    return {**summary, "retries": scheduler.retries}


class UnitScheduler:
    """Hands units to live worker actors one at a time and requeues a unit whose worker died or failed.

    A worker joins (``UnitWorker.join``, the probe) when its model is loaded, so a worker that cannot start
    holds no unit; after a failure the worker is probed again: Ray restarts a dead one (``max_restarts``), and
    one out of restarts fails its probe and leaves the pool.
    """

    def __init__(self, ray, spec: WorkerSpec, options: RayOptions, workers: int):
        self.ray, self.spec, self.options, self.workers = ray, spec, options, workers
        self.retries = 0

    def run(self, plan: BuildPlan, pending: list[int]) -> Iterator[tuple[int, dict]]:
        """Yield (unit, per-stage seconds) as units finish; raise once units are left that cannot be built."""
        self._start(plan, pending)
        try:
            while self.queue or self.running:
                self._dispatch()
                if not self.running and not self.probes:
                    break
                (ref,), _ = self.ray.wait([*self.running, *self.probes], num_returns=1)
                if ref in self.probes:
                    self._joined(ref)
                else:
                    yield from self._finished(ref)
        finally:
            for actor in self.actors:
                self.ray.kill(actor)
        if self.queue or self.errors:
            raise MotiveError(_unfinished_message(len(self.queue), self.errors, plan))

    def _start(self, plan: BuildPlan, pending: list[int]) -> None:
        worker_class = self.ray.remote(**self.options.resources(), max_restarts=self.options.max_restarts)(UnitWorker)
        self.plan, self.plan_ref = plan, self.ray.put(plan)
        self.actors = [worker_class.remote(self.spec) for _ in range(min(self.workers, len(pending)))]
        self.probes = {actor.join.remote(self.plan_ref): actor for actor in self.actors}
        self.queue, self.running, self.idle = deque(pending), {}, []
        self.attempts: Counter = Counter()
        self.errors: dict[int, str] = {}

    def _dispatch(self) -> None:
        while self.idle and self.queue:
            actor, unit = self.idle.pop(), self.queue.popleft()
            self.running[actor.run.remote(unit)] = (unit, actor)

    def _joined(self, probe) -> None:
        actor = self.probes.pop(probe)
        try:
            self.ray.get(probe)
        except self.ray.exceptions.RayError as err:
            log.warning("a worker is gone for good: %s", _last_line(err))
            return
        self.idle.append(actor)

    def _finished(self, ref) -> Iterator[tuple[int, dict]]:
        unit, actor = self.running.pop(ref)
        try:
            timings = self.ray.get(ref)
        except self.ray.exceptions.RayError as err:
            self.probes[actor.join.remote(self.plan_ref)] = actor
            if self.plan.unit_done(unit):  # the worker died after committing the unit
                yield unit, {}
            else:
                self._retry(unit, err)
            return
        self.idle.append(actor)
        yield unit, timings

    def _retry(self, unit: int, err: Exception) -> None:
        self.attempts[unit] += 1
        if self.attempts[unit] >= self.options.max_attempts:
            self.errors[unit] = _last_line(err)
            return
        log.warning("unit %d failed (%s); handing it out again", unit, _last_line(err))
        self.retries += 1
        self.queue.append(unit)


def _mask_stage(ray, plan: BuildPlan, pending: list[int], geometry: dict, settings: AttributionSettings,
                options: RayOptions, progress: ProgressCallback | None) -> None:
    """Cache the masks of the pending units' clips with CPU-only tasks (one per unit, a bounded number in flight)."""
    (plan.out / MASKS).mkdir(exist_ok=True)
    todo = deque(u for u in pending if not all(mask_path(plan.out, c).is_file() for c in plan.unit_clips(u)))
    task = ray.remote(num_cpus=1, max_retries=options.max_attempts - 1)(compute_masks)
    window = max(4, 2 * int(ray.cluster_resources().get("CPU", 1)))
    meter = ProgressMeter(plan, list(todo), stage="masks")
    if progress:
        progress(meter.report())
    running: dict = {}
    while todo or running:
        while todo and len(running) < window:
            unit = todo.popleft()
            running[task.remote(str(plan.out), plan.unit_clips(unit), geometry, settings)] = unit
        (ref,), _ = ray.wait(list(running), num_returns=1)
        unit = running.pop(ref)
        try:
            ray.get(ref)
        except ray.exceptions.RayError as err:
            log.warning("masks of unit %d not cached (%s); the gradient stage computes them", unit, _last_line(err))
        report = meter.advance(unit)
        if progress:
            progress(report)


def _connect(address: str):
    """Join the cluster at ``address`` ("auto": the one this machine belongs to), with this package on the path."""
    try:
        import ray
    except ImportError:
        raise MotiveError("--ray needs the ray package: pip install 'ray[default]'") from None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        ray.init(address=address, job_config=ray.job_config.JobConfig(code_search_path=[str(PACKAGE_ROOT)]),
                 log_to_driver=False, logging_level=logging.WARNING)
    except ConnectionError as err:
        raise MotiveError(f"cannot join a Ray cluster at {address!r} ({_last_line(err)}); start one with "
                          "`ray start --head` or give its address; a cluster started with token authentication "
                          "(Ray's default once ~/.ray/auth_token exists) is joined with RAY_AUTH_MODE=token and "
                          "the same token (~/.ray/auth_token or RAY_AUTH_TOKEN)") from None
    return ray


def _get(ray, ref):
    """``ray.get`` that re-raises a task's MotiveError as itself (one clear line, not a remote traceback)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        if isinstance(err.cause, MotiveError):
            raise err.cause from None
        raise


def _last_line(err: Exception) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(err).__name__


def _unfinished_message(lost: int, errors: dict[int, str], plan: BuildPlan) -> str:
    reasons = [f"{lost} units had no live worker left"] if lost else []
    reasons += [f"unit {unit} failed on every try ({reason})" for unit, reason in sorted(errors.items())[:3]]
    done = plan.num_units - len(plan.pending_units())
    return f"{'; '.join(reasons)}; {done} of {plan.num_units} units are stored: run the same command again to finish"


def _remove_temporaries(out: Path) -> None:
    """Delete temporary files that killed workers left behind (the build is complete, so none is in use)."""
    for folder in (out / UNITS, out / MASKS):
        for path in folder.glob(".*.tmp*") if folder.is_dir() else ():
            path.unlink(missing_ok=True)
