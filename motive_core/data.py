"""Clip folders: videos with a ``metadata.jsonl`` beside them, one JSON object per line.

Each line names a video (``file_name``, relative to the folder) and its caption (``text``); every other
key is a label (motion, shape, colour, ...) that the app shows and the retrieval metrics score against.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable

from motive_core.errors import MotiveError
from motive_core.files import atomic_write_text

METADATA_NAME = "metadata.jsonl"
_EXPECTED = "one JSON object per line: file_name, text, and optional label fields"


@dataclass(frozen=True)
class Clip:
    """One training or query clip: a stable id, the video's absolute path, its caption and its labels."""

    id: str
    file: Path
    caption: str
    labels: dict[str, str]
    file_name: str

    def to_dict(self) -> dict:
        """JSON-safe record; ``file`` is the name relative to the clip folder, as metadata.jsonl gives it."""
        return {"id": self.id, "file": self.file_name, "caption": self.caption, "labels": dict(self.labels)}


def load_clip_folder(folder: str | Path) -> list[Clip]:
    """Read and validate a clip folder; clips come back in metadata order."""
    folder = Path(folder)
    meta = _metadata_path(folder)
    rows = _read_rows(meta)
    if not rows:
        raise MotiveError(f"{meta} lists no clips; expected {_EXPECTED}")
    names = [_file_name(meta, line, row) for line, row in rows]
    _check_unique(meta, names, [line for line, _ in rows])
    ids = _clip_ids(meta, names)
    return [_clip(folder, meta, line, row, name, clip_id)
            for (line, row), name, clip_id in zip(rows, names, ids)]


def write_metadata(folder: str | Path, rows: Iterable[dict]) -> Path:
    """Write ``folder/metadata.jsonl`` atomically (temp file + rename), so a reader never sees half a file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / METADATA_NAME, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return folder / METADATA_NAME


def _metadata_path(folder: Path) -> Path:
    if not folder.exists():
        raise MotiveError(f"clip folder {folder} does not exist")
    if not folder.is_dir():
        raise MotiveError(f"{folder} is not a folder; a clip folder holds videos and {METADATA_NAME}")
    meta = folder / METADATA_NAME
    if not any(folder.iterdir()):
        raise MotiveError(f"clip folder {folder} is empty; expected videos and {meta} with {_EXPECTED}")
    if not meta.is_file():
        raise MotiveError(f"no metadata in {folder}: expected {meta} with {_EXPECTED}")
    return meta


def _read_rows(meta: Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line."""
    rows = []
    for number, text in enumerate(meta.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as err:
            raise MotiveError(f"{meta}, line {number}: not valid JSON ({err.msg}); expected {_EXPECTED}") from None
        if not isinstance(row, dict):
            raise MotiveError(f"{meta}, line {number}: expected a JSON object, got {type(row).__name__}")
        rows.append((number, row))
    return rows


def _file_name(meta: Path, line: int, row: dict) -> str:
    name = row.get("file_name")
    if not isinstance(name, str) or not name.strip():
        raise MotiveError(f"{meta}, line {line}: missing 'file_name' (the video's path relative to the folder)")
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        raise MotiveError(f"{meta}, line {line}: file_name {name!r} must be a relative path inside the folder")
    return str(path)


def _check_unique(meta: Path, names: list[str], lines: list[int]) -> None:
    first_line: dict[str, int] = {}
    for name, line in zip(names, lines):
        if name in first_line:
            raise MotiveError(f"{meta}, line {line}: duplicate file_name {name!r} (first on line {first_line[name]})")
        first_line[name] = line


def _clip_ids(meta: Path, names: list[str]) -> list[str]:
    """The file's stem, or its relative path with '/' → '__' where two stems collide."""
    stems = [PurePosixPath(name).stem for name in names]
    counts = Counter(stems)
    ids = [stem if counts[stem] == 1 else name.replace("/", "__") for stem, name in zip(stems, names)]
    clash = [clip_id for clip_id, n in Counter(ids).items() if n > 1]
    if clash:
        raise MotiveError(f"{meta}: clip id {clash[0]!r} is not unique; rename one of its files")
    return ids


def _clip(folder: Path, meta: Path, line: int, row: dict, name: str, clip_id: str) -> Clip:
    file = (folder / name).resolve()
    if not file.is_file():
        raise MotiveError(f"{meta}, line {line}: {name!r} is listed but {file} does not exist")
    caption = row.get("text", "")
    if not isinstance(caption, str):
        raise MotiveError(f"{meta}, line {line}: 'text' must be a string caption")
    labels = {key: value if isinstance(value, str) else json.dumps(value)
              for key, value in row.items() if key not in ("file_name", "text")}
    return Clip(id=clip_id, file=file, caption=caption, labels=labels, file_name=name)
