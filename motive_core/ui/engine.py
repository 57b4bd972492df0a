"""What every session of the app shares, loaded once per world: model, indexes, examples, caches, locks.

``Engine`` prepares a query window (decode, motion, the window with the most motion), computes and caches
its vectors, generates clips and renders training clips for display; ``Worlds`` serves several engines,
each session in the one it picked. The GPU-bound calls are ``gpu_task``s, so a ZeroGPU Space attaches a GPU
for them only. Gradio wiring stays in ``app.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np
from gradio.context import LocalContext

from motive_core.errors import MotiveError
from motive_core.featurize import PreparedClip
from motive_core.gpu import gpu_task
from motive_core.models import load_model
from motive_core.models.flow import sample
from motive_core.query import Attributor
from motive_core.segments import attribute_segments
from motive_core.selection import Box, QuerySelection, select
from motive_core.ui import display as ud
from motive_core.ui import planted as pl
from motive_core.video import probe_video, read_video, write_mp4
from motive_core.window import (check_start, most_moving_start, motion_elsewhere, motion_profile,
                                outside_window_message)

log = logging.getLogger("motive_studio")

# Queries are decoded like the index's clips (full quality, then the library's area resize to the model's
# size), only capped at this long side; decoding straight at the model's size through the decoder's scaler
# shifted scores by up to 0.04. Memory per request is bounded by reading only the attributed window.
DECODE_SIDE = 1024
MAX_UPLOAD_MB = 200
JOBS_PER_SESSION = 1  # model jobs one session may have running at a time
# Prepared windows shared by sessions: a reviewer who runs an example again, or turns the no-mask comparison
# on, finds it here instead of decoding and estimating motion again; bounded by bytes too, since a window at a
# real model's resolution with its dense motion field is hundreds of MB.
PREPARED_ENTRIES, PREPARED_BYTES = 64, 512 * 1024**2


@dataclass
class Example:
    file: Path
    prompt: str
    name: str


@dataclass
class Prepared:
    """A decoded query window with its motion (the dense field dropped), per-frame magnitude series and
    the window it covers ({start, duration, clip_duration, chosen, decoded_frames})."""

    key: str
    clip: PreparedClip
    series: dict[str, list[float]]
    window: dict
    selection: QuerySelection | None = None  # what the reviewer pointed at (None: the whole window)

    @property
    def view_key(self) -> str:
        """The key of this window under this selection (cache key of its vectors and rendered media)."""
        if self.selection is None:
            return self.key
        return f"{self.key}_{ud.text_digest(json.dumps(self.selection.to_dict(), sort_keys=True))}"


def prepared_bytes(prepared: Prepared) -> int:
    """The memory a cached window holds: its frames, masks and motion field."""
    clip = prepared.clip
    arrays = (clip.frames, clip.mask, clip.latent_mask, clip.motion.displacement, clip.motion.visibility,
              clip.motion.confidence)
    return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))


@dataclass
class Engine:
    """What every session shares, loaded once: model, indexes, examples, caches and the model lock."""

    attributor: Attributor
    nomask: Attributor | None
    examples: list[Example]
    media: ud.MediaCache
    max_seconds: float = 60.0
    max_upload_mb: int = MAX_UPLOAD_MB
    lock: threading.Lock = field(default_factory=threading.Lock)
    scan_slot: threading.Lock = field(default_factory=threading.Lock)
    jobs: dict = field(default_factory=dict)  # session → model jobs running
    jobs_lock: threading.Lock = field(default_factory=threading.Lock)
    prepared: ud.LruCache = field(default_factory=lambda: ud.LruCache(PREPARED_ENTRIES, PREPARED_BYTES,
                                                                         prepared_bytes))
    profiles: ud.LruCache = field(default_factory=lambda: ud.LruCache(16))
    vectors: ud.LruCache = field(default_factory=lambda: ud.LruCache(64))

    @property
    def adapter(self):
        return self.attributor.featurizer.adapter

    @property
    def fps(self) -> float:
        return float(self.adapter.geometry.fps)

    @property
    def clips(self) -> list[dict]:
        return self.attributor.index.clips

    @functools.cached_property
    def planted(self) -> bool:
        """Whether this is a world with planted artifacts (its clips say which carry one): a demo with ground
        truth, for which the app shows the detector's reading and counts planted clips in a ranking."""
        return pl.has_planted(self.clips)

    @property
    def conditioning(self) -> str:
        """"caption" (the query's prompt enters its gradient) or "null" (it does not)."""
        return self.attributor.featurizer.settings.conditioning

    @property
    def span(self) -> float:
        """Seconds of video the model sees (its frames at its fps): the attributed window."""
        g = self.adapter.geometry
        return g.num_frames / g.fps

    def prepare(self, video: str, start: float | None, progress: gr.Progress) -> Prepared:
        """Decode the attributed window (``start`` in s; None = the window with the most motion) at about the
        model's resolution, standardise, estimate motion; shared by sessions through an LRU cache."""
        progress(0.02, desc="decoding")
        if not Path(video).is_file():
            raise MotiveError("The query clip is no longer on the server (old uploads are cleaned up): upload it "
                              "again or pick an example.")
        digest = ud.file_digest(video)
        info = probe_video(video)
        duration = info["duration"]
        if duration > self.max_seconds:
            raise MotiveError(f"{Path(video).name} is {duration:.1f} s long, over the {self.max_seconds:g} s limit: "
                              "trim it to the part with the motion you care about.")
        windowed = duration > self.span + 1e-6
        if not windowed:
            start, chosen = 0.0, "whole clip"
        elif start is None:
            progress(0.05, desc="finding the window with the most motion")
            start, chosen = most_moving_start(self.profile(video, digest), self.span), "most motion"
        else:
            check_start(float(start), duration, self.span)
            start, chosen = float(start), "given"
        key = f"{digest}_{round(start * 1000)}"
        cached = self.prepared.get(key)
        if cached is not None:
            return dataclasses.replace(cached, window={**cached.window, "chosen": chosen})
        began = time.perf_counter()
        clip = read_video(video, max_seconds=self.max_seconds, max_side=DECODE_SIDE,
                          start=start, duration=self.span if windowed else None)
        decode = time.perf_counter() - began
        progress(0.2, desc="motion")
        prepared = self.attributor.featurizer.prepare(clip)
        prepared.timings = {"decode": decode, **prepared.timings}
        series = ud.magnitude_series(prepared.motion.magnitude)
        window = {"start": start, "duration": self.span if windowed else duration, "clip_duration": duration,
                  "chosen": chosen, "decoded_frames": len(clip.frames)}
        # the dense displacement field is kept (a box drawn on a frame follows the object with it); the LRU
        # cache bounds how many are held
        result = Prepared(key, prepared, series, window)
        self.prepared.put(key, result)
        return result

    def profile(self, video: str, digest: str):
        """The clip's cheap whole-length motion scan (cached per file)."""
        cached = self.profiles.get(digest)
        if cached is None:
            with self.scan_slot:  # long clips scan one at a time, so they cannot take every worker
                cached = self.profiles.get(digest) or motion_profile(video, self.fps, self.max_seconds)
            self.profiles.put(digest, cached)
        return cached

    @contextlib.contextmanager
    def admitted(self, session: str | None):
        """Run one model job for ``session``; refuse a further one while it runs (each session waits its
        turn instead of filling the shared workers)."""
        with self.jobs_lock:
            if session and self.jobs.get(session, 0) >= JOBS_PER_SESSION:
                raise MotiveError("This page already has a model job running: wait for it to finish (its progress "
                                  "is shown next to the button), then try again.")
            self.jobs[session] = self.jobs.get(session, 0) + 1
        try:
            yield
        finally:
            with self.jobs_lock:
                self.jobs[session] -= 1
                if not self.jobs[session]:
                    del self.jobs[session]

    def still_window_message(self, query: "Query") -> str | None:
        """For a long clip whose window barely moves while the clip moves elsewhere: say so (else None)."""
        window = query.window
        if window["chosen"] == "whole clip":
            return None
        best = motion_elsewhere(self.profile(query.video, query.key.split("_")[0]), window["start"], self.span)
        return None if best is None else outside_window_message(window["start"], self.span, window["clip_duration"],
                                                                best)

    def restricted(self, prepared: Prepared, masked: bool = True) -> PreparedClip:
        """The window as the gradient of the mask (or no-mask) index sees it: its weight restricted to the
        selection (W ⊙ S, or S alone without the mask; Eq. 14), or the whole window without a selection."""
        if prepared.selection is None:
            return prepared.clip
        settings = (self.attributor if masked else self.nomask).featurizer.settings
        return select(prepared.clip, prepared.selection, self.adapter.geometry, settings.use_mask)

    def vector(self, prepared: Prepared, prompt: str, masked: bool) -> tuple[np.ndarray, dict]:
        """The query's projected gradient under the mask (or without it), cached per (clip, selection, prompt,
        mask)."""
        attributor = self.attributor if masked else self.nomask
        key = (prepared.view_key, prompt, masked)
        with self.lock:  # one model evaluation at a time; the others wait here, not in the queue
            cached = self.vectors.get(key)
            if cached is not None:
                return cached
            vector, timings = gpu_gradient(attributor.featurizer, self.restricted(prepared, masked), prompt)
            self.vectors.put(key, (vector, timings))
            return vector, timings

    def generate(self, prompt: str, seed: int, steps: int, guidance: float, progress: gr.Progress) -> Path:
        """A clip from the loaded model, written upscaled so it is legible; same settings → same file."""
        name = ud.text_digest(json.dumps(self.attributor.index.config.get("model")), prompt, seed, steps, guidance)
        path = self.media.path("generated", f"{name}.mp4")
        if path.is_file():
            return path

        def step(done: int, total: int) -> None:
            progress(done / total, desc=f"denoising step {done}/{total}")

        with self.lock:
            frames = gpu_sample(self.adapter, prompt, seed, steps, guidance, step)
        g = self.adapter.geometry
        return write_mp4(frames, path, self.fps, scale=ud.panel_scale(g.height, g.width))

    def clip_visual(self, clip: dict) -> ud.ClipVisual:
        """A training clip standardised like the index saw it, with its own motion mask (cached on disk)."""
        def compute() -> ud.ClipVisual:
            prepared = self.attributor.featurizer.prepare_file(self.attributor.index.clip_path(clip))
            return ud.visual_from(prepared.frames, prepared.mask)

        try:
            return self.media.visual("clips", safe_name(clip["id"]), compute)
        except MotiveError as err:  # e.g. an index shipped without its videos: show why, keep the ranking
            log.warning("clip %s cannot be shown: %s", clip["id"], err)
            g = self.adapter.geometry
            return ud.placeholder_visual(g.num_frames, g.height, g.width, "video missing")

    def thumbnail(self, clip: dict) -> str:
        """Filmstrip PNG of a training clip (frames over their grey-fade overlay)."""
        visual = self.clip_visual(clip)
        name = f"_{safe_name(visual.note)}" if visual.note else safe_name(clip["id"])  # stand-ins are never cached per clip
        return str(self.media.image("thumbs", name, lambda: ud.filmstrip(visual)))

    def comparison(self, query: "Query", entry: dict, rank: int, positive: bool) -> str:
        """mp4 of query | query mask | candidate | candidate mask."""
        title = f"{'+' if positive else '-'}{rank} {entry['score']:+.3f} {entry['id']}"
        return str(self.media.video(f"compare/{query.key}", safe_name(f"{entry['id']}_{entry['score']:.6f}"),
                                    lambda: ud.comparison(query.visual, self.clip_visual(entry), title,
                                                          entry["score"]), self.fps))


