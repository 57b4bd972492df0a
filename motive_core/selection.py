"""A space-time selection on a query: boxes and a frame range that restrict the motion the gradient sees.

A reviewer points at the defect: one or more boxes, in pixels of the query video as it was read, and a
range of the query's frames. The selection becomes a weight S(t, h, w) in [0, 1] on the model's frame grid
(soft pixel coverage of each box, 1 inside the range, 0 outside) that multiplies the motion mask before it
is mapped to the latent grid (Eq. 14): W̃ = latent(W ⊙ S), so the loss (Eq. 16) and its gradient come
only from the selected motion. Training vectors are untouched: only the query's weight changes.

A box drawn with ``@frame`` follows the object from that frame, forward and backward, by the mean motion
inside it (the clip's own motion field); a box without a frame stays where it is drawn. Frame ranges are
half-open, ``A:B`` = frames A … B-1 of the query, and select the model frames sampled from them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import cv2
import numpy as np

from motive_core.errors import MotiveError
from motive_core.featurize import PreparedClip
from motive_core.mask import NEAR_STATIC_PX, mask_to_latent
from motive_core.models.base import VideoGeometry
from motive_core.motion import MotionField
from motive_core.video import resample_indices

__all__ = ["Box", "QuerySelection", "parse_box", "parse_frames", "parse_selection", "box_from_model",
           "frames_from_model", "select", "selection_weight", "track_box", "outline_selection"]


@dataclass(frozen=True)
class Box:
    """A rectangle [x0, x1) × [y0, y1) in pixels of the query video; ``frame``: the query frame it was drawn
    on, given when the box should follow the object through the clip (None: it stays put)."""

    x0: float
    y0: float
    x1: float
    y1: float
    frame: int | None = None

    def __post_init__(self) -> None:
        edges = (self.x0, self.y0, self.x1, self.y1)
        try:
            values = [float(v) for v in edges]
        except (TypeError, ValueError):
            values = [math.nan]
        if not all(math.isfinite(v) for v in values):
            raise MotiveError(f"box {edges} must be four finite numbers x0,y0,x1,y1 (pixels of the query)")
        for name, value in zip(("x0", "y0", "x1", "y1"), values):
            object.__setattr__(self, name, value)
        if self.frame is not None:
            if isinstance(self.frame, bool) or float(self.frame) != int(self.frame):
                raise MotiveError(f"box {edges}: the frame it is drawn on must be a whole query frame number")
            object.__setattr__(self, "frame", int(self.frame))
        if self.x1 <= self.x0 or self.y1 <= self.y0:
            raise MotiveError(f"box {self.describe()} is empty: it needs x1 > x0 and y1 > y0 "
                              "(left, top, right, bottom in pixels of the query)")
        if self.frame is not None and self.frame < 0:
            raise MotiveError(f"box {self.describe()}: the frame it is drawn on must be a query frame number ≥ 0")

    def describe(self) -> str:
        text = f"{self.x0:g},{self.y0:g},{self.x1:g},{self.y1:g}"
        return text + (f"@{self.frame}" if self.frame is not None else "")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class QuerySelection:
    """Boxes (their union is selected; none = the whole frame) and a half-open range of query frames
    (None = every frame). At least one of the two must be given.

    ``isolate`` also hides what lies outside the boxes from the model's input (it is replaced by the clip's
    still background): the mask only weights the loss, while the model's prediction at the selected pixels
    still attends to the whole frame, so another moving object keeps a share in the gradient without it.
    """

    boxes: tuple[Box, ...] = ()
    frames: tuple[int, int] | None = None
    isolate: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", tuple(self.boxes))
        if not self.boxes and self.frames is None:
            raise MotiveError("the selection is empty: give at least one box or a frame range "
                              "(or no selection at all to attribute the whole clip)")
        if self.frames is not None:
            start, stop = self.frames
            if not (isinstance(start, int) and isinstance(stop, int)) or start < 0 or stop <= start:
                raise MotiveError(f"frame range {start}:{stop} is empty or negative: it needs 0 ≤ A < B "
                                  "(frames A … B-1 of the query)")
            object.__setattr__(self, "frames", (start, stop))
        if self.isolate and not self.boxes:
            raise MotiveError("isolating needs a box: it hides what lies outside the boxes from the model")

    def describe(self) -> str:
        parts = [f"box {b.describe()}" for b in self.boxes]
        if self.frames is not None:
            parts.append(f"frames {self.frames[0]}:{self.frames[1]}")
        return ", ".join(parts) + (" (isolated)" if self.isolate else "")

    def to_dict(self) -> dict:
        return {"boxes": [b.to_dict() for b in self.boxes],
                "frames": list(self.frames) if self.frames is not None else None, "isolate": self.isolate}

    @classmethod
    def from_dict(cls, data: dict) -> "QuerySelection":
        frames = data.get("frames")
        return cls(tuple(Box(**b) for b in data.get("boxes", ())), tuple(frames) if frames is not None else None,
                   bool(data.get("isolate", False)))


# ------------------------------------------------------------------------------------------- parsing


def parse_box(text: str) -> Box:
    """'x0,y0,x1,y1' or 'x0,y0,x1,y1@frame' (pixels of the query; @frame: drawn there, tracked from there)."""
    corners, _, frame = text.strip().partition("@")
    try:
        values = [float(v) for v in corners.split(",")]
        drawn_on = int(frame) if frame else None
    except ValueError:
        values, drawn_on = [], None
    if len(values) != 4 or (frame and drawn_on is None):
        raise MotiveError(f"--region {text!r} is not x0,y0,x1,y1 or x0,y0,x1,y1@frame (numbers in pixels of "
                          "the query, frame a whole number)")
    return Box(*values, frame=drawn_on)


def parse_frames(text: str) -> tuple[int, int]:
    """'A:B' → (A, B): frames A … B-1 of the query."""
    start, colon, stop = text.strip().partition(":")
    try:
        if not colon:
            raise ValueError
        return int(start), int(stop)
    except ValueError:
        raise MotiveError(f"--frames {text!r} is not A:B (whole query frame numbers, B excluded)") from None


def parse_selection(regions: list[str] | None, frames: str | None, isolate: bool = False) -> QuerySelection | None:
    """The selection the command-line flags describe, or None when none was given."""
    if not regions and frames is None and not isolate:
        return None
    return QuerySelection(tuple(parse_box(r) for r in regions or ()), parse_frames(frames) if frames else None,
                          isolate)


# ------------------------------------------------------------------------- from the model's frames back


def box_from_model(x0: float, y0: float, x1: float, y1: float, source: dict, geometry: VideoGeometry,
                   model_frame: int | None = None) -> Box:
    """A box drawn on the standardised clip (model pixels, model frame) as the same box in query pixels and
    query frame, for a viewer that shows the clip the model sees; ``source`` is ``PreparedClip.source``."""
    sx, sy, left, top = _crop_transform(source, geometry)
    frame = None
    if model_frame is not None:
        sampled, _ = resample_indices(source["frames"], source["fps"], geometry.num_frames, geometry.fps)
        if not 0 <= model_frame < len(sampled):
            raise MotiveError(f"model frame {model_frame} is not one of the model's 0 … {len(sampled) - 1}")
        frame = int(sampled[model_frame])
    return Box((x0 + left) / sx, (y0 + top) / sy, (x1 + left) / sx, (y1 + top) / sy, frame=frame)


def frames_from_model(first: int, last: int, source: dict, geometry: VideoGeometry) -> tuple[int, int]:
    """Model frames first … last (inclusive, as a range slider gives them) as a half-open range of query frames."""
    sampled, _ = resample_indices(source["frames"], source["fps"], geometry.num_frames, geometry.fps)
    if not 0 <= first <= last < len(sampled):
        raise MotiveError(f"model frames {first} … {last} must satisfy 0 ≤ first ≤ last ≤ {len(sampled) - 1}")
    return int(sampled[first]), int(sampled[last]) + 1


# ----------------------------------------------------------------------------------------- resolving


def _crop_transform(source: dict, geometry: VideoGeometry) -> tuple[float, float, float, float]:
    """(scale x, scale y, left, top) taking query pixels to model pixels, as the cover-and-crop of
    ``video.resize_center_crop`` does (scale to cover, round the size up, crop the centre)."""
    src_h, src_w = source["height"], source["width"]
    if (src_h, src_w) == (geometry.height, geometry.width):
        return 1.0, 1.0, 0.0, 0.0
    scale = max(geometry.height / src_h, geometry.width / src_w)
    new_h = max(geometry.height, math.ceil(src_h * scale - 1e-6))
    new_w = max(geometry.width, math.ceil(src_w * scale - 1e-6))
    return new_w / src_w, new_h / src_h, float((new_w - geometry.width) // 2), float((new_h - geometry.height) // 2)


def _model_rect(box: Box, source: dict, geometry: VideoGeometry) -> np.ndarray:
    """The box clipped to the query frame, in model pixels (x0, y0, x1, y1); refused when nothing is left."""
    width, height = source["width"], source["height"]
    if box.x1 <= 0 or box.y1 <= 0 or box.x0 >= width or box.y0 >= height:
        raise MotiveError(f"box {box.describe()} lies outside the query's {width}×{height} frame "
                          "(x from 0 to the width, y from 0 to the height, in pixels)")
    sx, sy, left, top = _crop_transform(source, geometry)
    clipped = np.array([max(box.x0, 0), max(box.y0, 0), min(box.x1, width), min(box.y1, height)], np.float64)
    rect = clipped * [sx, sy, sx, sy] - [left, top, left, top]
    if rect[2] <= 0 or rect[3] <= 0 or rect[0] >= geometry.width or rect[1] >= geometry.height:
        raise MotiveError(f"box {box.describe()} lies in the part of the {width}×{height} frame that the model's "
                          f"centre crop to {geometry.width}×{geometry.height} drops; draw it nearer the centre")
    return rect


def _coverage(rect: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) share of each pixel's area inside the rectangle (soft edges, exact 1 inside)."""
    def along(low: float, high: float, size: int) -> np.ndarray:
        cells = np.arange(size, dtype=np.float64)
        return np.clip(np.minimum(cells + 1, high) - np.maximum(cells, low), 0.0, 1.0)
    return np.outer(along(rect[1], rect[3], height), along(rect[0], rect[2], width)).astype(np.float32)


