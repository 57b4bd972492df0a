"""The "when" view: attribute consecutive time windows of one query, to see which clips shaped which part.

The query's model frames are split into a few consecutive windows (on whole latent frames, so that no VAE
frame group is shared by two windows), and each window is attributed on its own through a frame-range
selection (``selection.QuerySelection``): the gradient then comes only from that window's motion. A window
where nothing moves gets a note instead of a ranking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from motive_core.errors import MotiveError
from motive_core.featurize import PreparedClip
from motive_core.mask import latent_frame_groups
from motive_core.models.base import VideoGeometry
from motive_core.query import Attributor, QueryResult
from motive_core.selection import Box, QuerySelection
from motive_core.video import resample_indices


@dataclass
class Segment:
    """One window: query frames [start, stop), its seconds, and its ranking (None, with a note, if it is still)."""

    start: int
    stop: int
    seconds: tuple[float, float]
    result: QueryResult | None
    note: str = ""

    def to_dict(self) -> dict:
        ranking = self.result.to_dict() if self.result is not None else {}
        return {"frames": [self.start, self.stop], "seconds": list(self.seconds), "note": self.note,
                "positives": ranking.get("positives", []), "negatives": ranking.get("negatives", []),
                "selection": ranking.get("selection")}


def time_windows(source: dict, geometry: VideoGeometry, count: int) -> list[tuple[int, int]]:
    """``count`` consecutive half-open ranges of query frames covering the frames the model sees.

    Latent frame groups are dealt out as evenly as possible; each range runs from its first model frame's
    query frame to the next range's (the last one to the clip's end).
    """
    groups = latent_frame_groups(geometry.num_frames, geometry.temporal_factor, geometry.first_frame_alone)
    if not 1 <= count <= len(groups):
        raise MotiveError(f"cannot split the query into {count} windows: the model sees {len(groups)} latent "
                          f"frames, so 1 to {len(groups)} windows")
    sampled, _ = resample_indices(source["frames"], source["fps"], geometry.num_frames, geometry.fps)
    firsts = [groups[part[0]].start for part in np.array_split(np.arange(len(groups)), count)]
    starts = [0] + [int(sampled[f]) for f in firsts[1:]]  # frames before the model's first sample count for none
    stops = starts[1:] + [source["frames"]]
    if any(stop <= start for start, stop in zip(starts, stops)):
        raise MotiveError(f"the query is too short for {count} windows: the model samples query frames "
                          f"{sampled.tolist()}; use fewer windows")
    return list(zip(starts, stops))


def attribute_segments(attributor: Attributor, prepared: PreparedClip, count: int = 3, prompt: str = "",
                       top: int = 5, boxes: tuple[Box, ...] = (), isolate: bool = False) -> list[Segment]:
    """Rank the index for each of ``count`` consecutive windows of the query (with ``boxes``, if given, as well;
    ``isolate`` hides what lies outside them from the model, as in a whole-window query)."""
    segments = []
    fps = prepared.source["fps"]
    for start, stop in time_windows(prepared.source, attributor.featurizer.adapter.geometry, count):
        seconds = (round(start / fps, 3), round(stop / fps, 3))
        try:
            result = attributor.attribute(prepared, prompt, top, QuerySelection(tuple(boxes), (start, stop),
                                                                                  isolate))
        except MotiveError as err:
            segments.append(Segment(start, stop, seconds, None, str(err)))
            continue
        segments.append(Segment(start, stop, seconds, result))
    return segments