class Worlds:
    """Several loaded worlds (model, indexes, examples) in one app: each session works in the one it picked
    (the first until it picks another), without a restart. Handlers use it as they use an :class:`Engine`:
    every attribute is the current session's world's, found from the request gradio is serving."""

    def __init__(self, engines: dict[str, Engine]):
        self.engines = engines
        self.chosen = ud.LruCache(4096)  # session → world name (a forgotten session is back in the first world)

    def choose(self, session: str | None, name: str) -> Engine:
        if name not in self.engines:
            raise MotiveError(f"unknown world {name!r}: this app has {', '.join(self.engines)}")
        if session:
            self.chosen.put(session, name)
        return self.engines[name]

    def current_name(self) -> str:
        request = LocalContext.request.get(None)
        session = getattr(request, "session_hash", None)
        return (session and self.chosen.get(session)) or next(iter(self.engines))

    def __getattr__(self, name: str):
        return getattr(self.engines[self.current_name()], name)


@gpu_task(duration=120)
def gpu_gradient(featurizer, clip: PreparedClip, prompt: str) -> tuple[np.ndarray, dict]:
    """The query's projected gradient (on a ZeroGPU Space, with a GPU attached for this call only);
    returns numpy and the timings of this computation."""
    clip = dataclasses.replace(clip, timings={})
    vector = featurizer.vector(clip, prompt)
    return np.asarray(vector), dict(clip.timings)