def _mean_motion(displacement: np.ndarray, magnitude: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Magnitude-weighted mean (dx, dy) of one frame's (H, W, 2) displacement under ``weight``; 0 if nothing moves."""
    weighted = magnitude * weight
    total = float(weighted.sum())
    if total < 1e-6:
        return np.zeros(2)
    return (displacement * weighted[..., None]).sum(axis=(0, 1)) / total


def track_box(rect: np.ndarray, start: int, field: MotionField) -> np.ndarray:
    """(T, 4) rectangles following ``rect`` (model pixels, drawn on model frame ``start``) through the clip.

    Each step moves the box by the mean motion of what moves inside it (weighted by magnitude, so a still
    background counts little): backward with the motion that brought frame t+1's pixels from t, forward with
    frame t's pixels whose origin lies in the previous box (the convention of :class:`MotionField`).
    """
    magnitude, displacement = field.magnitude, field.displacement
    frames, height, width = magnitude.shape
    rects = np.zeros((frames, 4))
    rects[start] = rect
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    for t in range(start + 1, frames):
        x0, y0, x1, y1 = rects[t - 1]
        origin_x, origin_y = xs - displacement[t][..., 0], ys - displacement[t][..., 1]
        came_from_box = ((origin_x >= x0) & (origin_x < x1) & (origin_y >= y0) & (origin_y < y1)).astype(np.float32)
        rects[t] = rects[t - 1] + np.tile(_mean_motion(displacement[t], magnitude[t], came_from_box), 2)
    for t in range(start - 1, -1, -1):
        shift = _mean_motion(displacement[t + 1], magnitude[t + 1], _coverage(rects[t + 1], height, width))
        rects[t] = rects[t + 1] - np.tile(shift, 2)
    return rects


def _selected_frames(frames: tuple[int, int] | None, sampled: np.ndarray, count: int) -> np.ndarray:
    """(T,) bool: the model frames whose source frame lies in the range."""
    if frames is None:
        return np.ones(len(sampled), bool)
    start, stop = frames
    if start >= count:
        raise MotiveError(f"frame range {start}:{stop} starts after the query's last frame ({count - 1})")
    chosen = (sampled >= start) & (sampled < stop)
    if not chosen.any():
        raise MotiveError(f"frame range {start}:{stop} holds none of the {len(sampled)} frames the model sees "
                          f"(it samples query frames {sampled.tolist()}); widen the range")
    return chosen


def selection_weight(selection: QuerySelection, source: dict, geometry: VideoGeometry,
                     field: MotionField) -> tuple[np.ndarray, dict]:
    """S (T, H, W) float32 in [0, 1] on the model's frame grid, and a record of what it selected.

    ``source`` is the query before standardisation: {"frames", "fps", "height", "width"}. Refuses a box
    outside the frame or a range outside the clip, and a selection holding no motion (raw magnitude below
    NEAR_STATIC_PX everywhere inside it).
    """
    count = source["frames"]
    sampled, _ = resample_indices(count, source["fps"], geometry.num_frames, geometry.fps)
    in_range = _selected_frames(selection.frames, sampled, count)
    magnitude = field.magnitude
    frames, height, width = magnitude.shape
    tracks = []
    for box in selection.boxes:
        rect = _model_rect(box, source, geometry)
        if box.frame is None:
            tracks.append(np.tile(rect, (frames, 1)))
            continue
        if box.frame >= count:
            raise MotiveError(f"box {box.describe()} is drawn on frame {box.frame}, but the query has frames "
                              f"0 … {count - 1}")
        tracks.append(track_box(rect, int(np.argmin(np.abs(sampled - box.frame))), field))
    if tracks:
        space = np.stack([np.max([_coverage(track[t], height, width) for track in tracks], axis=0)
                          for t in range(frames)])
    else:
        space = np.ones((frames, height, width), np.float32)
    weight = (space * in_range[:, None, None]).astype(np.float32)
    _check_motion_inside(selection, weight, magnitude, sampled, _crop_transform(source, geometry))
    record = {**selection.to_dict(), "description": selection.describe(),
              "model_frames": np.flatnonzero(in_range).tolist(), "query_frames": sampled[in_range].tolist(),
              "boxes_on_model_frames": [np.round(track, 2).tolist() for track in tracks],
              "model_size": [width, height]}
    return weight, record


def _check_motion_inside(selection: QuerySelection, weight: np.ndarray, magnitude: np.ndarray,
                         sampled: np.ndarray, transform: tuple[float, float, float, float]) -> None:
    inside = float((magnitude * (weight > 0)).max())
    if inside >= NEAR_STATIC_PX:
        return
    t, y, x = np.unravel_index(int(np.argmax(magnitude)), magnitude.shape)
    sx, sy, left, top = transform
    raise MotiveError(f"the selection ({selection.describe()}) holds no motion: at most {inside:.2f} px/frame "
                      f"inside it (motion counts from {NEAR_STATIC_PX} px/frame); the clip moves most on query "
                      f"frame {int(sampled[t])}, near pixel ({(x + 0.5 + left) / sx:.0f}, {(y + 0.5 + top) / sy:.0f})")


def select(prepared: PreparedClip, selection: QuerySelection, geometry: VideoGeometry,
           use_mask: bool = True) -> PreparedClip:
    """The prepared query with its weight restricted to the selection: W ⊙ S, mapped to the latent grid (Eq. 14).

    With ``use_mask=False`` (a no-mask index, W ≡ 1) the weight is S itself. With ``selection.isolate`` the
    frames outside the boxes become the clip's per-pixel median over time (its still background), blended by
    box coverage. The clip given is not changed.
    """
    if prepared.selection is not None:
        raise ValueError("this prepared clip already carries a selection; select on the unselected clip")
    if not prepared.source:
        raise ValueError("the prepared clip does not record its source video's size; prepare it with Featurizer")
    weight, record = selection_weight(selection, prepared.source, geometry, prepared.motion)
    pixel = prepared.mask * weight if use_mask else weight
    latent = mask_to_latent(pixel, geometry.latent_grid(), geometry.temporal_factor, geometry.first_frame_alone)
    record["motion_kept"] = round(float((prepared.mask * weight).sum() / max(prepared.mask.sum(), 1e-12)), 4)
    frames = prepared.frames
    if selection.isolate:
        height, width = frames.shape[1:3]
        inside = np.stack([np.max([_coverage(np.array(track[t]), height, width)
                                   for track in record["boxes_on_model_frames"]], axis=0) for t in range(len(frames))])
        background = np.median(frames, axis=0)
        blended = inside[..., None] * frames + (1.0 - inside[..., None]) * background
        frames = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return replace(prepared, frames=frames, mask=pixel.astype(np.float32), latent_mask=latent, selection=record)


def outline_selection(frames: np.ndarray, record: dict, colour: tuple[int, int, int] = (0, 255, 255)) -> np.ndarray:
    """Frames (any size, model frame count) with the selection's boxes drawn on the selected frames, and a
    dimmed look on the frames outside the range: the selection as the gradient sees it."""
    out = np.array(frames, np.uint8, copy=True)
    scale_x, scale_y = out.shape[2] / record["model_size"][0], out.shape[1] / record["model_size"][1]
    chosen = set(record["model_frames"])
    for t in range(len(out)):
        if t not in chosen:
            out[t] = (out[t] * 0.35).astype(np.uint8)
            continue
        for track in record["boxes_on_model_frames"]:
            x0, y0, x1, y1 = track[t]
            cv2.rectangle(out[t], (int(round(x0 * scale_x)), int(round(y0 * scale_y))),
                          (int(round(x1 * scale_x)) - 1, int(round(y1 * scale_y)) - 1), colour, 1)
    return out
