"""A review as a thing that can be kept, shared and read without the app.

A review holds what a reviewer built: the curation list (each query's name, prompt, attributed window
and its scores over the index), the current query's inputs, the vote settings, the last selection and
free-text notes, plus the model and index that produced the scores. It is saved as one JSON file
(``REVIEW_FORMAT``) and reopened from that file, refused with a reason when it does not fit the loaded
index. ``html_report`` renders a review as one self-contained HTML page (clips and images embedded as
data URIs, no scripts, every text escaped) that opens in any browser. ``selection_settings`` and the
two ``stamp_*`` helpers make a selection export say which model, index, prompts and cut produced it.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import secrets
import time
from pathlib import Path

import numpy as np

from motive_core.errors import MotiveError
from motive_core.files import atomic_write_text
from motive_core.selection import QuerySelection

REVIEW_FORMAT = "motive-review/1"
MAX_REVIEW_BYTES = 8 * 1024 * 1024
REVIEW_ID = re.compile(r"^[A-Za-z0-9_-]{8,40}$")
QUERY_KEY = re.compile(r"^[A-Za-z0-9_]{0,64}$")  # a query's cache key names a media folder: no path tricks
SETTINGS_KEY = "motive_selection_settings"
# the current query's selection inputs as a review stores them: box edges and frame numbers (or null), isolate
REGION_FIELDS = ("x0", "y0", "x1", "y1", "box_frame", "frames_from", "frames_to", "isolate")


class ReviewError(MotiveError):
    """A review file or link that cannot be opened here (damaged, another index, unknown id)."""


# ------------------------------------------------------------------------------------------ identity


def index_identity(clips: list[dict], config: dict, folder_name: str) -> dict:
    """What a review's scores depend on: the model, the index's settings and its clip list."""
    return {"folder": folder_name, "clips": len(clips), "model": config.get("model"),
            "settings": config.get("settings"), "clip_ids_head": [c["id"] for c in clips[:3]]}


def selection_settings(identity: dict, queries: list[dict], fraction: float, percentile: float) -> dict:
    """The settings that produced a selection, as written into its CSV and JSONL."""
    return {"model": (identity.get("model") or {}).get("name"),
            "model_weights": (identity.get("model") or {}).get("weight_hash"),
            "index": identity["folder"], "index_clips": identity["clips"], "index_settings": identity["settings"],
            "queries": [{"name": q["name"], "prompt": q["prompt"], "window": q.get("window"),
                         "selection": q.get("region")} for q in queries],
            "fraction": fraction, "percentile": percentile, "created": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def stamp_csv(path: str | os.PathLike, settings: dict) -> None:
    """Put the settings on ``#`` comment lines above a CSV's header (``pandas.read_csv(comment="#")``)."""
    path = Path(path)
    lines = [f"# {key}: {json.dumps(value, ensure_ascii=False)}" for key, value in settings.items()]
    atomic_write_text(path, "\n".join(lines) + "\n" + path.read_text())


def stamp_jsonl(path: str | os.PathLike, settings: dict) -> None:
    """Put the settings on a first JSONL line ``{"motive_selection_settings": {...}}`` (clip lines follow)."""
    path = Path(path)
    atomic_write_text(path, json.dumps({SETTINGS_KEY: settings}, ensure_ascii=False) + "\n" + path.read_text())


def write_clip_list(path: str | os.PathLike, clips: list[dict], rows: list[int], settings: dict, role: str) -> Path:
    """A plain list of clips (id, file, caption, labels as JSON) under ``# `` settings lines, e.g. every clip a
    selection left out: the keep list when the selection is a removal list, and the other way round."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "file", "caption", "labels"])
    for row in rows:
        clip = clips[row]
        writer.writerow([clip["id"], clip.get("file", ""), clip.get("caption", ""),
                         json.dumps(clip.get("labels") or {}, ensure_ascii=False)])
    path = Path(path)
    head = "".join(f"# {key}: {json.dumps(value, ensure_ascii=False)}\n"
                   for key, value in {"list": role, **settings}.items())
    atomic_write_text(path, head + buffer.getvalue())
    return path


# ---------------------------------------------------------------------------------------------- files


def new_review_id() -> str:
    """An unguessable id: knowing a review's link is what it takes to open it."""
    return secrets.token_urlsafe(12)