@gpu_task(duration=240)
def gpu_segments(attributor: Attributor, clip: PreparedClip, count: int, prompt: str, top: int,
                  boxes: tuple[Box, ...], isolate: bool = False) -> list[dict]:
    """The "when" view's rankings, one per stretch of the query (one gradient each; a GPU on a ZeroGPU Space)."""
    return [segment.to_dict() for segment in attribute_segments(attributor, clip, count, prompt, top, boxes, isolate)]


@gpu_task(duration=120)
def gpu_sample(adapter, prompt: str, seed: int, steps: int, guidance: float, on_step) -> np.ndarray:
    """A generated clip's frames (uint8 numpy), with a GPU attached on a ZeroGPU Space."""
    return np.asarray(sample(adapter, prompt, seed=seed, steps=steps, guidance=guidance, on_step=on_step))


def safe_name(name: str) -> str:
    """A file name made of the name's letters, digits and -_. (the rest replaced by _), at most 120 long."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]


def load_engine(model: str | Path, index: str | Path, nomask_index: str | Path | None = None,
                examples: str | Path | None = None, cache_dir: str | Path | None = None,
                device: str | None = None, max_seconds: float = 60.0) -> Engine:
    """Load the model and indexes once (no vectors are computed here)."""
    adapter = load_model(model, device=device, dtype=None)
    attributor = Attributor(index, model=adapter)
    nomask = Attributor(nomask_index, model=adapter) if nomask_index else None
    if nomask is not None and nomask.featurizer.settings.use_mask:
        raise MotiveError(f"{nomask_index} was built with the motion mask on; pass the no-mask index (W ≡ 1).")
    folder = Path(index).resolve()
    cache = Path(cache_dir) if cache_dir else ud.MediaCache().root / ud.text_digest(folder, attributor.index.header.get(
        "clip_list_sha"), json.dumps(attributor.index.config, sort_keys=True))
    return Engine(attributor, nomask, load_examples(examples), ud.MediaCache(cache), max_seconds=max_seconds)


def load_examples(folder: str | Path | None) -> list[Example]:
    """Examples from ``examples.json`` ({"examples": [{"file", "prompt", "motion", "kind"}]}), else every mp4."""
    if folder is None or not Path(folder).is_dir():
        return []
    folder = Path(folder)
    manifest = folder / "examples.json"
    if manifest.is_file():
        entries = json.loads(manifest.read_text()).get("examples", [])
        return [Example(folder / e["file"], e.get("prompt", ""), f"{e.get('motion', Path(e['file']).stem)} "
                        f"({e.get('kind', 'example')})") for e in entries if (folder / e["file"]).is_file()]
    return [Example(p, "", p.stem) for p in sorted(folder.glob("*.mp4"))]


@dataclass
class Query:
    """One session's current query: identity, source file (so a shared cache may evict its decoded clip:
    it is prepared again), motion display data and (once attributed) its scores."""

    key: str
    video: str
    window: dict
    name: str
    prompt: str
    stats: dict
    visual: ud.ClipVisual
    timings: dict = field(default_factory=dict)
    scores: np.ndarray | None = None
    nomask_scores: np.ndarray | None = None
    top: int = 5
    region: QuerySelection | None = None  # the selection as given (None: the whole window)
    selection: dict | None = None  # what it selected (the library's record: frames, tracked boxes, motion kept)
