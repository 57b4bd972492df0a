"""Where results go and how they are saved: a benchmark's tables as JSON (with the machine and command) and as
markdown, printed too; the cache folder the long studies share; a timestamped progress line."""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
CACHE = RESULTS / "cache"
DEMO_MODEL = REPO / "precomputed" / "model"
DEMO_CLIPS = REPO / "precomputed" / "clips"


def repo_relative(path: str | Path) -> str:
    """``path`` as saved results show it: relative to the repository when inside it (never a machine's path)."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def command_line() -> str:
    """How this benchmark was started, with repository-relative paths (``python -m benchmarks.x`` when run so),
    quoted so that it can be pasted into a shell."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    script = Path(sys.argv[0]).resolve()
    if spec is not None:
        head = f"python -m {spec.name}"
    else:
        head = "python " + (repo_relative(script) if script.is_relative_to(REPO) else script.name)
    return " ".join([head, *map(shlex.quote, sys.argv[1:])])


def cache_root() -> Path:
    """benchmarks/results/cache (never committed: it holds its own .gitignore), created on first use."""
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")
    return CACHE


def log(message: str) -> None:
    """A progress line stamped with the UTC time (long studies run for hours)."""
    print(f"[{time.strftime('%H:%M:%S', time.gmtime())}] {message}", flush=True)


def demo_model_hash(folder: Path = DEMO_MODEL) -> str | None:
    """Weight hash of a demo model (default: the committed one), as index configs record it; None if absent."""
    from motive_core.demo.model import DemoVideoModel
    from motive_core.errors import ModelNotFoundError

    try:
        return DemoVideoModel.load(folder).identity()["weight_hash"]
    except ModelNotFoundError:
        return None


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
    columns = columns or list(rows[0])
    def cell(value) -> str:
        if isinstance(value, float):
            return "–" if math.isnan(value) else f"{value:.3f}"
        return str(value).replace("|", "\\|")  # a '|' inside a cell would split it
    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def save(name: str, tables: dict[str, list[dict]], notes: list[str] | None = None, extra: dict | None = None,
         model: Path = DEMO_MODEL) -> Path:
    """Write results/<name>.json and results/<name>.md; returns the markdown path.

    ``model`` is the demo model the figures were measured on: its weight hash is recorded, so that
    update_docs.py can flag tables measured on other weights than the committed model's.
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"command": command_line(), "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores", "python": sys.version.split()[0],
            "demo_model": demo_model_hash(Path(model))}
    (RESULTS / f"{name}.json").write_text(json.dumps({"meta": meta, "tables": tables, **(extra or {})}, indent=2))
    parts = [f"<!-- {meta['command']} · {meta['date']} · {meta['machine']} -->"]
    for title, rows in tables.items():
        parts += [f"**{title}**", "", markdown_table(rows), ""]
    parts += notes or []
    text = "\n".join(parts) + "\n"
    (RESULTS / f"{name}.md").write_text(text)
    print(text)
    return RESULTS / f"{name}.md"


def model_folders(specs: list[str]) -> dict[str, Path]:
    """``--model NAME=FOLDER`` arguments as {name: saved demo model folder}, the committed demo model first; each
    folder's index is its sibling ``index-motion`` (as in precomputed/ and bench_retrain's cache)."""
    models = {"committed demo model": DEMO_MODEL}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not name.strip() or not folder.strip():
            raise SystemExit(f"--model takes NAME=FOLDER (got {spec!r})")
        if not Path(folder).is_dir() or not (Path(folder).parent / "index-motion").is_dir():
            raise SystemExit(f"--model {spec!r}: {folder} must be a saved model folder with a sibling index-motion "
                             "folder (its index)")
        models[name.strip()] = Path(folder)
    return models
