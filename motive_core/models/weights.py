"""Content hashes of model folders, cached beside the weights so a start does not rehash gigabytes.

A component folder (``transformer/``, ``vae/``, ``text_encoder/``, ``tokenizer/`` …) hashes to the SHA-256 of
its files' names (relative to the component) and contents, never of the folder's own path: a renamed copy
of the same weights (a Hugging Face cache snapshot, a copy on another machine) hashes the same. JSON
files are hashed after dropping the bookkeeping keys libraries add on save (``_diffusers_version``,
``transformers_version``, ``_name_or_path`` …), so re-saving with another library release keeps the hash.

Each file's hash is cached in ``.motive_hashes.json`` in its folder, keyed by the file's size and
modification time; a read-only folder simply recomputes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

CACHE_NAME = ".motive_hashes.json"
BOOKKEEPING_KEYS = ("transformers_version", "name_or_path")


def _json_digest(path: Path) -> str:
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if not k.startswith("_") and k not in BOOKKEEPING_KEYS}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _bytes_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_cache(folder: Path) -> dict:
    try:
        return json.loads((folder / CACHE_NAME).read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(folder: Path, cache: dict) -> None:
    tmp = folder / f"{CACHE_NAME}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
        tmp.replace(folder / CACHE_NAME)
    except OSError:  # read-only model folder: hashes are recomputed next time
        tmp.unlink(missing_ok=True)


def file_hash(path: str | Path) -> str:
    """SHA-256 of one file (JSON canonicalised), from the folder's cache when size and mtime still match."""
    path = Path(path)
    stat = path.stat()
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    cache = _read_cache(path.parent)
    entry = cache.get(path.name)
    if isinstance(entry, dict) and {k: entry.get(k) for k in key} == key and "sha256" in entry:
        return entry["sha256"]
    digest = _json_digest(path) if path.suffix == ".json" else _bytes_digest(path)
    cache[path.name] = {**key, "sha256": digest}
    _write_cache(path.parent, cache)
    return digest


def folder_hash(folder: str | Path) -> str:
    """Hash of every file under ``folder`` (names relative to it, contents), caches and hidden files excluded."""
    folder = Path(folder)
    digest = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(folder).parts))
    for path in files:
        digest.update(f"{path.relative_to(folder).as_posix()}:{file_hash(path)}\n".encode())
    return digest.hexdigest()[:16]