def review_path(folder: Path, review_id: str) -> Path:
    """Where a saved review lives; refuses ids that are not ours (no path tricks)."""
    if not REVIEW_ID.match(review_id or ""):
        raise ReviewError(f"{review_id!r} is not a review id: a review link ends in ?review= followed by 8-40 "
                          "letters, digits, '-' or '_'.")
    return folder / f"{review_id}.json"


def save_review(folder: Path, review: dict, review_id: str | None = None) -> tuple[str, Path]:
    """Write ``review`` as ``folder/<id>.json`` (atomically); returns (id, path)."""
    review_id = review_id or new_review_id()
    path = review_path(folder, review_id)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"format": REVIEW_FORMAT, "id": review_id, **review}, ensure_ascii=False))
    return review_id, path


def load_review(path: str | os.PathLike, identity: dict) -> dict:
    """Read and check a review file against the loaded index; every problem gets a readable refusal."""
    path = Path(path)
    if not path.is_file():
        raise ReviewError("No saved review under that link: it was never saved on this server, or it was "
                          "cleaned up; open the review's JSON file instead.")
    if path.stat().st_size > MAX_REVIEW_BYTES:
        raise ReviewError(f"{path.name} is {path.stat().st_size / 1e6:.1f} MB, over the "
                          f"{MAX_REVIEW_BYTES / 1e6:.0f} MB a review can be: it is not a Motive review.")
    try:
        review = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ReviewError(f"{path.name} is not a Motive review (not JSON: {err}).") from None
    if not isinstance(review, dict) or review.get("format") != REVIEW_FORMAT:
        raise ReviewError(f"{path.name} is not a Motive review (format {REVIEW_FORMAT!r} expected).")
    saved = review.get("index") or {}
    if saved.get("clips") != identity["clips"] or saved.get("clip_ids_head") != identity["clip_ids_head"] \
            or saved.get("settings") != identity["settings"]:
        raise ReviewError(f"This review was made on index {saved.get('folder')!r} ({saved.get('clips')} clips) "
                          f"with other settings or clips than the loaded index {identity['folder']!r} "
                          f"({identity['clips']} clips): open it in an app started on that index.")
    queries = review.get("queries")
    if not isinstance(queries, list):
        raise ReviewError(f"{path.name} has no list of queries: the file is damaged.")
    for i, query in enumerate(queries, start=1):
        scores = query.get("scores") if isinstance(query, dict) else None
        if not isinstance(scores, list) or len(scores) != identity["clips"] \
                or not all(isinstance(s, (int, float)) and math.isfinite(s) for s in scores):
            raise ReviewError(f"Query {i} of {path.name} does not carry {identity['clips']} finite scores: "
                              "the file is damaged.")
        if not isinstance(query.get("name"), str) or not isinstance(query.get("prompt", ""), str):
            raise ReviewError(f"Query {i} of {path.name} has no name or prompt text: the file is damaged.")
        if not QUERY_KEY.match(str(query.get("key", ""))) or not _is_window(query.get("window")):
            raise ReviewError(f"Query {i} of {path.name} has a malformed key or window: the file is damaged.")
        if not _is_selection(query.get("region")):
            raise ReviewError(f"Query {i} of {path.name} has a malformed selection (box or frame range): the file "
                              "is damaged.")
    region = (review.get("current") or {}).get("region")
    if region is not None and not (isinstance(region, dict) and set(region) <= set(REGION_FIELDS) and all(
            region.get(k) is None or (isinstance(region[k], (int, float)) and math.isfinite(region[k]))
            for k in REGION_FIELDS[:-1]) and isinstance(region.get("isolate", False), bool)):
        raise ReviewError(f"The current query's selection fields in {path.name} are not numbers: the file is "
                          "damaged.")
    return review


def _is_selection(region) -> bool:
    """None, or a selection as ``QuerySelection.to_dict`` writes it (one the selection itself accepts)."""
    if region is None:
        return True
    try:
        QuerySelection.from_dict(region)
    except (MotiveError, TypeError, ValueError, AttributeError):
        return False
    return True


