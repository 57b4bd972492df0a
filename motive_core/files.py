"""Atomic file writes: every file the project writes appears whole under its final name or not at all.

One helper, :func:`atomic_path`, serves every writer (JSON, JSON lines, arrays, videos, images): the writer
fills a temporary sibling, which is flushed to disk and renamed over the target only if the writer succeeds.
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary sibling of ``path`` (same suffix, so writers that go by it still work) to write to.

    On success it is fsynced and renamed over ``path``; on any error it is removed and ``path`` is untouched.
    The random part keeps two writers apart, even two hosts' processes with one pid on a shared disk.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.stem}.{uuid.uuid4().hex}.tmp{target.suffix}")
    try:
        yield temp
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as temp:
        temp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """UTF-8 text, newlines written as given (CSV rows keep their ``\\r\\n``)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True))


def atomic_write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(path) as temp:
        np.save(temp, array)


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
