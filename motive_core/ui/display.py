"""Display data for the app: rendered clips and overlays (cached on disk), figures, tables, warnings.

Everything here turns library results (prepared clips, scores, selections) into things a UI shows; the
Gradio app only wires these to components. Nothing here changes a score: the maths stays in the library.

* Media: side-by-side clips with labelled panels (query | grey-fade | heat-map; query vs candidate),
  filmstrip thumbnails of candidates, the latent-grid mask as an image; written once under a cache
  folder and reused (``MediaCache``), so nothing is rendered at start-up.
* Figures (plotly): motion magnitude per frame, score histogram with the shown clips marked, influence
  vs motion magnitude, per-query overlap heat-map.
* Tables and text: candidate captions, motion warnings, ranking overlap, selection rows.
"""

from __future__ import annotations

import hashlib
import html
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable, Sequence

import cv2
import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from motive_core.attribution.scoring import Selection
from motive_core.errors import MotiveError
from motive_core.files import atomic_path
from motive_core.mask import CAMERA_SCORE_THRESHOLD, NEAR_STATIC_PX, grey_fade, heatmap
from motive_core.video import write_mp4

PANEL_PX = 192  # target size of one panel's long side in rendered clips
HEADER_PX = 18  # height of the label bar above each panel
PICKER_PX = 320  # long side of the frame a box is clicked on (shown at its own size: a click maps to one pixel)
POSITIVE, NEGATIVE, NEUTRAL = "#1a9850", "#d73027", "#8c8c8c"
SELECTION_COLOUR = (0, 255, 255)  # RGB of a box being drawn (the players outline a selection in the same cyan)


# ------------------------------------------------------------------------------------------------ caching


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """Short content hash of a file (same bytes → same key, whatever the upload path)."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def text_digest(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


class LruCache:
    """A small thread-safe least-recently-used map (prepared queries shared by sessions): at most ``capacity``
    entries and, when ``max_bytes`` is given, at most that many bytes by ``size`` (a model at full resolution
    prepares windows of hundreds of MB; the demo's are a fraction of one)."""

    def __init__(self, capacity: int = 8, max_bytes: int | None = None, size: Callable[[object], int] | None = None):
        if max_bytes is not None and size is None:
            raise ValueError("an LruCache with max_bytes needs size(value) -> bytes")
        self.capacity, self.max_bytes, self.size = capacity, max_bytes, size
        self._items: OrderedDict = OrderedDict()
        self._bytes: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable):
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            if self.max_bytes is not None:
                self._bytes[key] = self.size(value)
            while len(self._items) > self.capacity or (len(self._items) > 1 and self.max_bytes is not None
                                                       and sum(self._bytes.values()) > self.max_bytes):
                oldest, _ = self._items.popitem(last=False)
                self._bytes.pop(oldest, None)


@dataclass
class ClipVisual:
    """What the UI needs to draw a clip: frames (T,H,W,3) uint8, its motion mask W (T,H,W) in [0,1], and a
    note when the frames are only a stand-in (e.g. the video is missing)."""

    frames: np.ndarray
    mask: np.ndarray
    note: str = ""


class MediaCache:
    """Files rendered for display, under one folder; each is written once (atomically) and then reused."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else Path(tempfile.gettempdir()) / "motive-studio"
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, group: str, name: str) -> Path:
        folder = self.root / group
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def video(self, group: str, name: str, frames: Callable[[], np.ndarray], fps: float) -> Path:
        """``group/name.mp4``, rendered from ``frames()`` only when it is not there yet."""
        path = self.path(group, f"{name}.mp4")
        if not path.is_file():
            write_mp4(frames(), path, fps)
        return path

    def image(self, group: str, name: str, image: Callable[[], np.ndarray]) -> Path:
        """``group/name.png`` (RGB), rendered only when missing; written to a temp name then renamed."""
        path = self.path(group, f"{name}.png")
        if not path.is_file():
            with atomic_path(path) as temp:
                if not cv2.imwrite(str(temp), cv2.cvtColor(image(), cv2.COLOR_RGB2BGR)):
                    raise MotiveError(f"Could not write {path}: check the cache folder {self.root} is writable.")
        return path

    def visual(self, group: str, name: str, compute: Callable[[], ClipVisual]) -> ClipVisual:
        """A clip's frames and mask, kept as ``.npz`` (no pickle) so each training clip is prepared once."""
        path = self.path(group, f"{name}.npz")
        if path.is_file():
            with np.load(path, allow_pickle=False) as data:
                return ClipVisual(data["frames"], data["mask"].astype(np.float32))
        visual = compute()
        with atomic_path(path) as temp:
            np.savez(temp, frames=visual.frames, mask=visual.mask.astype(np.float16))
        return visual

    def export_dir(self) -> Path:
        """A fresh folder for one download (so concurrent sessions never overwrite each other's files)."""
        folder = self.root / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="selection-", dir=folder))


