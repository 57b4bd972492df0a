"""The on-disk attribution index: its layout, the writer a build fills, and the memory-mapped reader.

Layout (DESIGN "Contracts"):
  config.json   {"vector_config": every setting that changes a vector, "clip_list_sha", "num_clips",
                 "unit_size", "dim", "data_root" and "model_spec" (relative to this folder), "complete"}
  units/        unit-NNNNNN.jsonl + unit-NNNNNN.npy: one work unit of clips; the .npy is renamed into place
                last, so its presence marks the unit done (kill -9 at any moment loses at most the unit in
                flight and never leaves a half-written file under a final name)
  masks/        optional: each clip's latent mask + motion statistics, cached by a cluster build's mask stage
                (``distributed.py``)
  clips.jsonl   per-clip metadata (id, file, caption, labels, motion statistics, row), after the last unit
  vectors.npy   (N, D′) float32 ℓ2-normalised rows, memory-mapped on load
No pickle anywhere. What fills the units (featurizing clips, locally or on a cluster) is ``build.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from motive_core.attribution.scoring import cosine_scores, top_and_bottom
from motive_core.config import require_same_config, upgrade_vector_config
from motive_core.data import Clip, load_clip_folder
from motive_core.errors import ConfigMismatchError, MotiveError
from motive_core.files import atomic_write_json, atomic_write_npy, read_jsonl, write_jsonl

CONFIG, CLIPS, VECTORS, UNITS = "config.json", "clips.jsonl", "vectors.npy", "units"


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

    def commit_unit(self, unit: int, rows: list[dict], vectors: list[np.ndarray], dim: int) -> None:
        """Write one unit: its records first, its vectors last (their presence marks the unit done)."""
        meta_path, vector_path = self.unit_paths(unit)
        write_jsonl(meta_path, rows)
        atomic_write_npy(vector_path, np.stack(vectors) if vectors else np.zeros((0, dim), np.float32))

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


def prepare_build(data: str | Path, out: str | Path, vector_config: dict, dim: int, unit_size: int = 8,
                  model_spec: str | None = None) -> BuildPlan:
    """Create or reopen an index folder; refuse to resume one built with other settings or clips.

    ``vector_config`` is ``Featurizer.config()`` of the process(es) that compute the vectors; the clip folder
    and ``model_spec`` (the model folder) are recorded relative to the index folder, so the three move together.
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
        model_root = os.path.relpath(Path(model_spec).resolve(), out.resolve()) if model_spec else None
        atomic_write_json(config_path, {**header, "data_root": data_root, "model_spec": model_root, "complete": False})
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

    def model_folder(self) -> Path:
        """The model folder the index was built with (recorded relative to the index folder)."""
        spec = self.header.get("model_spec")
        if not spec or spec == "demo":
            raise MotiveError(f"{self.folder / CONFIG} does not record its model folder (model_spec={spec!r}); "
                              "give the model folder explicitly (--model)")
        return (self.folder / spec).resolve()

    def clip_path(self, clip: dict) -> Path:
        """A clip's video: the clip folder is recorded relative to the index folder."""
        return (self.folder / self.header.get("data_root", ".") / clip["file"]).resolve()
