"""What the app adds for a world with planted motion artifacts (a demo whose ground truth is known).

Such a world's clips carry an ``artifact`` label (none / jitter / stutter). For it the Motion tab shows the
model-free detector's reading of the query with the per-frame evidence behind it (the shake is hard to see
in a magnitude plot: a bounce moves fast anyway), and the Attribution tab counts the planted clips among
the shown ones. Worlds without the label show neither.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import plotly.graph_objects as go

from motive_core.demo.artifacts import (JITTER_RESIDUAL, STUTTER_JUMP, TRACK_SIZE, ArtifactReading, jitter_flips,
                                        jitter_score, object_track, stutter_score)
from motive_core.ui.display import NEUTRAL, style_figure


def has_planted(clips: list[dict]) -> bool:
    """Whether the index's clips say which of them carry a planted artifact."""
    return any("artifact" in (clip.get("labels") or {}) for clip in clips)


def detector_readout(frames: np.ndarray) -> tuple[str, go.Figure]:
    """The detector's verdict on a clip at the model's geometry (one step = one frame) as Markdown, and a
    plot of its two per-frame signals: the shake (zig-zag of the object's path; its median is the jitter
    score) and the step (how far the object moved; a big step after two still ones is a stutter)."""
    track = object_track(frames)
    reading = ArtifactReading(jitter=jitter_score(track), stutter=stutter_score(track))
    verdict = {"jitter": "reads as **jitter** (the object shakes along its path)",
               "stutter": "reads as **stutter** (the object freezes, then jumps)",
               "none": "reads as **clean** (no planted artifact found)"}[reading.kind]
    text = (f"**Planted-artifact detector** (this demo world knows which training clips carry a planted defect; "
            f"the detector reads the object's track, no model involved): the query {verdict}. Shake "
            f"{reading.jitter:.2f} px (median per-frame zig-zag; jitter from {JITTER_RESIDUAL:g} px) · stutter "
            f"{reading.stutter:.2f} px (largest jump after two still steps; stutter from {STUTTER_JUMP:g} px). "
            f"Pixels of a {TRACK_SIZE}-px frame.")
    steps = np.linalg.norm(np.diff(track, axis=0), axis=1)
    frames_axis = np.arange(len(track))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=frames_axis[2:-1], y=jitter_flips(track), name="shake (zig-zag of the path)",
                             mode="lines+markers"))
    fig.add_trace(go.Scatter(x=frames_axis[1:], y=steps, name="step (distance moved)", mode="lines+markers",
                             line=dict(dash="dot")))
    fig.add_hline(y=JITTER_RESIDUAL, line=dict(color=NEUTRAL, dash="dash"),
                  annotation_text=f"jitter ({JITTER_RESIDUAL:g} px median)", annotation_position="top left")
    fig.add_hline(y=STUTTER_JUMP, line=dict(color=NEUTRAL, dash="dot"),
                  annotation_text=f"stutter jump ({STUTTER_JUMP:g} px)", annotation_position="top right")
    return text, style_figure(fig, "Artifact detector: the object's path, frame by frame", "frame",
                         f"pixels (of a {TRACK_SIZE}-px frame)")


def planted_count(entries: list[dict]) -> str:
    """'3 of the top 10 are planted (jitter 3)': the shown positives scored against the ground truth."""
    kinds = Counter((e.get("labels") or {}).get("artifact", "none") for e in entries)
    planted = {kind: n for kind, n in kinds.items() if kind != "none"}
    detail = f" ({', '.join(f'{kind} {n}' for kind, n in sorted(planted.items()))})" if planted else ""
    return f"{sum(planted.values())} of the top {len(entries)} are planted{detail}"


def planted_share(clips: list[dict]) -> str:
    """'29 of 300 training clips (10 %) carry a planted artifact'."""
    count = sum((c.get("labels") or {}).get("artifact", "none") != "none" for c in clips)
    return f"{count} of {len(clips)} training clips ({count / max(1, len(clips)):.0%}) carry a planted artifact"