def placeholder_visual(frames: int, height: int, width: int, note: str = "video missing") -> ClipVisual:
    """Reddish-grey frames with a zero mask and a ``note``, for a clip whose video cannot be read."""
    pixels = np.empty((frames, height, width, 3), np.uint8)
    pixels[:] = (140, 96, 96)
    return ClipVisual(pixels, np.zeros((frames, height, width), np.float32), note=note)


def visual_from(frames: np.ndarray, mask: np.ndarray, max_side: int = 256) -> ClipVisual:
    """Frames and mask, shrunk so the long side is at most ``max_side`` (kept small in memory and on disk)."""
    height, width = frames.shape[1:3]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return ClipVisual(np.ascontiguousarray(frames), mask.astype(np.float32))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    small_mask = np.stack([cv2.resize(m.astype(np.float32), size, interpolation=cv2.INTER_AREA) for m in mask])
    return ClipVisual(small, small_mask)


# -------------------------------------------------------------------------------------------- rendering


def panel_scale(height: int, width: int, target: int = PANEL_PX) -> int:
    """Whole-number enlargement that brings a panel's long side near ``target`` pixels (at least 1)."""
    return max(1, round(target / max(height, width)))


def enlarge(frames: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement (keeps the demo's 32×32 pixels crisp)."""
    return frames if scale <= 1 else frames.repeat(scale, axis=-3).repeat(scale, axis=-2)


def label_frames(frames: np.ndarray, text: str, colour: tuple[int, int, int] = (40, 40, 40)) -> np.ndarray:
    """Frames (T,H,W,3) with a coloured bar on top carrying ``text`` (clipped to the panel width)."""
    count, _, width = frames.shape[:3]
    bar = np.empty((HEADER_PX, width, 3), np.uint8)
    bar[:] = colour
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.42
    if cv2.getTextSize(text, font, scale, 1)[0][0] > width - 6:
        while text and cv2.getTextSize(text + "..", font, scale, 1)[0][0] > width - 6:
            text = text[:-1]
        text += ".."
    cv2.putText(bar, text, (3, HEADER_PX - 5), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([np.broadcast_to(bar, (count, *bar.shape)), frames], axis=1)


def side_by_side(panels: Sequence[tuple], target: int = PANEL_PX, gap: int = 4) -> np.ndarray:
    """Panels ``(frames, label[, bar colour])`` of equal frame count, left to right, each enlarged to about
    ``target`` px and labelled on a bar above."""
    count = len(panels[0][0])
    height = max(p[0].shape[1] for p in panels)
    width = max(p[0].shape[2] for p in panels)
    scale = panel_scale(height, width, target)
    columns = []
    for panel in panels:
        frames, text = panel[0], panel[1]
        colour = panel[2] if len(panel) > 2 else (40, 40, 40)
        if len(frames) != count:
            raise MotiveError(f"Panels must have the same frame count to play together ({len(frames)} vs {count}).")
        if frames.shape[1:3] != (height, width):
            frames = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])
        columns.append(label_frames(enlarge(frames, scale), text, colour))
        columns.append(np.full((count, columns[-1].shape[1], gap, 3), 255, np.uint8))
    return np.concatenate(columns[:-1], axis=2)


def picker_scale(height: int, width: int) -> int:
    """How many screen pixels one pixel of a (height, width) frame takes on the frame a box is clicked on."""
    return panel_scale(height, width, PICKER_PX)


def frame_picker(frame: np.ndarray, corner: Sequence[float] | None = None,
                 rect: Sequence[int] | None = None) -> np.ndarray:
    """One (H, W, 3) frame enlarged by :func:`picker_scale`, to click a box on: with the first corner clicked (a
    cross) and the box once both are (``corner`` and ``rect`` in the frame's own pixels)."""
    scale = picker_scale(*frame.shape[:2])
    image = np.ascontiguousarray(enlarge(frame[None], scale)[0])
    if corner is not None:
        centre = (int(corner[0] * scale), int(corner[1] * scale))
        cv2.drawMarker(image, centre, SELECTION_COLOUR, cv2.MARKER_CROSS, max(8, 2 * scale), 2)
    if rect is not None:
        x0, y0, x1, y1 = (int(v) * scale for v in rect)
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), SELECTION_COLOUR, 2)
    return image