def _is_window(window) -> bool:
    """None, or {start, duration, clip_duration: numbers, chosen: text} as the app records a window."""
    if window is None:
        return True
    return isinstance(window, dict) and isinstance(window.get("chosen"), str) and all(
        isinstance(window.get(k), (int, float)) and math.isfinite(window[k]) for k in ("start", "duration",
                                                                                        "clip_duration"))


def query_record(name: str, prompt: str, window: dict | None, key: str, scores: np.ndarray, extra: dict) -> dict:
    """One curation-list entry as a review stores it (scores rounded to 6 decimals)."""
    return {"name": name, "prompt": prompt, "window": window, "key": key,
            "scores": [round(float(s), 6) for s in scores], **extra}


# --------------------------------------------------------------------------------------------- report


def data_uri(path: str | os.PathLike | None) -> str | None:
    """A file as a ``data:`` URI (mp4 / png), or None when it is missing."""
    if not path or not Path(path).is_file():
        return None
    kind = {".mp4": "video/mp4", ".png": "image/png"}.get(Path(path).suffix.lower(), "application/octet-stream")
    return f"data:{kind};base64,{base64.b64encode(Path(path).read_bytes()).decode()}"


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _ranking_table(entries: list[dict], sign: str, thumbs: dict[str, str | None]) -> str:
    rows = []
    for rank, entry in enumerate(entries, start=1):
        thumb = thumbs.get(entry["id"])
        image = f'<img alt="{_e(entry["id"])}" src="{thumb}">' if thumb else "(no image)"
        rows.append(f"<tr><td>{sign}{rank}</td><td>{image}</td><td><code>{_e(entry['id'])}</code></td>"
                    f"<td>{entry['score']:+.4f}</td><td>{_e(entry.get('caption', ''))}</td></tr>")
    return ("<table><tr><th>rank</th><th>clip and its motion mask</th><th>id</th><th>influence</th>"
            "<th>caption</th></tr>" + "".join(rows) + "</table>")


def html_report(title: str, settings: dict, queries: list[dict], selection: dict | None, notes: str) -> str:
    """One self-contained HTML page for a review.

    ``queries``: dicts with name, prompt, conditioning_note, window (text), triptych (mp4 path or None),
    positives / negatives (ranked entries), thumbs ({clip id: png path}). ``selection``: {"rows",
    "headers", "fraction", "percentile"} or None. Media are embedded, so the page needs no server.
    """
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;"
             "vertical-align:middle;text-align:left}img{max-height:96px}video{max-width:100%}"
             "pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em}</style></head><body>",
             f"<h1>{_e(title)}</h1>", "<h2>Settings</h2>",
             f"<pre>{_e(json.dumps(settings, indent=2, ensure_ascii=False))}</pre>"]
    if notes:
        parts += ["<h2>Notes</h2>", f"<pre>{_e(notes)}</pre>"]
    for number, query in enumerate(queries, start=1):
        parts += [f"<h2>Query {number}: {_e(query['name'])}</h2>",
                  f"<p><b>Prompt used:</b> {_e(query['prompt']) if query['prompt'] else 'no prompt'}. "
                  f"{_e(query.get('conditioning_note', ''))}</p>",
                  f"<p><b>Attributed:</b> {_e(query.get('window', ''))}</p>"]
        clip = data_uri(query.get("triptych"))
        parts.append(f'<video controls loop muted autoplay src="{clip}"></video>' if clip else
                     "<p>(the query clip was not available when this report was made)</p>")
        thumbs = {k: data_uri(v) for k, v in (query.get("thumbs") or {}).items()}
        parts += ["<h3>Most positive training clips</h3>", _ranking_table(query["positives"], "+", thumbs),
                  "<h3>Most negative training clips</h3>", _ranking_table(query["negatives"], "−", thumbs)]
    if selection:
        header = "".join(f"<th>{_e(h)}</th>" for h in selection["headers"])
        rows = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in selection["rows"])
        parts += [f"<h2>Selection: fraction {selection['fraction']:g}, percentile {selection['percentile']:g}</h2>",
                  f"<table><tr>{header}</tr>{rows}</table>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: str | os.PathLike, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path
