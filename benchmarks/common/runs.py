"""Bookkeeping of the long fine-tuning studies: what every study's plan holds, finished arms in a runs file,
which arms a run may start, and how a figure over several training seeds is written."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class StudyPlan:
    """What every fine-tuning study fixes (a study's plan adds its own fields): the world's root folder, the
    majority vote's percentile, the sampler of the evaluation clips, and the training seeds, which are not part
    of an arm's identity (each seed is its own record in the runs file)."""

    root: str
    percentile: float = 90.0
    sample_steps: int = 20
    guidance: float = 3.0
    seeds: tuple[int, ...] = field(default=(0, 1), compare=False)

    def identity(self) -> dict:
        """Every field but the seeds (nested dataclasses as dicts): what names the runs file."""
        return {k: v for k, v in asdict(self).items() if k != "seeds"}


class Runs:
    """Finished arms, one JSON line each, keyed by (arm, seed); processes running other arms append to the same file."""

    def __init__(self, path: Path):
        self.path = path
        self.records: dict[tuple[str, int], dict] = {}
        self.reload()

    def reload(self) -> "Runs":
        """Re-read the file (another process may have added arms)."""
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    record = json.loads(line)
                    self.records[(record["arm"], record["seed"])] = record
        return self

    def get(self, arm: str, seed: int) -> dict | None:
        return self.records.get((arm, seed))

    def add(self, record: dict) -> None:
        self.records[(record["arm"], record["seed"])] = record
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")


def spread(values: list[float]) -> str:
    """mean [min, max] over seeds (just the value for one seed)."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def selected(arm: str, words: str | None) -> bool:
    """Whether ``--arms`` lets this arm run (no filter: every arm)."""
    return not words or any(word in arm for word in words.split(","))


def past_deadline(deadline: str | None, margin_s: float) -> bool:
    """True when the UTC clock plus ``margin_s`` is past HH:MM today."""
    if not deadline:
        return False
    hour, minute = (int(x) for x in deadline.split(":"))
    now = time.gmtime(time.time() + margin_s)
    return (now.tm_hour, now.tm_min) >= (hour, minute)