def query_triptych(visual: ClipVisual) -> np.ndarray:
    """Query | grey-fade overlay | heat-map, played together (paper Fig. 9)."""
    return side_by_side([(visual.frames, "query"), (grey_fade(visual.frames, visual.mask), "motion mask (grey-fade)"),
                         (heatmap(visual.frames, visual.mask), "mask heat-map")])


def score_colour(score: float) -> tuple[int, int, int]:
    return (26, 120, 60) if score >= 0 else (170, 40, 35)


def comparison(query: ClipVisual, candidate: ClipVisual, title: str, score: float) -> np.ndarray:
    """Query and its mask next to a training clip and its own mask, resampled to one frame count."""
    count = min(len(query.frames), len(candidate.frames))
    q, c = _take(query, count), _take(candidate, count)
    return side_by_side([(q.frames, "query"), (grey_fade(q.frames, q.mask), "query mask"),
                         (c.frames, title, score_colour(score)),
                         (grey_fade(c.frames, c.mask), c.note or "its mask")])


def _take(visual: ClipVisual, count: int) -> ClipVisual:
    """``count`` frames spread evenly over the clip."""
    if len(visual.frames) == count:
        return visual
    index = np.linspace(0, len(visual.frames) - 1, count).round().astype(int)
    return ClipVisual(visual.frames[index], visual.mask[index], visual.note)


def filmstrip(visual: ClipVisual, points: int = 4, target: int = 64) -> np.ndarray:
    """A still summary: frames at ``points`` evenly spaced times (top) over their grey-fade overlay (bottom)."""
    index = np.linspace(0, len(visual.frames) - 1, points).round().astype(int)
    frames, masks = visual.frames[index], visual.mask[index]
    scale = panel_scale(*frames.shape[1:3], target=target)
    top = np.concatenate(list(enlarge(frames, scale)), axis=1)
    bottom = np.concatenate(list(enlarge(grey_fade(frames, masks), scale)), axis=1)
    strip = np.concatenate([top, np.full((2, top.shape[1], 3), 255, np.uint8), bottom], axis=0)
    return label_frames(strip[None], visual.note)[0] if visual.note else strip


