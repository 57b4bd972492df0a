"""Folders that cannot grow without bound: age-based clean-up plus a size cap (oldest files go first).

A web app keeps uploads, rendered media and exports on disk. ``prune_folder`` deletes files older than a
maximum age, then, while the folder is still over its size cap, the oldest remaining files, but never a
file younger than ``min_age_s`` (it may still be uploading or being served). ``FolderCleaner`` runs that
for a few folders on a timer in a daemon thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("motive_studio")


@dataclass(frozen=True)
class FolderLimit:
    """How much one folder may hold: total bytes, and the age (s) after which a file is removed."""

    folder: Path
    max_bytes: int
    max_age_s: float
    min_age_s: float = 600.0
    skip: tuple[str, ...] = ()  # names of sub-folders left alone (they have their own limit)


def _files(limit: FolderLimit) -> list[tuple[float, int, Path]]:
    found = []
    for root, dirs, names in os.walk(limit.folder):
        if Path(root) == limit.folder:
            dirs[:] = [d for d in dirs if d not in limit.skip]
        for name in names:
            path = Path(root) / name
            try:
                info = path.stat()
            except OSError:  # removed meanwhile
                continue
            found.append((info.st_mtime, info.st_size, path))
    return sorted(found)


def prune_folder(limit: FolderLimit, now: float | None = None) -> dict:
    """Apply ``limit`` once; returns {"removed": files, "freed": bytes, "kept": bytes}."""
    now = time.time() if now is None else now
    if not limit.folder.is_dir():
        return {"removed": 0, "freed": 0, "kept": 0}
    files = _files(limit)
    total = sum(size for _, size, _ in files)
    removed = freed = 0
    for mtime, size, path in files:  # oldest first
        age = now - mtime
        if age < limit.min_age_s:
            break
        if age <= limit.max_age_s and total <= limit.max_bytes:
            continue
        try:
            path.unlink()
        except OSError:
            continue
        removed, freed, total = removed + 1, freed + size, total - size
    _drop_empty_dirs(limit.folder)
    return {"removed": removed, "freed": freed, "kept": total}


def _drop_empty_dirs(folder: Path) -> None:
    for root, dirs, _ in os.walk(folder, topdown=False):
        for name in dirs:
            try:
                (Path(root) / name).rmdir()
            except OSError:  # not empty
                pass


class FolderCleaner:
    """Prunes each folder every ``every_s`` seconds in a daemon thread (and once at start)."""

    def __init__(self, limits: list[FolderLimit], every_s: float = 600.0):
        self.limits, self.every_s = limits, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="folder-cleaner", daemon=True)

    def start(self) -> "FolderCleaner":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def run_once(self) -> list[dict]:
        results = []
        for limit in self.limits:
            result = prune_folder(limit)
            if result["removed"]:
                log.info("cleaned %s: %d files, %.1f MB freed, %.1f MB kept", limit.folder.name,
                         result["removed"], result["freed"] / 1e6, result["kept"] / 1e6)
            results.append(result)
        return results

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - a failed pass must not stop later ones
                log.warning("folder clean-up failed", exc_info=True)
            self._stop.wait(self.every_s)
