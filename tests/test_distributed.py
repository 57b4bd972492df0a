"""Index builds on a real local Ray cluster: a worker killed mid-build, the driver killed and rerun, the mask stage.

Each Ray build must equal a single-process build exactly (vectors.npy bit for bit, same clips.jsonl); torch
runs on one thread in the workers and in the reference build so the sums are done in the same order.
The cluster belongs to this module: it runs in its own session, whose processes teardown ends by id (``ray stop``
would end every Ray instance on the machine, other people's included).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import pytest

from motive_core.config import AttributionSettings
from motive_core.data import load_clip_folder
from motive_core.distributed import RayOptions, cached_preparer, compute_masks, mask_path
from motive_core.errors import MotiveError
from motive_core.featurize import Featurizer
from motive_core.index import AttributionIndex
from motive_core.models import load_model

REPO = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")
NUM_UNITS = 8  # the 8 clips of `clip_folder`, one per unit
# Ray ≥ 2.5x turns token authentication on for a cluster whenever ~/.ray/auth_token exists (any earlier local
# ray.init() writes one) and a driver joining by address then needs RAY_AUTH_MODE=token; the cluster and every
# build here say "disabled" explicitly, so the tests do not depend on what this machine's home folder holds.
CLUSTER_ENV = {**{k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "RAY_ADDRESS")},
               "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
ENV = {**CLUSTER_ENV, "OMP_NUM_THREADS": "1"}  # the reference build: one torch thread, as the workers pin it


@dataclass
class Cluster:
    address: str
    process: subprocess.Popen

    def processes(self, title: str = "") -> list[psutil.Process]:
        """This cluster's processes (its session's) whose title (``ray::Class.method``) starts with ``title``."""
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if os.getsid(proc.pid) == self.process.pid and (proc.info["cmdline"] or [""])[0].startswith(title):
                    found.append(proc)
            except (ProcessLookupError, psutil.Error):
                continue
        return found


@pytest.fixture(scope="module")
def tiny_demo_dir(tmp_path_factory, tiny_geometry) -> Path:
    """This module's model: 2048 tokens a clip, so that a unit's gradient takes a tenth of a second or more.

    The kill tests must catch a worker inside a unit; with in-process decoding and the conftest's smaller
    model a whole build ends in well under a second, before any worker can be seen at work.
    """
    from motive_core.demo.model import DemoVideoModel
    from motive_core.demo.motionshapes import MOTIONS

    model = DemoVideoModel.create(
        vocab=list(MOTIONS) + ["a", "red", "square", "on", "background"], geometry=tiny_geometry, seed=0,
        transformer=dict(patch_size=(1, 2, 2), num_layers=3, num_attention_heads=2, attention_head_dim=16,
                         ffn_dim=64, freq_dim=32), text_dim=16)
    return model.save(tmp_path_factory.mktemp("demo_model"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def reference_build(tmp_path_factory, clip_folder, tiny_demo_dir) -> tuple[Path, subprocess.Popen]:
    """The single-process build (one torch thread) every Ray build must equal, started, not awaited, so that it
    runs while the cluster starts."""
    out = tmp_path_factory.mktemp("reference") / "idx"
    return out, _build(clip_folder, tiny_demo_dir, out)


@pytest.fixture(scope="module")
def reference(reference_build) -> Path:
    out, proc = reference_build
    assert _finish(proc)["indexed"] == NUM_UNITS
    return out


@pytest.fixture(scope="module")
def ray_cluster(reference_build):
    """A head node with 2 CPUs, started with `ray start --block` in its own session; all ports free ones."""
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    log = open(temp / "start.log", "w+")
    cmd = [str(RAY), "start", "--head", "--block", "--num-cpus", "2", "--num-gpus", "0", "--port", str(_free_port()),
           "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", str(temp),
           "--object-store-memory", str(100 * 2**20), "--ray-client-server-port", str(_free_port()),
           "--dashboard-agent-listen-port", str(_free_port())]
    process = subprocess.Popen(cmd, env=CLUSTER_ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (match := re.search(r"--address='([^']+)'", (temp / "start.log").read_text())):
            assert process.poll() is None and time.time() < deadline, (temp / "start.log").read_text()
            time.sleep(0.2)
        yield Cluster(match.group(1), process)
    finally:
        _stop(Cluster("", process))
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _stop(cluster: Cluster) -> None:
    """SIGTERM lets `ray start --block` stop its services; whatever is left of its session is then killed by id."""
    cluster.process.terminate()
    try:
        cluster.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    for proc in cluster.processes():
        proc.kill()
    cluster.process.wait(timeout=30)


def _build(data: Path, model: Path, out: Path, *extra: str, env: dict = ENV) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "motive_core", "build-index", "--data", str(data), "--model", str(model),
           "--out", str(out), "--proj-dim", "64", "--unit-size", "1", "--json", *extra]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> dict:
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    return json.loads(stdout)


def _units_done(out: Path) -> int:
    return len(list((out / "units").glob("unit-*.npy")))


def _wait_for(condition, timeout: float = 120.0, what: str = "condition") -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _assert_equals_reference(out: Path, reference: Path) -> None:
    assert np.array_equal(np.load(out / "vectors.npy"), np.load(reference / "vectors.npy"))
    assert (out / "clips.jsonl").read_text() == (reference / "clips.jsonl").read_text()
    assert not list(out.rglob(".*.tmp*"))


def _stop_a_worker_inside_a_unit(cluster: Cluster) -> psutil.Process:
    """SIGSTOP a worker actor caught while it computes a unit (its title says ``.run``), so it holds that unit."""
    deadline = time.time() + 120
    while time.time() < deadline:
        for worker in cluster.processes("ray::UnitWorker.run"):
            worker.send_signal(signal.SIGSTOP)
            if worker.cmdline()[0].startswith("ray::UnitWorker.run"):
                return worker
            worker.send_signal(signal.SIGCONT)
        time.sleep(0.005)
    raise AssertionError("no worker was seen computing a unit")


@pytest.mark.slow
def test_a_worker_killed_mid_build_loses_only_its_unit(ray_cluster, reference, tmp_path, clip_folder, tiny_demo_dir):
    out = tmp_path / "idx"
    driver = _build(clip_folder, tiny_demo_dir, out, "--ray", ray_cluster.address, "--workers", "2")
    worker = _stop_a_worker_inside_a_unit(ray_cluster)
    stopped_at = _units_done(out)
    _wait_for(lambda: _units_done(out) > stopped_at or _units_done(out) == NUM_UNITS - 1, what="the other worker")
    worker.kill()
    summary = _finish(driver)
    assert summary["retries"] >= 1 and summary["indexed"] == NUM_UNITS and summary["failed"] == []
    _assert_equals_reference(out, reference)


@pytest.mark.slow
def test_killed_driver_rerun_builds_only_the_rest_with_the_mask_stage(ray_cluster, reference, tmp_path, clip_folder,
                                                                      tiny_demo_dir):
    out = tmp_path / "idx"
    driver = _build(clip_folder, tiny_demo_dir, out, "--ray", ray_cluster.address, "--mask-stage")
    _wait_for(lambda: _units_done(out) >= 1, what="a first unit")
    driver.kill()
    driver.wait()
    _wait_for(lambda: not ray_cluster.processes("ray::UnitWorker"), what="the driver's workers to end")
    done_before = _units_done(out)
    assert 1 <= done_before < NUM_UNITS, "the driver should have been killed part-way"
    assert len(list((out / "masks").glob("*.npz"))) == NUM_UNITS  # the mask stage ran before any gradient
    with pytest.raises(MotiveError, match="incomplete"):
        AttributionIndex(out)
    rerun = _build(clip_folder, tiny_demo_dir, out, "--ray", "auto", "--mask-stage",
                   env={**ENV, "RAY_ADDRESS": ray_cluster.address})  # "auto" finds the cluster through RAY_ADDRESS
    summary = _finish(rerun)
    assert summary["units_built"] == NUM_UNITS - done_before
    assert "mask_cache" in summary["stage_seconds"] and "motion" not in summary["stage_seconds"]
    _assert_equals_reference(out, reference)


def test_a_cached_mask_prepares_a_clip_exactly_like_inline(tmp_path, clip_folder, tiny_demo_dir):
    featurizer = Featurizer(load_model(tiny_demo_dir), AttributionSettings(proj_dim=64))
    clips = load_clip_folder(clip_folder)[:2]
    (tmp_path / "masks").mkdir()
    assert compute_masks(str(tmp_path), clips, featurizer.config()["geometry"], featurizer.settings) == 2
    with np.load(mask_path(tmp_path, clips[0]), allow_pickle=False) as cached:
        assert set(cached.files) == {"latent_mask", "stats"}
    prepare = cached_preparer(featurizer, tmp_path)
    for clip in clips:
        inline, cached = featurizer.prepare_file(clip.file), prepare(clip)
        assert np.array_equal(inline.frames, cached.frames)
        assert np.array_equal(inline.latent_mask, cached.latent_mask) and inline.stats == cached.stats
        assert np.array_equal(featurizer.vector(inline, clip.caption), featurizer.vector(cached, clip.caption))


def test_worker_resources_and_devices():
    assert RayOptions().worker_device() == "cpu"
    assert RayOptions(num_gpus_per_worker=1).worker_device() is None  # load_model: cuda + bf16 + checkpointing
    with pytest.raises(MotiveError, match="num-gpus-per-worker"):
        RayOptions(device="cuda").worker_device()
    assert RayOptions(num_gpus_per_worker=0.5).capacity({"CPU": 64.0, "GPU": 8.0}) == 16
    assert RayOptions(num_cpus_per_worker=2).capacity({"CPU": 5.0}) == 2
    with pytest.raises(MotiveError, match="no worker fits"):
        RayOptions(num_gpus_per_worker=1).capacity({"CPU": 8.0})


def test_mask_stage_without_ray_is_refused(capsys, tmp_path, clip_folder, tiny_demo_dir):
    from motive_core.cli import main

    code = main(["build-index", "--data", str(clip_folder), "--model", str(tiny_demo_dir), "--out", str(tmp_path),
                 "--mask-stage"])
    assert code == 2 and "--ray" in capsys.readouterr().err