def latent_mask_image(latent_mask: np.ndarray, columns: int = 8, cell: int = 96, max_frames: int = 24) -> np.ndarray:
    """The mask on the model's latent grid (T',h',w'), one tile per latent frame, inferno colours, labelled."""
    frames = latent_mask[:max_frames]
    count, height, width = frames.shape
    scale = max(1, round(cell / max(height, width)))
    columns = min(columns, count)
    rows = (count + columns - 1) // columns
    tile_h, tile_w = height * scale, width * scale
    pad = 3
    canvas = np.full((rows * (tile_h + pad) + pad, columns * (tile_w + pad) + pad, 3), 255, np.uint8)
    for i, frame in enumerate(frames):
        levels = np.rint(np.clip(frame, 0, 1) * 255).astype(np.uint8)
        tile = cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
        tile = enlarge(tile[None], scale)[0]
        if scale >= 4:  # grid lines between latent cells
            tile[::scale, :] = tile[::scale, :] // 2 + 60
            tile[:, ::scale] = tile[:, ::scale] // 2 + 60
        top, left = pad + (i // columns) * (tile_h + pad), pad + (i % columns) * (tile_w + pad)
        canvas[top:top + tile_h, left:left + tile_w] = tile
        cv2.putText(canvas, f"t'{i}", (left + 2, top + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return canvas


# -------------------------------------------------------------------------------------------- motion


def magnitude_series(magnitude: np.ndarray) -> dict[str, list[float]]:
    """Per-frame mean, 95th percentile and max of the raw motion magnitude (px/frame)."""
    flat = magnitude.reshape(len(magnitude), -1)
    return {"mean": flat.mean(axis=1).tolist(), "p95": np.percentile(flat, 95, axis=1).tolist(),
            "max": flat.max(axis=1).tolist()}


def motion_warnings(stats: dict) -> list[str]:
    """Plain-language flags for clips whose relative mask can mislead (paper notes §8.8-8.9)."""
    notes = []
    if stats.get("is_near_static"):
        notes.append(f"Nearly static clip: the largest motion is {stats['motion_max']:.2f} px/frame (below "
                     f"{NEAR_STATIC_PX} px). The mask is relative, so it still spans 0-1 and highlights noise; "
                     "treat this attribution as unreliable.")
    if stats.get("is_camera_motion"):
        notes.append(f"Mostly camera motion: the whole frame moves alike (camera score "
                     f"{stats['camera_motion_score']:.2f} ≥ {CAMERA_SCORE_THRESHOLD}). The mask covers the "
                     "background too, so influence reflects the camera move more than the subject's motion.")
    return notes


def motion_figure(series: dict[str, list[float]], fps: float) -> go.Figure:
    """Motion magnitude per frame (mean, 95th percentile, max) with the near-static line."""
    frames = list(range(len(series["mean"])))
    hover = [f"t = {f / fps:.2f} s" for f in frames]
    fig = go.Figure()
    for key, name, dash in (("max", "max", "dot"), ("p95", "95th percentile", "dash"), ("mean", "mean", "solid")):
        fig.add_trace(go.Scatter(x=frames, y=series[key], name=name, mode="lines+markers", text=hover,
                                 line=dict(dash=dash, width=2 if key == "mean" else 1.5)))
    fig.add_hline(y=NEAR_STATIC_PX, line=dict(color=NEUTRAL, dash="dot"),
                  annotation_text=f"near-static ({NEAR_STATIC_PX} px)", annotation_position="top left")
    return style_figure(fig, "Motion magnitude per frame", "frame", "pixels / frame")


# plotly's white look, read once from its template and set as plain layout values: a named template is
# deep-copied and validated on every figure and sent with it (about 15 ms of CPU and 6 KB per plot, three
# plots per attribution), while these few values are all the app's plots use of it.
_WHITE = pio.templates["plotly_white"].layout
WHITE_LAYOUT = dict(template="none", paper_bgcolor="white", plot_bgcolor="white", colorway=list(_WHITE.colorway),
                    hovermode=_WHITE.hovermode, font=_WHITE.font.to_plotly_json())
AXIS_STYLE = _WHITE.xaxis.to_plotly_json()


def style_figure(fig: go.Figure, title: str, x: str, y: str, height: int = 320) -> go.Figure:
    """The app's look for a plot: title, axis names, plotly's white look, legend above the plot."""
    axis = {name: {**AXIS_STYLE, "title": {**AXIS_STYLE.get("title", {}), "text": text}}
            for name, text in (("xaxis", x), ("yaxis", y))}
    fig.update_layout(title=dict(text=title, x=0.01), height=height, autosize=True,
                      margin=dict(l=50, r=20, t=45, b=45), **WHITE_LAYOUT, **axis,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0))
    return fig


# ---------------------------------------------------------------------------------------- attribution



def score_text(score: float) -> str:
    """A score as tables show it: always four decimals, signed (so columns line up and never jump)."""
    return f"{score:+.4f}"


def artifact_tag(entry: dict) -> str:
    """'planted: jitter' / 'not planted' for a clip of a world with planted artifacts, else ''."""
    artifact = (entry.get("labels") or {}).get("artifact")
    if artifact is None:
        return ""
    return "not planted" if artifact == "none" else f"planted: {artifact}"


def candidate_caption(rank: int, entry: dict, positive: bool, short: bool = False) -> str:
    """'+1 · +0.847 · 00022_swing · a red circle swinging…': signed rank, score, id, whether the clip carries a
    planted artifact (artifact world only) and (unless short) caption."""
    text = f"{'+' if positive else '−'}{rank} · {entry['score']:+.3f} · {entry['id']}"
    tag = artifact_tag(entry)
    text = f"{text} · {tag}" if tag else text
    return text if short else f"{text} · {entry['caption']}"


def segment_columns(segments: list[dict]) -> dict:
    """The "when" view as a table (``segments.Segment.to_dict()`` each): one column per stretch ('2 · frames 5–9 ·
    0.62–1.25 s'), its top clips in rank order, or why a still stretch has no ranking."""
    headers = [f"{n} · frames {s['frames'][0]}–{s['frames'][1] - 1} · {s['seconds'][0]:.2f}–{s['seconds'][1]:.2f} s"
               for n, s in enumerate(segments, start=1)]
    columns = [[candidate_caption(rank, entry, True, short=True) for rank, entry in enumerate(s["positives"], start=1)]
               or [s["note"]] for s in segments]
    depth = max((len(column) for column in columns), default=0)
    return {"headers": headers, "data": [[column[row] if row < len(column) else "" for column in columns]
                                         for row in range(depth)]}


def clip_motion_means(clips: list[dict]) -> np.ndarray:
    """Each indexed clip's mean raw motion magnitude (px/frame), NaN where unknown."""
    return np.array([float((c.get("motion") or {}).get("motion_mean", np.nan)) for c in clips], np.float64)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's ρ (Pearson of ranks; ties broken by order), over entries finite in both; NaN if too few."""
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3:
        return float("nan")
    ra = np.argsort(np.argsort(a[keep], kind="stable"), kind="stable").astype(np.float64)
    rb = np.argsort(np.argsort(b[keep], kind="stable"), kind="stable").astype(np.float64)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


def score_histogram(scores: np.ndarray, positives: list[dict], negatives: list[dict]) -> go.Figure:
    """All influence scores, with the shown positive and negative clips marked under the bars."""
    fig = go.Figure(go.Histogram(x=scores, nbinsx=int(min(60, max(10, len(scores) // 3))), name="all clips",
                                 marker_color="#9ecae1"))
    for entries, colour, name in ((positives, POSITIVE, "shown positives"), (negatives, NEGATIVE, "shown negatives")):
        if entries:
            fig.add_trace(go.Scatter(x=[e["score"] for e in entries], y=[0] * len(entries), mode="markers",
                                     marker=dict(color=colour, size=11, symbol="triangle-up"), name=name,
                                     text=[e["id"] for e in entries], hovertemplate="%{text}: %{x:.3f}<extra></extra>"))
    title = f"Influence of all {len(scores)} training clips (mean {np.mean(scores):+.3f})"
    return style_figure(fig, title, "influence score (cosine)", "clips")


def influence_scatter(scores: np.ndarray, clips: list[dict], positives: list[dict],
                      negatives: list[dict]) -> go.Figure:
    """Influence vs each clip's motion magnitude, coloured by motion label; shown clips ringed."""
    motion = clip_motion_means(clips)
    labels = [(c.get("labels") or {}).get("motion", "unlabelled") for c in clips]
    fig = go.Figure()
    for label in sorted(set(labels)):
        rows = [i for i, value in enumerate(labels) if value == label]
        fig.add_trace(go.Scatter(x=motion[rows], y=scores[rows], mode="markers", name=label, opacity=0.75,
                                 text=[clips[i]["id"] for i in rows],
                                 hovertemplate="%{text}<br>motion %{x:.2f} px/frame<br>score %{y:.3f}<extra></extra>"))
    by_id = {c["id"]: i for i, c in enumerate(clips)}
    for entries, colour, name in ((positives, POSITIVE, "shown positives"), (negatives, NEGATIVE, "shown negatives")):
        rows = [by_id[e["id"]] for e in entries if e["id"] in by_id]
        if rows:
            fig.add_trace(go.Scatter(x=motion[rows], y=scores[rows], mode="markers", name=name,
                                     marker=dict(size=14, color="rgba(0,0,0,0)", line=dict(color=colour, width=2.5)),
                                     text=[clips[i]["id"] for i in rows], hoverinfo="skip"))
    rho = rank_correlation(scores.astype(np.float64), motion)
    fig = style_figure(fig, f"Influence vs motion magnitude · Spearman ρ = {rho:+.2f}", "clip's mean motion (px/frame)",
                  "influence score", height=420)
    # legend below the axes: beside them it pushed the plot out of its box
    fig.update_layout(legend=dict(orientation="h", x=0.0, xanchor="left", y=-0.25, yanchor="top"),
                      margin=dict(l=50, r=20, t=45, b=110))
    return fig


def ranking_overlap(a_ids: Sequence[str], b_ids: Sequence[str]) -> dict:
    """Shared ids of two rankings, their count and Jaccard index."""
    a, b = set(a_ids), set(b_ids)
    union = a | b
    shared = [i for i in a_ids if i in b]
    return {"shared": shared, "count": len(shared), "jaccard": len(a & b) / len(union) if union else 1.0}


def align_by_id(clips_a: list[dict], scores_a: np.ndarray, clips_b: list[dict],
                scores_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the clips two indexes share, in ``clips_a``'s order (their rows differ when a clip failed in
    one index only, e.g. a static clip refused under the mask)."""
    row_b = {clip["id"]: row for row, clip in enumerate(clips_b)}
    rows = [(row, row_b[clip["id"]]) for row, clip in enumerate(clips_a) if clip["id"] in row_b]
    index_a = np.array([r for r, _ in rows], dtype=np.int64)
    index_b = np.array([r for _, r in rows], dtype=np.int64)
    return np.asarray(scores_a)[index_a], np.asarray(scores_b)[index_b]


def comparison_rows(mask_entries: list[dict], nomask_entries: list[dict]) -> list[list]:
    """Side-by-side rows: rank, Motive id/score/motion, no-mask id/score/motion, whether shared."""
    mask_ids, nomask_ids = {e["id"] for e in mask_entries}, {e["id"] for e in nomask_entries}
    rows = []
    for rank in range(max(len(mask_entries), len(nomask_entries))):
        m = mask_entries[rank] if rank < len(mask_entries) else None
        n = nomask_entries[rank] if rank < len(nomask_entries) else None
        rows.append([rank + 1,
                     m["id"] if m else "", score_text(m["score"]) if m else "",
                     (m.get("labels") or {}).get("motion", "") if m else "",
                     "✓" if m and m["id"] in nomask_ids else "",
                     n["id"] if n else "", score_text(n["score"]) if n else "",
                     (n.get("labels") or {}).get("motion", "") if n else "",
                     "✓" if n and n["id"] in mask_ids else ""])
    return rows


COMPARISON_HEADERS = ["rank", "Motive (mask) id", "score", "motion", "also in no-mask",
                      "no-mask id", "score ", "motion ", "also in Motive"]


# ------------------------------------------------------------------------------------------- curation


SELECTION_HEADERS = ["rank", "id", "motion", "votes", "mean score", "caption"]


def motion_label(clip: dict) -> str:
    """'bounce', or 'bounce · planted: jitter' in a world with planted artifacts."""
    return " · ".join(filter(None, ((clip.get("labels") or {}).get("motion", ""), artifact_tag(clip))))


def selection_rows(selection: Selection, clips: list[dict]) -> list[list]:
    """The selected clips in rank order with their votes and mean score (motion and, in a world with planted
    artifacts, whether the clip was planted)."""
    return [[rank, clips[n]["id"], motion_label(clips[n]), int(selection.votes[n]),
             score_text(float(selection.mean_scores[n])), clips[n]["caption"]]
            for rank, n in enumerate(selection.indices.tolist(), start=1)]


def query_overlap(per_query_selected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Q,Q) shared-clip counts and Jaccard indices between queries' above-percentile sets (paper Fig. 7)."""
    chosen = per_query_selected.astype(np.float64)
    counts = chosen @ chosen.T
    sizes = chosen.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - counts
    jaccard = np.divide(counts, union, out=np.ones_like(counts), where=union > 0)
    return counts.astype(int), jaccard


def overlap_figure(per_query_selected: np.ndarray, names: list[str]) -> go.Figure:
    """Heat-map of how many above-cut clips each pair of queries shares (Jaccard colour, count text)."""
    counts, jaccard = query_overlap(per_query_selected)
    names = [html.escape(name, quote=False) for name in names]  # plotly draws tags in text (<b>, <a>…)
    ticks = [f"q{i + 1} {name[:14]}" for i, name in enumerate(names)]
    text = [[f"{counts[i, j]}<br>J={jaccard[i, j]:.2f}" for j in range(len(names))] for i in range(len(names))]
    hover = [[f"{names[i]} ∩ {names[j]}: {counts[i, j]} shared, Jaccard {jaccard[i, j]:.2f}"
              for j in range(len(names))] for i in range(len(names))]
    fig = go.Figure(go.Heatmap(z=jaccard, x=ticks, y=ticks, zmin=0, zmax=1, colorscale="Blues", text=text,
                               texttemplate="%{text}", colorbar=dict(title="Jaccard"), customdata=hover,
                               hovertemplate="%{customdata}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return style_figure(fig, "Overlap of each query's above-percentile clips", "query", "query",
                   height=max(300, 60 * len(names) + 140))


def unique_names(names: Sequence[str]) -> list[str]:
    """Names made unique by suffixing repeats with #2, #3… (score columns in the export need distinct names)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return out


# ------------------------------------------------------------------------------------------- generation


