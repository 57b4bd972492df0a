"""Motive Studio: which training clips taught a video generator this motion (Motive, arXiv 2601.08828)?

Run ``python app.py`` for the embedded demo worlds (CPU, no network): it opens on the artifact world (a model
fine-tuned on clips with planted motion defects) with the clean demo world in its world menu
(``--world clean`` opens on that one); or point it at your own model and attribution index: ``python app.py --model DIR --index DIR [--nomask-index DIR] [--examples DIR]``.
This file is UI wiring only: the pipeline lives in ``motive_core``, what sessions share (model, indexes,
caches, query preparation) in ``motive_core.ui.engine`` and display data in ``motive_core.ui.display``. Every action has a stable Gradio API name (see ``API_NAMES``).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import html
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from gradio import processing_utils  # noqa: E402
from gradio import utils as gradio_utils  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from motive_core.attribution.scoring import majority_vote, write_selection_csv, write_selection_jsonl  # noqa: E402
from motive_core.config import GENERATION  # noqa: E402
from motive_core.errors import MotiveError  # noqa: E402
from motive_core.featurize import PreparedClip, require_motion  # noqa: E402
from motive_core.query import conditioning_note  # noqa: E402
from motive_core.selection import Box, QuerySelection, box_from_model, outline_selection  # noqa: E402
from motive_core.ui import display as ud  # noqa: E402
from motive_core.ui.engine import (JOBS_PER_SESSION, MAX_UPLOAD_MB, Engine, Prepared, Query, Worlds,  # noqa: E402
                                   gpu_segments, load_engine)
from motive_core.ui import planted as pl  # noqa: E402
from motive_core.ui import review as rv  # noqa: E402
from motive_core.ui.disk import FolderCleaner, FolderLimit  # noqa: E402
from motive_core.ui.serving import FileGuard, is_inside, shown_path  # noqa: E402
from motive_core.video import resample_indices  # noqa: E402

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")



REPO = Path(__file__).resolve().parent
DEFAULT_MODEL = REPO / "precomputed" / "model"
DEFAULT_INDEX = REPO / "precomputed" / "index-motion"
DEFAULT_NOMASK = REPO / "precomputed" / "index-nomask"
DEFAULT_EXAMPLES = REPO / "assets" / "examples"
MAX_SEED = 2**32 - 1
UPLOADS = ud.MediaCache().root / "uploads"  # gradio's temp folder for this app (uploads and served copies)
# (folder, size cap, maximum age): uploads and rendered media are scratch; saved reviews live longer
UPLOADS_LIMIT = (2 * 1024**3, 6 * 3600.0)
MEDIA_LIMIT = (2 * 1024**3, 24 * 3600.0)
REVIEWS_LIMIT = (1024**3, 30 * 86400.0)
# Admission: model work is queued (at most HEAVY_SLOTS run at once, QUEUE_SIZE wait), one job per session at a
# time, and the model itself runs one evaluation at a time (Engine.lock); long clips take turns for the scan.
HEAVY_SLOTS, QUEUE_SIZE = 3, 64
HEAVY = dict(concurrency_id="heavy", concurrency_limit=HEAVY_SLOTS)
LIGHT = dict(queue=False)  # instant UI updates that cannot fail
# quick actions that can refuse (a message needs the queue: an unqueued error shows only a bare "Error")
QUICK = dict(concurrency_id="quick", concurrency_limit=8, show_progress="minimal")
QUERY_HEADERS = ["#", "name", "prompt", "window", "top clip", "max motion"]
API_NAMES = ("info", "generate", "motion", "attribute", "when", "rerank", "compare", "compare_nomask",
             "add_query", "remove_query", "clear_queries", "vote", "save_review", "open_review", "report")
log = logging.getLogger("motive_studio")

CSS = """
.motive-header h1 {margin-bottom: 0.1em}
.motive-status {min-height: 1.6em}
#pos-gallery .caption-label, #neg-gallery .caption-label {white-space: normal; text-overflow: clip; max-width: none;
  overflow-wrap: anywhere; left: 0; right: 0; opacity: 0.9}
"""


# ------------------------------------------------------------------------------------ session state


def refuse(message: str, title: str) -> gr.Error:
    """A message for the user about their input or the order of actions, logged in one line (no traceback)."""
    log.info("refused (%s): %s", title, message.replace("\n", " "))
    return gr.Error(message, title=title, print_exception=False)


def _check_range(label: str, value, minimum: float, maximum: float) -> None:
    if value is None:
        return
    if not isinstance(value, (int, float)) or not math.isfinite(value) or not minimum <= value <= maximum:
        raise refuse(f"{label} must be a number between {minimum:g} and {maximum:g} (got {value!r}).", "Bad setting")


def bounded(component: gr.Number | gr.Slider) -> gr.Number | gr.Slider:
    """The component, refusing an out-of-range value (possible through the API) by the input's name in one
    log line; gradio's own check names no input and prints a traceback. (Wrapped on the instance: a
    subclass would make gradio write an app.pyi stub next to this file.)"""
    convert = component.preprocess

    def preprocess(payload):
        _check_range(component.label, payload, component.minimum, component.maximum)
        return convert(payload)

    component.preprocess = preprocess
    return component


def md_text(text: str) -> str:
    """User text for a Markdown component: shown as written, never as HTML."""
    return html.escape(text or "", quote=False)


def handled(fn):
    """Show library errors as readable messages (gr.Error) and log anything unexpected; never a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except MotiveError as err:
            raise refuse(str(err), "Cannot do that") from None
        except Exception as err:  # noqa: BLE001 - the app must keep serving whatever happens
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"Unexpected {type(err).__name__}: {err}. The app is still running; try another input.",
                           title="Something went wrong") from None
    return wrapper


def admitted(engine: Engine):
    """Decorator: the handler runs as one of its session's model jobs (see ``Engine.admitted``); the
    handler declares a ``request: gr.Request`` parameter so that gradio passes the session."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            request = next((a for a in (*args, *kwargs.values()) if isinstance(a, gr.Request)), None)
            with engine.admitted(getattr(request, "session_hash", None)):
                return fn(*args, **kwargs)
        return wrapper
    return decorate


def _need_video(video: str | None) -> str:
    if not video:
        raise refuse("No query video yet: generate one, upload a clip or pick an example in tab 1.", "No query")
    return video


def _need_scores(query: Query | None) -> Query:
    if query is None or query.scores is None:
        raise refuse("Attribute a query first (tab 1, “Run Motive”).", "No attribution yet")
    return query


def _query_name(name: str, prompt: str, video: str) -> str:
    return (name or "").strip() or (prompt or "").strip()[:40] or Path(video).stem


# ----------------------------------------------------------------------------------------- app


def build_app(model: str | Path = DEFAULT_MODEL, index: str | Path = DEFAULT_INDEX,
              nomask_index: str | Path | None = None, examples: str | Path | None = None,
              cache_dir: str | Path | None = None, device: str | None = None, max_seconds: float = 60.0,
              max_upload_mb: int = MAX_UPLOAD_MB, world: str = "clean",
              more_worlds: dict[str, tuple] | None = None) -> gr.Blocks:
    """The Motive Studio Blocks for one model and index (loaded here, once, for all sessions), named ``world``;
    ``more_worlds`` ({name: (model, index, no-mask index, examples)}) are loaded too, and each session can
    switch to one of them without a restart (a "world" menu in the header)."""
    given = {world: (model, index, nomask_index, examples), **(more_worlds or {})}
    engines = {}
    for position, (name, paths) in enumerate(given.items()):
        # a folder per world (clip ids may repeat across worlds), beside the given one
        cache = cache_dir if cache_dir is None or not position else Path(cache_dir).with_name(
            f"{Path(cache_dir).name}-{name}")
        engines[name] = load_engine(*paths, cache, device, max_seconds)
        engines[name].max_upload_mb = max_upload_mb
    engine = engines[world]
    os.environ.setdefault("GRADIO_TEMP_DIR", str(UPLOADS))  # a folder of its own, so it can be capped
    with gr.Blocks(title="Motive Studio", delete_cache=(1800, int(UPLOADS_LIMIT[1]))) as demo:
        demo.motive_engine, demo.motive_engines = engine, engines
        ui = _layout(engines)
        ui.demo = demo
        _wire(Worlds(engines) if len(engines) > 1 else engine, ui)
    return demo


def _header(engine: Engine) -> str:
    index, adapter = engine.attributor.index, engine.adapter
    g, settings = adapter.geometry, engine.attributor.featurizer.settings
    params = sum(p.numel() for p in adapter.denoiser(0.0).parameters())
    model = index.config.get("model", {})
    nomask = (f" · **no-mask index** `{engine.nomask.index.folder.name}` ({len(engine.nomask.index.clips)} clips)"
              if engine.nomask else " · no no-mask index loaded")
    return (f"# Motive Studio\nWhich training clips taught the model **this motion**? Motive scores every training "
            f"clip by how much its motion-weighted gradient agrees with the query's "
            f"([arXiv 2601.08828](https://arxiv.org/abs/2601.08828)).\n\n"
            f"**Model** `{model.get('name', '?')}` (weights {model.get('weight_hash', '?')}, "
            f"{params / 1e6:.2f} M denoiser parameters, {g.num_frames} frames {g.height}×{g.width} @ {g.fps:g} fps)"
            f" · **index** `{index.folder.name}` ({len(index.clips)} clips, D′ = {settings.proj_dim}, "
            f"mask {'on' if settings.use_mask else 'off'}, loss {settings.loss}, tracker {settings.tracker}){nomask}")


def _prompt_info(engine: Engine) -> str:
    if engine.conditioning == "caption":
        return ("used to generate, and as the query's caption in its gradient (index conditioning: caption); "
                "cleared when you upload a clip, which then runs without a prompt unless you write one")
    return ("used to generate; it does not enter the attribution gradient (index conditioning: null); "
            "cleared when you upload a clip")


class UI(SimpleNamespace):
    """The app's components by name."""


def _layout(engines: dict[str, Engine]) -> UI:
    """Header (with the world menu when there are several), status line and the four tabs; returns the
    components by name."""
    ui = UI()
    engine = next(iter(engines.values()))
    ui.world = None
    if len(engines) > 1:
        ui.world = gr.Dropdown([(WORLD_LABELS.get(name, name), name) for name in engines], value=next(iter(engines)),
                               label="world (model, indexes and examples; this page only)", elem_id="world")
    ui.header = gr.Markdown(_header(engine), elem_classes="motive-header", elem_id="header")
    ui.status = gr.Markdown("Start in tab 1: generate, upload or pick a query clip, then **Run Motive**.",
                            label="status", elem_classes="motive-status", elem_id="status")
    ui.current, ui.queries = gr.State(None), gr.State([])
    with gr.Tabs(selected="query") as ui.tabs:
        with gr.Tab("1 · Query", id="query"):
            _query_tab(engines, ui)
        with gr.Tab("2 · Motion", id="motion"):
            _motion_tab(engine, ui)
        with gr.Tab("3 · Attribution", id="attribution"):
            _attribution_tab(engine, ui)
        with gr.Tab("4 · Curate", id="curate"):
            _curate_tab(ui)
    return ui


def _query_tab(engines: dict[str, Engine], ui: UI) -> None:
    engine = next(iter(engines.values()))
    with gr.Row():
        with gr.Column(scale=2):
            ui.prompt = gr.Textbox(label="Prompt / caption" if engine.conditioning == "caption" else
                                   "Prompt (to generate; optional for attribution)", elem_id="prompt",
                                   info=_prompt_info(engine))
            with gr.Row():
                ui.seed = bounded(gr.Number(GENERATION.seed, label="seed", precision=0, minimum=0, maximum=MAX_SEED))
                ui.steps = bounded(gr.Slider(1, 100, GENERATION.steps, step=1, label="steps", elem_id="steps"))
                ui.guidance = bounded(gr.Slider(1.0, 8.0, GENERATION.guidance, step=0.5, label="guidance (CFG)"))
            ui.generate = gr.Button("Generate with the loaded model", elem_id="generate-btn")
            ui.name = gr.Textbox(label="Query name (used in curation)", elem_id="query-name")
            ui.window_start = gr.Textbox("", label="window start (s)", elem_id="window-start",
                                         placeholder="empty: the window with the most motion",
                                         info=f"the model attributes {engine.span:.2f} s of the clip; cleared when "
                                              "you upload a clip")
            ui.run = gr.Button("Run Motive ▶  (motion → attribution)", variant="primary", elem_id="run-btn")
            ui.run_progress = gr.Markdown("", elem_id="run-progress", elem_classes="motive-status")
        with gr.Column(scale=3):
            ui.video = gr.Video(label=f"Query clip (uploads up to {engine.max_upload_mb} MB and "
                                      f"{engine.max_seconds:g} s)", sources=["upload"],
                                height=300, loop=True, autoplay=True, elem_id="query-video")
    ui.examples = {}  # world → the column holding its examples (only the session's world's is shown)
    for position, (name, world) in enumerate(engines.items()):
        with gr.Column(visible=not position) as ui.examples[name]:
            if world.examples:
                gr.Examples([[str(e.file), e.prompt, e.name] for e in world.examples], [ui.video, ui.prompt, ui.name],
                            label="Examples (held-out looks and model generations)", examples_per_page=12,
                            elem_id="examples" if not position else f"examples-{name}")


def _motion_tab(engine: Engine, ui: UI) -> None:
    ui.warnings = gr.Markdown(label="motion warnings", elem_id="motion-warnings")
    ui.triptych = gr.Video(label="query | motion mask (grey-fade) | heat-map", show_label=False, loop=True,
                           autoplay=True, height=260, interactive=False, elem_id="triptych")
    with gr.Row():
        ui.motion_plot = gr.Plot(label="motion magnitude per frame", elem_id="motion-plot")
        with gr.Column():
            gr.Markdown(f"**Mask on the model's latent grid** (T′, h′, w′) = {engine.adapter.geometry.latent_grid()}: "
                        "the weight of each location in the attribution loss.")
            ui.latent = gr.Image(label="latent-grid mask", show_label=False, type="filepath", interactive=False,
                                 elem_id="latent-mask")
    with gr.Column(visible=False) as ui.planted_box:  # shown for a world with planted artifacts only
        ui.planted_md = gr.Markdown(elem_id="planted-md")
        ui.planted_plot = gr.Plot(label="artifact detector per frame", elem_id="planted-plot")
    _selection_controls(engine, ui)
    with gr.Accordion("motion statistics (JSON)", open=False):
        ui.stats = gr.JSON(label="motion statistics")


def _selection_controls(engine: Engine, ui: UI) -> None:
    """A box and a frame range that restrict the attribution to one object and one stretch of time: drawn by two
    clicks on a frame and set with two sliders, or typed as the plain numbers the API takes."""
    frames = engine.adapter.geometry.num_frames  # until a query's own frame count is known
    with gr.Accordion("Point at the defect: attribute one box and one stretch of frames (optional)", open=True,
                      elem_id="selection-box"):
        gr.Markdown("Click two corners of a box on the frame (the frame the range starts on, as the model sees it), "
                    "and set the range with the sliders; or type the numbers. They are pixels and frame numbers of "
                    "the attributed window **as read** (its size and frame count are under `query_size` in the "
                    "statistics below; frames count from the window's start). The box is left, top, right, bottom "
                    "(right and bottom excluded); with a frame it follows the object from that frame. The range is "
                    "frames *from* … *to* − 1; an empty field means no limit. **Attribute the selection** redraws "
                    "the players with the motion the gradient sees (W ⊙ S: the box outlined, frames outside the "
                    "range dimmed) and ranks for it.")
        with gr.Row():
            with gr.Column():
                ui.picker = gr.Image(None, label="run Motive, then click two corners of a box here", type="filepath",
                                     interactive=False, height=340, elem_id="frame-picker")
                ui.follow = gr.Checkbox(False, label="the box follows the object from this frame (tracked with the "
                                                     "motion field)", elem_id="follow")
            with gr.Column():
                ui.range_from = gr.Slider(0, frames - 1, 0, step=1, label="from frame", elem_id="range-from")
                ui.range_to = gr.Slider(1, frames, frames, step=1, label="to frame (excluded)", elem_id="range-to")
                with gr.Row():
                    ui.box = [gr.Number(None, label=label, placeholder="none", elem_id=f"box-{label}", min_width=70)
                              for label in ("x0", "y0", "x1", "y1")]
                with gr.Row():
                    ui.box_frame = gr.Number(None, label="box drawn on frame", placeholder="none: it stays put", step=1,
                                             elem_id="box-frame", min_width=90)
                    ui.frames_from = gr.Number(None, label="frames from", placeholder="the first", step=1,
                                               elem_id="frames-from", min_width=90)
                    ui.frames_to = gr.Number(None, label="to (excluded)", placeholder="the end", step=1,
                                             elem_id="frames-to", min_width=90)
                ui.isolate = gr.Checkbox(False, label="isolate (hide the rest from the model)", elem_id="isolate")
        with gr.Row():
            ui.attribute_selection = gr.Button("Attribute the selection ▶", variant="primary", elem_id="selection-btn")
            ui.clear_selection = gr.Button("Whole window (clear the selection)", elem_id="clear-selection-btn")
    ui.picked = gr.State(None)  # {"corner": [x, y]} after one click, {"rect": [x0, y0, x1, y1]} after two (model px)


def _top_k(engine: Engine) -> tuple[int, int]:
    """(most, default) tiles shown: five, or ten in a world with planted artifacts (the P@10 its benchmark
    scores), at most 50 and never more than the index holds."""
    count = len(engine.clips)
    return max(1, min(50, count)), min(10 if engine.planted else 5, count)


def _when_view(engine: Engine, ui: UI) -> None:
    """The "when" view: the query split into consecutive windows, each ranked on its own, side by side."""
    latent_frames = engine.adapter.geometry.latent_grid()[0]
    with gr.Accordion("When: which training clips shaped each stretch of the query", open=False, elem_id="when-box"):
        gr.Markdown("The attributed window is split into consecutive stretches (on whole latent frames) and each is "
                    "ranked on its own: its frames' motion alone, inside the selected box if there is one (the frame "
                    "range is replaced by each stretch). Different clips at the start and at the end mean different "
                    "training clips shaped the two parts of the motion. One gradient per stretch, on request.")
        with gr.Row():
            ui.when_count = bounded(gr.Slider(1, latent_frames, min(3, latent_frames), step=1, label="stretches",
                                              elem_id="when-count"))
            ui.when_run = gr.Button("Rank each stretch ▶", elem_id="when-btn")
        ui.when_table = gr.DataFrame(label="top clips of each stretch (rank · score · id)", interactive=False,
                                     wrap=True, elem_id="when-table")


def _attribution_tab(engine: Engine, ui: UI) -> None:
    most, shown = _top_k(engine)
    with gr.Row():
        ui.top = bounded(gr.Slider(1, most, shown, step=1, label="top-K shown", elem_id="top-k"))
        ui.compare_nomask = gr.Checkbox(False, label="compare with the no-mask index", elem_id="nomask-switch",
                                        interactive=engine.nomask is not None,
                                        info=None if engine.nomask else "no no-mask index loaded")
    with gr.Column(visible=False) as ui.nomask_box:
        ui.nomask_md = gr.Markdown(label="mask vs no-mask summary", elem_id="nomask-md")
        ui.nomask_table = gr.DataFrame(headers=ud.COMPARISON_HEADERS, label="top positives: Motive (mask) vs no mask",
                                       interactive=False, wrap=True, elem_id="nomask-table")
    ui.summary = gr.Markdown(label="attribution summary", elem_id="attr-summary")
    ui.pos = gr.Gallery(label="most positive: these clips push the model toward the query's motion", columns=5,
                        height=260, object_fit="contain", allow_preview=False, elem_id="pos-gallery")
    ui.neg = gr.Gallery(label="most negative: these clips push against it", columns=5, height=260,
                        object_fit="contain", allow_preview=False, elem_id="neg-gallery")
    gr.Markdown("<small>Each tile: four moments of the training clip (top) over its own motion mask "
                "(grey-fade, bottom). Click a tile to play it next to the query.</small>")
    _when_view(engine, ui)
    with gr.Row(elem_id="compare-row"):
        with gr.Column(scale=3):
            ui.compare = gr.Video(label="query | its mask | training clip | its mask", show_label=False, loop=True,
                                  autoplay=True, height=260, interactive=False, elem_id="compare-video")
        with gr.Column(scale=2):
            ui.candidate = gr.Dropdown([], label="play a candidate next to the query", allow_custom_value=True,
                                       elem_id="candidate")
            ui.candidate_md = gr.Markdown(label="candidate details", elem_id="candidate-md")
    with gr.Row():
        ui.hist = gr.Plot(label="score histogram", elem_id="score-hist")
        ui.scatter = gr.Plot(label="influence vs motion magnitude", elem_id="score-scatter")
    gr.Markdown("<small>Histogram: every training clip's score, the shown clips marked. Scatter: a Spearman ρ near "
                "0 means the ranking is not simply “clips with more motion” (paper Fig. 6).</small>")
    with gr.Accordion("full result (JSON)", open=False):
        ui.result = gr.JSON(label="attribution result", elem_id="attr-result")


def _curate_tab(ui: UI) -> None:  # noqa: PLR0915 - one tab's components
    gr.Markdown("Add each attributed query to the list, then keep the training clips most queries vote for: a query "
                "votes for the clips above its own percentile cut; clips are ranked by votes (ties by mean score) and "
                "the top fraction is kept (paper: 90th percentile, 10 %).")
    with gr.Row():
        ui.add = gr.Button("Add current query to the list", variant="primary", elem_id="add-btn")
        ui.remove_row = bounded(gr.Number(1, label="row #", precision=0, minimum=1, maximum=1000,
                                          elem_id="remove-row", scale=0, min_width=90))
        ui.remove = gr.Button("Remove this row", elem_id="remove-btn")
        ui.clear = gr.Button("Clear the list", elem_id="clear-btn")
    ui.query_table = gr.DataFrame(headers=QUERY_HEADERS, label="curation list (max motion in px/frame)",
                                  interactive=False, wrap=True, column_widths=["5%", "22%", "33%", "20%", "12%", "8%"],
                                  elem_id="query-table")
    with gr.Row():
        ui.fraction = bounded(gr.Slider(0.01, 1.0, 0.1, step=0.01, label="fraction kept", elem_id="fraction"))
        ui.percentile = bounded(gr.Slider(50, 99.5, 90, step=0.5, label="percentile cut per query",
                                          elem_id="percentile"))
        ui.vote = gr.Button("Run majority vote", variant="primary", elem_id="vote-btn")
    ui.vote_md = gr.Markdown(label="curation status", elem_id="vote-md")
    with gr.Row():
        with gr.Column(scale=3):
            ui.selection = gr.DataFrame(headers=ud.SELECTION_HEADERS, label="selected clips", interactive=False,
                                        wrap=True, column_widths=["8%", "21%", "13%", "9%", "12%", "37%"],
                                        max_height=420, elem_id="selection-table")
        with gr.Column(scale=2):
            ui.overlap = gr.Plot(label="per-query overlap", elem_id="overlap-plot")
    with gr.Row():
        ui.csv = gr.File(label="selection.csv", interactive=False, elem_id="csv-file")
        ui.jsonl = gr.File(label="selection.jsonl", interactive=False, elem_id="jsonl-file")
        ui.others = gr.File(label="every other clip (the opposite list).csv", interactive=False,
                            elem_id="others-file")
    ui.selected = gr.State(None)
    with gr.Accordion("Review: save, reopen, share, report", open=True):
        gr.Markdown("A review keeps the curation list (queries, prompts, windows, scores), the current query's "
                    "inputs, the vote settings, the last selection and your notes. Save it as a file or a link; "
                    "the HTML report embeds the clips, masks, rankings and settings and opens without the app.")
        ui.notes = gr.Textbox(label="notes", lines=3, elem_id="notes")
        with gr.Row():
            ui.save = gr.Button("Save review (file + link)", elem_id="save-btn")
            ui.report = gr.Button("Export HTML report", elem_id="report-btn")
        ui.review_md = gr.Markdown(elem_id="review-md")
        with gr.Row():
            ui.review_file = gr.File(label="review.json", interactive=False, elem_id="review-file")
            ui.report_file = gr.File(label="report.html", interactive=False, elem_id="report-file")
            ui.open_file = gr.File(label="open a saved review (.json)", file_types=[".json"], type="filepath",
                                   elem_id="open-review")


# ------------------------------------------------------------------------------------------ handlers


def _window_text(window: dict) -> str:
    if window["chosen"] == "whole clip":
        return f"whole clip ({window['clip_duration']:.2f} s)"
    how = "the window with the most motion" if window["chosen"] == "most motion" else "window start as given"
    return (f"window {window['start']:.2f}–{window['start'] + window['duration']:.2f} s of "
            f"{window['clip_duration']:.2f} s ({how})")


def _motion_outputs(engine: Engine, query: Query, prepared: Prepared) -> tuple:
    notes = ud.motion_warnings(query.stats)
    if query.stats.get("is_near_static"):
        elsewhere = engine.still_window_message(query)
        if elsewhere:  # the window is still, not the clip
            notes = [elsewhere] + notes[1:]
    for note in notes:
        gr.Warning(note, title="Check this query")
    triptych = engine.media.video(f"query/{query.key}", "triptych", lambda: ud.query_triptych(query.visual),
                                  engine.fps)
    latent = engine.media.image(f"query/{query.key}", "latent",
                                lambda: ud.latent_mask_image(engine.restricted(prepared).latent_mask))
    figure = ud.motion_figure(prepared.series, engine.fps)
    stats = query.stats
    warning_md = "\n\n".join(f"**Warning.** {n}" for n in notes) or (
        f"**Motion looks usable**: max {stats['motion_max']:.2f} px/frame, mean {stats['motion_mean']:.3f}, "
        f"camera score {stats['camera_motion_score']:.2f}.")
    warning_md = f"**Attributed:** {_window_text(query.window)}{_selection_text(query)}.\n\n{warning_md}"
    status = (f"**{md_text(query.name)}**: motion ready ({query.stats['frames']} frames, "
              f"{_window_text(query.window)}); see tab 2.")
    return str(triptych), figure, str(latent), warning_md, query.stats, query, status


def _window_start(text: str | float | None) -> float | None:
    """The window start typed by the user (seconds), or None for "the window with the most motion"."""
    if text is None or not str(text).strip():
        return None
    try:
        start = float(str(text).strip())
    except ValueError:
        raise refuse(f"window start must be a number of seconds, or empty for the window with the most motion "
                     f"(got {str(text)[:40]!r}).", "Bad setting") from None
    if not math.isfinite(start):
        raise refuse(f"window start must be a finite number of seconds (got {text!r}).", "Bad setting")
    return start


def _slider_value(value: float | None, default: int, maximum: int) -> int:
    """A typed frame number as a slider position: ``default`` when empty or not finite, else within 0 … maximum."""
    if value is None or not math.isfinite(value):
        return default
    return min(max(int(value), 0), maximum)


def _frame_number(label: str, value: float | None) -> int | None:
    """A frame number typed by the user (None when left empty); refused unless whole and ≥ 0."""
    if value is None:
        return None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value != int(value) or value < 0:
        raise refuse(f"{label} must be a whole frame number ≥ 0, or empty (got {value!r}).", "Bad selection")
    return int(value)


def _region(x0: float | None, y0: float | None, x1: float | None, y1: float | None, box_frame: float | None,
            first: float | None, end: float | None, isolate: bool, source: dict) -> QuerySelection | None:
    """The selection typed as plain numbers (pixels and frames of the attributed window, as read), or None when
    every field is empty; a range with only one end runs from the window's first frame or to its last."""
    edges = (x0, y0, x1, y1)
    if any(v is not None for v in edges) and any(v is None for v in edges):
        raise refuse("A box needs all four edges x0, y0, x1, y1 (left, top, right, bottom in pixels of the query), "
                     "or none of them.", "Bad selection")
    box_frame = _frame_number("the box's frame", box_frame)
    if box_frame is not None and x0 is None:
        raise refuse("A box frame was given without a box: give x0, y0, x1, y1 too, or clear the frame.",
                     "Bad selection")
    first, end = _frame_number("the range's first frame", first), _frame_number("the range's end frame", end)
    boxes = () if x0 is None else (Box(x0, y0, x1, y1, frame=box_frame),)
    frames = None if first is None and end is None else (first or 0, source["frames"] if end is None else end)
    if not boxes and frames is None:
        if isolate:
            raise refuse("Isolating needs a box: it hides what lies outside the box from the model.", "Bad selection")
        return None
    return QuerySelection(boxes, frames, bool(isolate))


def _make_query(engine: Engine, video: str, prompt: str, name: str, start: str | float | None,
                progress: gr.Progress, region: tuple = ()) -> tuple[Query, Prepared]:
    """The query and its prepared window; ``region``: the selection's plain numbers (see ``_region``)."""
    prepared = engine.prepare(_need_video(video), _window_start(start), progress)
    clip = prepared.clip
    selection = _region(*region, source=clip.source) if any(v not in (None, False) for v in region) else None
    prepared = dataclasses.replace(prepared, selection=selection)
    restricted = engine.restricted(prepared)  # refuses a box outside the frame or a selection without motion
    frames = clip.frames if selection is None else outline_selection(clip.frames, restricted.selection)
    stats = {**clip.stats.to_dict(), "window": prepared.window,
             "query_size": {k: clip.source[k] for k in ("width", "height", "frames", "fps")},
             "selection": restricted.selection}
    query = Query(key=prepared.view_key, video=video, window=prepared.window, name=_query_name(name, prompt, video),
                  prompt=prompt or "", stats=stats, visual=ud.visual_from(frames, restricted.mask),
                  timings=dict(clip.timings), region=selection, selection=restricted.selection)
    return query, prepared


def _selection_text(query: Query) -> str:
    """", selection …" for the lines naming what was attributed ("" for the whole window)."""
    if query.selection is None:
        return ""
    return (f", selection {query.selection['description']} ({query.selection['motion_kept']:.0%} of the window's "
            "motion)")


def _entries(engine: Engine, scores: np.ndarray, top: int) -> tuple[list[dict], list[dict]]:
    ranked = engine.attributor.index.rank(scores, top)
    return ranked["positives"], ranked["negatives"]


def _gallery(engine: Engine, entries: list[dict], positive: bool) -> list[tuple[str, str]]:
    return [(engine.thumbnail(e), ud.candidate_caption(r, e, positive, short=True))
            for r, e in enumerate(entries, start=1)]


def _candidate_md(entry: dict, rank: int, positive: bool) -> str:
    labels = ", ".join(f"{k}: {v}" for k, v in (entry.get("labels") or {}).items())
    motion = entry.get("motion") or {}
    return (f"**{'+' if positive else '−'}{rank} · {entry['id']}** — influence **{entry['score']:+.4f}**\n\n"
            f"{entry['caption']}\n\n{labels}\n\nmotion: mean {motion.get('motion_mean', float('nan')):.3f}, "
            f"max {motion.get('motion_max', float('nan')):.2f} px/frame, camera score "
            f"{motion.get('camera_motion_score', float('nan')):.2f}")


def _choices(positives: list[dict], negatives: list[dict]) -> list[tuple[str, str]]:
    return ([(ud.candidate_caption(r, e, True)[:90], e["id"]) for r, e in enumerate(positives, start=1)]
            + [(ud.candidate_caption(r, e, False)[:90], e["id"]) for r, e in enumerate(negatives, start=1)])


def _find(positives: list[dict], negatives: list[dict], clip_id: str) -> tuple[dict, int, bool] | None:
    for entries, positive in ((positives, True), (negatives, False)):
        for rank, entry in enumerate(entries, start=1):
            if entry["id"] == clip_id:
                return entry, rank, positive
    return None


def _nomask_outputs(engine: Engine, query: Query) -> tuple:
    if query.nomask_scores is None:
        return "", []
    mask_pos, _ = _entries(engine, query.scores, query.top)
    ranked = engine.nomask.index.rank(query.nomask_scores, query.top)
    overlap = ud.ranking_overlap([e["id"] for e in mask_pos], [e["id"] for e in ranked["positives"]])
    mask_scores, nomask_scores = ud.align_by_id(engine.clips, query.scores, engine.nomask.index.clips,
                                                query.nomask_scores)
    rho = ud.rank_correlation(mask_scores.astype(np.float64), nomask_scores.astype(np.float64))
    md = (f"### Motive (mask) vs no mask\nTop-{query.top} positives shared: **{overlap['count']} of {query.top}** "
          f"(Jaccard **{overlap['jaccard']:.2f}**); Spearman ρ over the {len(mask_scores)} clips in both indexes: "
          f"**{rho:+.2f}**. "
          "Clips in only one list are where the motion mask changed the ranking.")
    return md, ud.comparison_rows(mask_pos, ranked["positives"])


def _prompt_used(engine: Engine, prompt: str) -> str:
    """The line shown next to every ranking: the prompt used and what it did under the index's conditioning."""
    used = f"“{prompt}”" if prompt else "no prompt"
    return md_text(f"**Prompt used: {used}** · {conditioning_note(engine.conditioning, prompt)}.")


def _planted_text(engine: Engine, positives: list[dict]) -> str:
    """For a world with planted artifacts: the shown positives scored against its ground truth ("" otherwise)."""
    if not engine.planted:
        return ""
    return (f"**Ground truth (demo world):** {pl.planted_count(positives)}; "
            f"{pl.planted_share(engine.clips)}.\n\n")


def _attribution_outputs(engine: Engine, query: Query) -> tuple:
    positives, negatives = _entries(engine, query.scores, query.top)
    first = positives[0]
    timings = " · ".join(f"{k} {v:.2f} s" for k, v in query.timings.items())
    summary = (f"**{md_text(query.name)}** against **{len(query.scores)}** training clips: top +{first['score']:.3f} "
               f"(`{first['id']}`), bottom {negatives[0]['score']:+.3f} (`{negatives[0]['id']}`).\n\n"
               f"{_prompt_used(engine, query.prompt)}\n\nAttributed {_window_text(query.window)}{_selection_text(query)}.\n\n"
               f"{_planted_text(engine, positives)}<small>{timings}</small>")
    result = {"query": {"name": query.name, "prompt": query.prompt, "window": query.window,
                        "conditioning": engine.conditioning,
                        "prompt_in_gradient": engine.conditioning == "caption" and bool(query.prompt),
                        "conditioning_note": conditioning_note(engine.conditioning, query.prompt),
                        "selection": query.selection, "motion": query.stats},
              "num_clips": len(query.scores), "positives": positives, "negatives": negatives,
              "timings": query.timings,
              "nomask": None if query.nomask_scores is None else engine.nomask.index.rank(query.nomask_scores,
                                                                                           query.top)}
    nomask_md, nomask_table = _nomask_outputs(engine, query)
    used = f"prompt “{md_text(query.prompt)}”" if query.prompt else "no prompt"
    status = (f"**{md_text(query.name)}**: attributed against {len(query.scores)} clips in "
              f"{sum(query.timings.values()):.1f} s with {used}; see tab 3, then add it to the curation list in tab 4.")
    return (_gallery(engine, positives, True), _gallery(engine, negatives, False),
            ud.score_histogram(query.scores, positives, negatives),
            ud.influence_scatter(query.scores, engine.clips, positives, negatives), summary,
            gr.Dropdown(choices=_choices(positives, negatives), value=first["id"]),
            engine.comparison(query, first, 1, True), _candidate_md(first, 1, True), nomask_md, nomask_table,
            result, query, status)


def _wire(engine: Engine, ui: UI) -> None:
    """Connect components to handlers; heavy work is queued (two at a time), light work is not."""

    @handled
    def info() -> dict:
        """Loaded model, index sizes and settings."""
        index = engine.attributor.index
        return {"model": index.config.get("model"), "geometry": engine.adapter.geometry.to_dict(),
                "index": {"folder": shown_path(index.folder, REPO), "clips": len(index.clips),
                          "settings": index.config["settings"]},
                "nomask_index": None if engine.nomask is None else {
                    "folder": shown_path(engine.nomask.index.folder, REPO), "clips": len(engine.nomask.index.clips)},
                "examples": [{"file": e.file.name, "prompt": e.prompt, "name": e.name} for e in engine.examples],
                "max_seconds": engine.max_seconds, "max_upload_mb": engine.max_upload_mb,
                "attributed_seconds": engine.span,
                "limits": {"model_jobs_at_once": HEAVY_SLOTS, "queue_size": QUEUE_SIZE,
                           "jobs_per_session": JOBS_PER_SESSION, "max_upload_mb": engine.max_upload_mb,
                           "max_seconds": engine.max_seconds},
                "api": list(API_NAMES)}

    @handled
    @admitted(engine)
    def generate(prompt: str, seed: float, steps: float, guidance: float, request: gr.Request,
                 progress=gr.Progress()) -> tuple:
        """Generate a query clip from a prompt with the loaded model; returns (video, query name)."""
        if not (prompt or "").strip():
            raise refuse("Write a prompt first, e.g. “a red circle bouncing right on a plain background”.", "No prompt")
        steps = int(steps)
        path = engine.generate(prompt.strip(), int(seed or 0), steps, float(guidance), progress)
        return str(path), f"generated: {prompt.strip()[:60]} (seed {int(seed or 0)})"

    @handled
    @admitted(engine)
    def motion(video: str, prompt: str, name: str, window_start: str = "", x0: float | None = None,
               y0: float | None = None, x1: float | None = None, y1: float | None = None,
               box_frame: float | None = None, frames_from: float | None = None, frames_to: float | None = None,
               isolate: bool = False, request: gr.Request = None, progress=gr.Progress()) -> tuple:
        """Decode the query's window, estimate its motion; returns overlays, magnitude plot, latent mask,
        warnings, stats (with the window and the selection) and status. Optional selection: a box x0, y0, x1, y1
        (pixels of the window as read; ``box_frame``: the frame it is drawn on, to follow the object), frames
        ``frames_from`` … ``frames_to`` − 1 of the window, ``isolate``; the overlays then show W ⊙ S."""
        region = (x0, y0, x1, y1, box_frame, frames_from, frames_to, isolate)
        query, prepared = _make_query(engine, video, prompt, name, window_start, progress, region)
        progress(0.9, desc="rendering overlays")
        return _motion_outputs(engine, query, prepared)

    @handled
    def detector(query: Query | None, progress=gr.Progress()) -> tuple:
        """For a world with planted artifacts: the detector's reading of the query's window (else hidden)."""
        if query is None or not engine.planted:
            return gr.Column(visible=False), "", None
        prepared = engine.prepare(query.video, query.window["start"], progress)  # cached, or decoded again
        return gr.Column(visible=True), *pl.detector_readout(prepared.clip.frames)

    def picker_frame(query: Query, first: float | None, progress) -> tuple[PreparedClip, int, int]:
        """The query's prepared window and the frame to draw a box on: the model's frame sampled at (or after)
        the range's first frame, as (clip, model frame, frame of the window as read)."""
        clip = engine.prepare(query.video, query.window["start"], progress).clip  # cached, or decoded again
        g = engine.adapter.geometry
        sampled, _ = resample_indices(clip.source["frames"], clip.source["fps"], g.num_frames, g.fps)
        shown = min(int(np.searchsorted(sampled, first or 0)), len(sampled) - 1)
        return clip, shown, int(sampled[shown])

    def picker_view(query: Query, first: float | None, picked: dict | None, progress) -> gr.Image:
        """The frame to draw a box on, enlarged, with what was clicked on it so far."""
        clip, shown, frame = picker_frame(query, first, progress)
        picked = picked or {}
        path = engine.media.image(f"query/{query.key}", f"picker_{shown}_{ud.text_digest(json.dumps(picked))}",
                                  lambda: ud.frame_picker(clip.frames[shown], picked.get("corner"), picked.get("rect")))
        return gr.Image(str(path), label=f"frame {frame} of the window: click two corners of a box")

    @handled
    def selection_view(query: Query | None, frames_from: float | None, frames_to: float | None,
                       picked: dict | None, x0: float | None, progress=gr.Progress()) -> tuple:
        """After a motion run: the frame to draw on (with the box clicked on it, while the box is still the
        selection), and the range sliders spanning the window's frames."""
        if query is None:
            return gr.skip(), gr.skip(), gr.skip(), None
        picked = picked if x0 is not None else None
        count = query.stats["query_size"]["frames"]
        first = _slider_value(frames_from, 0, count - 1)
        stop = _slider_value(frames_to, count, count)
        return (picker_view(query, first, picked, progress), gr.Slider(maximum=count - 1, value=first),
                gr.Slider(maximum=count, value=stop), picked)

    @handled
    def pick(query: Query | None, frames_from: float | None, picked: dict | None, follow: bool, evt: gr.SelectData,
             progress=gr.Progress()) -> tuple:
        """A click on the frame: the first marks a corner, the second closes the box and fills x0, y0, x1, y1 with
        it in pixels of the window as read, and the box's frame with the frame shown when the box is to follow the
        object from there (else it is cleared: the box stays where it is drawn)."""
        if query is None:
            raise refuse("Run Motive on a query first: the frame to draw on is the query's.", "No query")
        g = engine.adapter.geometry
        scale = ud.picker_scale(g.height, g.width)
        x, y = (min(max(float(v) / scale, 0.0), size - 1e-3) for v, size in zip(evt.index, (g.width, g.height)))
        if not picked or "corner" not in picked:
            picked = {"corner": [x, y]}
            return (picker_view(query, frames_from, picked, progress), picked, *[gr.skip()] * 5)
        cx, cy = picked["corner"]
        rect = [int(min(x, cx)), int(min(y, cy)), int(max(x, cx)) + 1, int(max(y, cy)) + 1]  # the clicked pixels
        shown = picker_frame(query, frames_from, progress)[1] if follow else None
        box = box_from_model(*rect, query.stats["query_size"], g, model_frame=shown)
        picked = {"rect": rect}
        return (picker_view(query, frames_from, picked, progress), picked,
                *[round(v, 2) for v in (box.x0, box.y0, box.x1, box.y1)], box.frame)

    @handled
    def range_from(first: float, query: Query | None, picked: dict | None, progress=gr.Progress()) -> tuple:
        """The "from frame" slider: its number (empty at 0: no limit) and the frame to draw on."""
        first = int(first)
        return (first or None), (gr.skip() if query is None else picker_view(query, first, picked, progress))

    def range_to(stop: float, query: Query | None) -> int | None:
        """The "to frame" slider: its number (empty at the window's end: no limit)."""
        count = None if query is None else query.stats["query_size"]["frames"]
        return None if count is not None and int(stop) >= count else int(stop)

    @handled
    @admitted(engine)
    def when(count: float, query: Query | None, request: gr.Request = None, progress=gr.Progress()) -> dict:
        """The "when" view of the attributed query: its window split into ``count`` consecutive stretches, each
        ranked on its own (inside the query's box, if one is selected); one column per stretch, its top clips."""
        query = _need_scores(query)
        clip = engine.prepare(query.video, query.window["start"], progress).clip
        boxes = query.region.boxes if query.region is not None else ()
        isolate = query.region is not None and query.region.isolate
        progress(0.3, desc=f"one gradient per stretch ({int(count)})")
        with engine.lock:
            segments = gpu_segments(engine.attributor, clip, int(count), query.prompt, query.top, boxes, isolate)
        return ud.segment_columns(segments)

    @handled
    @admitted(engine)
    def attribute(video: str, prompt: str, name: str, top: float, with_nomask: bool,
                  window_start: str = "", x0: float | None = None, y0: float | None = None,
                  x1: float | None = None, y1: float | None = None, box_frame: float | None = None,
                  frames_from: float | None = None, frames_to: float | None = None, isolate: bool = False,
                  request: gr.Request = None, progress=gr.Progress()) -> tuple:
        """Rank every training clip by influence on the query's window (decoding, motion, gradient,
        projection, ranking), or on the selected part of it (same optional selection as ``motion``)."""
        region = (x0, y0, x1, y1, box_frame, frames_from, frames_to, isolate)
        query, prepared = _make_query(engine, video, prompt, name, window_start, progress, region)
        if not prepared.clip.latent_mask.any() or query.stats.get("is_near_static"):
            elsewhere = engine.still_window_message(query)
            if elsewhere:
                raise refuse(elsewhere, "Motion outside the window")
        require_motion(engine.restricted(prepared).latent_mask, engine.attributor.featurizer.settings.use_mask)
        progress(0.4, desc="gradient → projection (motion-weighted loss)")
        vector, timings = engine.vector(prepared, query.prompt, masked=True)
        progress(0.8, desc="ranking")
        start = time.perf_counter()
        query.scores = engine.attributor.index.scores(vector)
        query.timings.update(timings, ranking=time.perf_counter() - start)
        query.top = max(1, min(int(top), len(query.scores)))
        if with_nomask and engine.nomask is not None:
            progress(0.85, desc="gradient → projection without the mask")
            query.nomask_scores = engine.nomask.index.scores(engine.vector(prepared, query.prompt, False)[0])
        progress(0.9, desc="rendering candidates")
        return _attribution_outputs(engine, query)

    @handled
    def rerank(top: float, query: Query | None) -> tuple:
        """Show another top-K for the current query (no recomputation)."""
        query = _need_scores(query)
        query.top = max(1, min(int(top), len(query.scores)))
        return _attribution_outputs(engine, query)

    @handled
    def compare(clip_id: str, query: Query | None) -> tuple:
        """Play one shown candidate (by clip id) next to the query, both with their motion masks."""
        query = _need_scores(query)
        positives, negatives = _entries(engine, query.scores, query.top)
        found = _find(positives, negatives, clip_id)
        if found is None:
            raise refuse(f"{clip_id!r} is not among the shown top-{query.top} clips.", "Unknown clip")
        entry, rank, positive = found
        return engine.comparison(query, entry, rank, positive), _candidate_md(entry, rank, positive)

    def select(positive: bool):
        @handled
        def on_select(query: Query | None, evt: gr.SelectData) -> tuple:
            query = _need_scores(query)
            positives, negatives = _entries(engine, query.scores, query.top)
            entries = positives if positive else negatives
            entry, rank = entries[evt.index], evt.index + 1
            return (engine.comparison(query, entry, rank, positive), _candidate_md(entry, rank, positive),
                    gr.Dropdown(value=entry["id"]))
        return on_select

    @handled
    @admitted(engine)
    def compare_nomask(enabled: bool, query: Query | None, request: gr.Request = None,
                       progress=gr.Progress()) -> tuple:
        """Rank with the no-mask index too and show both rankings and their overlap."""
        if not enabled:
            return "", [], query
        if engine.nomask is None:
            raise refuse("No no-mask index is loaded: start the app with --nomask-index DIR.", "No index")
        query = _need_scores(query)
        if query.nomask_scores is None:
            prepared = engine.prepare(query.video, query.window["start"], progress)  # cached, or decoded again
            prepared = dataclasses.replace(prepared, selection=query.region)
            progress(0.3, desc="gradient → projection without the mask")
            vector, _ = engine.vector(prepared, query.prompt, masked=False)
            progress(0.9, desc="ranking")
            query.nomask_scores = engine.nomask.index.scores(vector)
        return (*_nomask_outputs(engine, query), query)

    @handled
    def add_query(name: str, query: Query | None, queries: list[dict]) -> tuple:
        """Add the current attributed query to this session's curation list."""
        if query is None or query.scores is None:
            raise refuse("Attribute a query first (tab 1, “Run Motive”), then add it here: there is nothing to add "
                         "yet.", "No attributed query")
        queries = list(queries or [])
        for row, listed in enumerate(queries, start=1):
            if listed["key"] == query.key and listed["prompt"] == query.prompt:
                raise refuse(f"This query (same clip, window and prompt) is already row {row} of the list, "
                             f"“{listed['name']}”: it would vote twice.", "Already listed")
        engine.media.video(f"query/{query.key}", "triptych", lambda: ud.query_triptych(query.visual), engine.fps)
        label = (name or "").strip() or query.name
        queries.append(_listed(engine, label, query.prompt, query.window, query.key, query.scores,
                               query.stats["motion_max"], query.region.to_dict() if query.region else None))
        return _query_rows(queries), queries, _list_count(queries)

    @handled
    def remove_query(row: float | None, queries: list[dict]) -> tuple:
        """Remove one row (1-based) from this session's curation list."""
        queries = list(queries or [])
        if row is None or not 1 <= int(row) <= len(queries):
            raise refuse(f"Give a row number between 1 and {len(queries)} to remove." if queries else
                         "The curation list is empty: there is no row to remove.", "No such row")
        removed = queries.pop(int(row) - 1)
        return _query_rows(queries), queries, f"Removed “{md_text(removed['name'])}”. {_list_count(queries)}"

    @handled
    def clear_queries() -> tuple:
        """Empty this session's curation list."""
        return _query_rows([]), [], "The curation list is empty."

    @handled
    def vote(fraction: float, percentile: float, queries: list[dict], progress=gr.Progress()) -> tuple:
        """Majority vote over the listed queries; returns selection, overlap heat-map and CSV / JSONL files
        (each stamped with the model, index, prompts, fraction and percentile that produced it)."""
        if not queries:
            raise refuse("The curation list is empty: attribute a query and press “Add current query”.",
                         "Nothing to vote on")
        progress(0.2, desc="voting")
        names = ud.unique_names([q["name"] for q in queries])
        selection = majority_vote(np.stack([q["scores"] for q in queries]), float(percentile), float(fraction))
        progress(0.6, desc="writing files")
        folder = engine.media.export_dir()
        csv_path, jsonl_path = folder / "motive_selection.csv", folder / "motive_selection.jsonl"
        write_selection_csv(csv_path, selection, engine.clips, names)
        write_selection_jsonl(jsonl_path, selection, engine.clips, names)
        settings = rv.selection_settings(_identity(engine), queries, float(fraction), float(percentile))
        rv.stamp_csv(csv_path, settings)
        rv.stamp_jsonl(jsonl_path, settings)
        chosen = set(selection.indices.tolist())
        others = rv.write_clip_list(folder / "motive_other_clips.csv", engine.clips,
                                    [n for n in range(len(engine.clips)) if n not in chosen], settings,
                                    "every clip not in the selection")
        voted = int((selection.votes > 0).sum())
        noun = "query" if len(queries) == 1 else "queries"
        md = (f"Kept **{len(selection.indices)}** of {len(engine.clips)} clips ({fraction:.0%}) from "
              f"**{len(queries)}** {noun} at the {percentile:g}th percentile; {voted} clips got at least one vote. "
              f"File paths are relative to the clip folder "
              f"`{shown_path(engine.attributor.index.clip_path({'file': '.'}), REPO)}`. The selection is the keep "
              "list when curating data for a motion, and the removal list when tracing a defect to its training "
              "clips; the third file lists every other clip (the opposite list).")
        rows = ud.selection_rows(selection, engine.clips)
        kept = {"rows": rows, "headers": ud.SELECTION_HEADERS, "fraction": float(fraction),
                "percentile": float(percentile)}
        return (rows, ud.overlap_figure(selection.per_query_selected, names), md, str(csv_path), str(jsonl_path),
                str(others), kept)

    @handled
    def save_review(notes: str, fraction: float, percentile: float, prompt: str, name: str,
                    window_start: str, video: str | None, queries: list[dict], selected: dict | None,
                    x0: float | None = None, y0: float | None = None, x1: float | None = None,
                    y1: float | None = None, box_frame: float | None = None, frames_from: float | None = None,
                    frames_to: float | None = None, isolate: bool = False, request: gr.Request = None) -> tuple:
        """Save this session's review on the server; returns the review file and a link that reopens it. The
        current query's selection fields (box, frames, isolate) are saved with its other inputs."""
        folder = engine.media.root / "reviews"
        review_id = rv.new_review_id()
        current = None
        if video and Path(video).is_file():
            current = f"{review_id}{Path(video).suffix.lower()}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / current).write_bytes(Path(video).read_bytes())
        review = {"index": _identity(engine), "notes": notes or "", "vote": {"fraction": fraction,
                                                                              "percentile": percentile},
                  "current": {"prompt": prompt or "", "name": name or "", "window_start": window_start,
                              "video": current,
                              "region": dict(zip(rv.REGION_FIELDS, (x0, y0, x1, y1, box_frame, frames_from,
                                                                    frames_to, bool(isolate))))},
                  "queries": [rv.query_record(q["name"], q["prompt"], q["window"], q["key"], q["scores"],
                                              {"motion_max": q["motion_max"], "region": q.get("region")})
                              for q in queries or []],
                  "selection": selected}
        _, path = rv.save_review(folder, review, review_id)
        link = f"{_page_url(request)}?review={review_id}"
        md = (f"Saved review with {len(queries or [])} queries. **Link:** [{link}]({link}) (anyone with the link can "
              "open it on this server) · the file below reopens it anywhere the same index is loaded.")
        return str(path), md

    def restore(review: dict, where: str) -> tuple:
        queries = [_listed(engine, q["name"], q.get("prompt", ""), q.get("window"), q.get("key", ""),
                           np.asarray(q["scores"], np.float32), float(q.get("motion_max", float("nan"))),
                           q.get("region"))
                   for q in review["queries"]]
        current = review.get("current") or {}
        region = current.get("region") or {}
        video = current.get("video")
        video_path = engine.media.root / "reviews" / video if video and rv.REVIEW_ID.match(Path(video).stem) \
            else None
        vote_settings = review.get("vote") or {}
        md = (f"Reopened the review from {where}: {len(queries)} queries in the curation list, notes and settings "
              "restored" + ("; the current query clip is back in tab 1: press Run Motive to show its results again."
                            if video_path and video_path.is_file() else "."))
        return (_query_rows(queries), queries, review.get("notes", ""),
                vote_settings.get("fraction", 0.1), vote_settings.get("percentile", 90.0),
                current.get("prompt", ""), current.get("name", ""), current.get("window_start") or "",
                str(video_path) if video_path and video_path.is_file() else None, md,
                *[region.get(k) for k in rv.REGION_FIELDS[:-1]], bool(region.get("isolate")))

    @handled
    def open_review(file: str | None) -> tuple:
        """Reopen a saved review file: curation list with scores, notes, vote settings, current query inputs."""
        if not file:
            raise refuse("Choose a review .json file to open.", "No file")
        return restore(rv.load_review(file, _identity(engine)), Path(file).name)

    @handled
    def open_link(request: gr.Request) -> tuple:
        review_id = (request.query_params or {}).get("review") if request else None
        if not review_id:
            return (gr.update(),) * (10 + len(rv.REGION_FIELDS))
        path = rv.review_path(engine.media.root / "reviews", review_id)
        return restore(rv.load_review(path, _identity(engine)), "its link")

    @handled
    def report(notes: str, queries: list[dict], selected: dict | None, progress=gr.Progress()) -> tuple:
        """A self-contained HTML report of this review (clips, masks, rankings, settings embedded)."""
        if not queries:
            raise refuse("The curation list is empty: add at least one attributed query before exporting a report.",
                         "Nothing to report")
        entries = []
        for i, q in enumerate(queries):
            progress(i / len(queries), desc=f"rendering query {i + 1} of {len(queries)}")
            ranked = engine.attributor.index.rank(np.asarray(q["scores"]), 5)
            entries.append({"name": q["name"], "prompt": q["prompt"],
                            "conditioning_note": conditioning_note(engine.conditioning, q["prompt"]),
                            "window": _where_text(q),
                            "triptych": engine.media.path(f"query/{q['key']}", "triptych.mp4"),
                            "positives": ranked["positives"], "negatives": ranked["negatives"],
                            "thumbs": {e["id"]: engine.thumbnail(e)
                                       for e in ranked["positives"] + ranked["negatives"]}})
        settings = {"model": _identity(engine)["model"], "index": _identity(engine)["folder"],
                    "index_clips": len(engine.clips), "index_settings": _identity(engine)["settings"]}
        text = rv.html_report("Motive Studio review", settings, entries, selected, notes or "")
        path = rv.write_report(engine.media.export_dir() / "motive_review.html", text)
        size = path.stat().st_size / 1e6
        return str(path), f"Report ready ({size:.1f} MB, {len(queries)} queries): download it below."

    @handled
    def switch_world(name: str, request: gr.Request) -> tuple:
        """This page's world: model, indexes and examples; the query and the curation list start empty (their
        scores belong to the other index)."""
        chosen = engine.choose(getattr(request, "session_hash", None), name)
        note = (f"Now in the **{WORLD_LABELS.get(name, name)}** world ({len(chosen.clips)} training clips): run a "
                "query from its examples or your own clip.")
        return (_header(chosen), *[gr.Column(visible=world == name) for world in ui.examples], None, [],
                _query_rows([]), _list_count([]), note, gr.Column(visible=False), None, None, None,
                gr.Slider(maximum=_top_k(chosen)[0], value=_top_k(chosen)[1]))

    if ui.world is not None:
        ui.world.input(switch_world, ui.world, [ui.header, *ui.examples.values(), ui.current, ui.queries,
                                                ui.query_table, ui.vote_md, ui.status, ui.planted_box, ui.picker,
                                                ui.picked, ui.when_table, ui.top],
                       api_visibility="private", **QUICK)
    _connect(ui, engine, dict(info=info, generate=generate, motion=motion, detector=detector,
                              selection_view=selection_view, pick=pick, range_from=range_from, range_to=range_to,
                              when=when, attribute=attribute, rerank=rerank, compare=compare, select=select, compare_nomask=compare_nomask, add_query=add_query,
                              clear_queries=clear_queries, vote=vote, remove_query=remove_query,
                              save_review=save_review, open_review=open_review, open_link=open_link, report=report))


def _identity(engine: Engine) -> dict:
    index = engine.attributor.index
    return rv.index_identity(index.clips, index.config, index.folder.name)


def _listed(engine: Engine, name: str, prompt: str, window: dict | None, key: str, scores: np.ndarray,
            motion_max: float, region: dict | None = None) -> dict:
    """One curation-list entry (session state); ``region``: the query's selection (QuerySelection.to_dict), if
    its scores were computed for a box or frame range."""
    return {"name": name, "prompt": prompt, "window": window, "key": key, "scores": np.asarray(scores).copy(),
            "top": engine.clips[int(np.argmax(scores))]["id"], "motion_max": motion_max, "region": region}


def _where_text(listed: dict) -> str:
    """A listed query's window, and its selection when it has one."""
    where = _window_text(listed["window"]) if listed.get("window") else ""
    region = listed.get("region")
    return where + (f" · selection {QuerySelection.from_dict(region).describe()}" if region else "")


def _list_count(queries: list[dict]) -> str:
    count = len(queries)
    return f"{count} {'query' if count == 1 else 'queries'} in the curation list."


def _page_url(request: gr.Request | None) -> str:
    """The app's address as the browser used it (for review links), without query string."""
    referer = request.headers.get("referer") if request is not None else None
    url = referer or (str(request.request.base_url) if request is not None and request.request else "")
    return url.split("?")[0]


def _query_rows(queries: list[dict]) -> list[list]:
    return [[i, q["name"], q["prompt"], _where_text(q), q["top"],
             f"{q['motion_max']:.2f}"] for i, q in enumerate(queries, start=1)]


def _slider_follows(value: float | None, query: Query | None, end: bool) -> gr.Slider:
    """A range slider moved to a typed frame number (an empty field: the window's first frame, or its end)."""
    count = query.stats["query_size"]["frames"] if query is not None else None
    if count is None:
        return gr.skip()
    return gr.Slider(value=_slider_value(value, count if end else 0, count if end else count - 1))


def _connect(ui: UI, engine: Engine, fn: dict) -> None:
    attribution_outputs = [ui.pos, ui.neg, ui.hist, ui.scatter, ui.summary, ui.candidate, ui.compare,
                           ui.candidate_md, ui.nomask_md, ui.nomask_table, ui.result, ui.current, ui.status]
    motion_outputs = [ui.triptych, ui.motion_plot, ui.latent, ui.warnings, ui.stats, ui.current, ui.status]
    region = [*ui.box, ui.box_frame, ui.frames_from, ui.frames_to, ui.isolate]
    gr.api(fn["info"], api_name="info", queue=False)
    ui.generate.click(fn["generate"], [ui.prompt, ui.seed, ui.steps, ui.guidance], [ui.video, ui.name],
                      api_name="generate", **HEAVY)
    # a new clip starts without the previous clip's prompt (else it would silently become this clip's caption)
    # … and without its selection (pixels and frames of another clip)
    ui.video.upload(lambda v: (Path(v).stem if v else "", "", "", *[None] * 7, False, None, None), ui.video,
                    [ui.name, ui.prompt, ui.window_start, *region, ui.picker, ui.picked], api_visibility="private",
                    **LIGHT)
    near_run = [ui.run_progress, ui.status]  # progress, queue position and ETA show under the button
    detector_outputs = [ui.planted_box, ui.planted_md, ui.planted_plot]
    run = ui.run.click(fn["motion"], [ui.video, ui.prompt, ui.name, ui.window_start, *region], motion_outputs,
                       api_name="motion", show_progress_on=near_run, **HEAVY)
    run.success(fn["detector"], ui.current, detector_outputs, api_visibility="private", **QUICK)
    selection_view = ([ui.current, ui.frames_from, ui.frames_to, ui.picked, ui.box[0]],
                      [ui.picker, ui.range_from, ui.range_to, ui.picked])
    run.success(fn["selection_view"], *selection_view, api_visibility="private", **QUICK)
    run = run.success(lambda: gr.Tabs(selected="motion"), None, ui.tabs, api_visibility="private", **LIGHT)
    attribute_inputs = [ui.video, ui.prompt, ui.name, ui.top, ui.compare_nomask, ui.window_start, *region]
    run.success(fn["attribute"], attribute_inputs, attribution_outputs, api_name="attribute",
                show_progress_on=near_run, **HEAVY)
    near_selection = [ui.warnings, ui.status]
    again = ui.attribute_selection.click(fn["motion"], [ui.video, ui.prompt, ui.name, ui.window_start, *region],
                                         motion_outputs, api_visibility="private", show_progress_on=near_selection,
                                         **HEAVY)
    again.success(fn["detector"], ui.current, detector_outputs, api_visibility="private", **QUICK)
    again.success(fn["selection_view"], *selection_view, api_visibility="private", **QUICK)
    ui.picker.select(fn["pick"], [ui.current, ui.frames_from, ui.picked, ui.follow],
                     [ui.picker, ui.picked, *ui.box, ui.box_frame],
                     api_visibility="private", **QUICK)
    ui.range_from.input(fn["range_from"], [ui.range_from, ui.current, ui.picked], [ui.frames_from, ui.picker],
                        api_visibility="private", **QUICK)
    ui.range_to.input(fn["range_to"], [ui.range_to, ui.current], ui.frames_to, api_visibility="private", **LIGHT)
    for number, slider, end in ((ui.frames_from, ui.range_from, False), (ui.frames_to, ui.range_to, True)):
        number.input(functools.partial(_slider_follows, end=end), [number, ui.current], slider,
                     api_visibility="private", **LIGHT)
    again.success(fn["attribute"], attribute_inputs, attribution_outputs, api_visibility="private",
                  show_progress_on=near_selection, **HEAVY)
    ui.clear_selection.click(lambda: (*[None] * 7, False), None, region, api_visibility="private", **LIGHT).then(
        fn["selection_view"], *selection_view, api_visibility="private", **QUICK)
    ui.when_run.click(fn["when"], [ui.when_count, ui.current], ui.when_table, api_name="when",
                      show_progress_on=[ui.when_table], **HEAVY)
    ui.top.release(fn["rerank"], [ui.top, ui.current], attribution_outputs, api_name="rerank", **HEAVY)
    ui.candidate.input(fn["compare"], [ui.candidate, ui.current], [ui.compare, ui.candidate_md], api_name="compare",
                       **HEAVY)
    for gallery, positive in ((ui.pos, True), (ui.neg, False)):
        gallery.select(fn["select"](positive), ui.current, [ui.compare, ui.candidate_md, ui.candidate],
                       api_visibility="private", **HEAVY)
    ui.compare_nomask.change(lambda on: gr.Column(visible=bool(on)), ui.compare_nomask, ui.nomask_box,
                             api_visibility="private", **LIGHT)
    ui.compare_nomask.input(fn["compare_nomask"], [ui.compare_nomask, ui.current],
                            [ui.nomask_md, ui.nomask_table, ui.current], api_name="compare_nomask", **HEAVY)
    ui.add.click(fn["add_query"], [ui.name, ui.current, ui.queries], [ui.query_table, ui.queries, ui.vote_md],
                 api_name="add_query", **QUICK)
    ui.clear.click(fn["clear_queries"], None, [ui.query_table, ui.queries, ui.vote_md], api_name="clear_queries",
                   **QUICK)
    ui.vote.click(fn["vote"], [ui.fraction, ui.percentile, ui.queries],
                  [ui.selection, ui.overlap, ui.vote_md, ui.csv, ui.jsonl, ui.others, ui.selected], api_name="vote",
                  show_progress_on=[ui.vote_md], **HEAVY)
    ui.remove.click(fn["remove_query"], [ui.remove_row, ui.queries], [ui.query_table, ui.queries, ui.vote_md],
                    api_name="remove_query", **QUICK)
    ui.save.click(fn["save_review"], [ui.notes, ui.fraction, ui.percentile, ui.prompt, ui.name, ui.window_start,
                                      ui.video, ui.queries, ui.selected, *region], [ui.review_file, ui.review_md],
                  api_name="save_review", **QUICK)
    restored = [ui.query_table, ui.queries, ui.notes, ui.fraction, ui.percentile, ui.prompt, ui.name,
                ui.window_start, ui.video, ui.review_md, *region]
    ui.open_file.upload(fn["open_review"], ui.open_file, restored, api_name="open_review", **QUICK)
    ui.report.click(fn["report"], [ui.notes, ui.queries, ui.selected], [ui.report_file, ui.review_md],
                    api_name="report", **HEAVY)
    ui.demo.load(fn["open_link"], None, restored, api_visibility="private", **QUICK)
    # empty selection fields show empty (gradio draws an empty number as 0 until it is set)
    ui.demo.load(lambda: [None] * 7, None, region[:-1], api_visibility="private", **LIGHT)


# ------------------------------------------------------------------------------------------ launching


def launch(demo: gr.Blocks, port: int | None = None, host: str | None = None, **kwargs):
    """Queue and launch with the app's settings (also used by tests and the screenshot script)."""
    engine: Engine = demo.motive_engine
    engines = demo.motive_engines.values()
    roots = [*{e.media.root for e in engines}, *sorted({x.file.parent for e in engines for x in e.examples})]
    guard = Middleware(FileGuard, allowed=functools.partial(_served, demo, roots))
    app_kwargs = {**kwargs.pop("app_kwargs", {}), "middleware": [guard]}
    demo.queue(default_concurrency_limit=2, max_size=QUEUE_SIZE)
    if not hasattr(demo, "motive_cleaner"):
        demo.motive_cleaner = FolderCleaner(_folder_limits(list(engines))).start()
    return demo.launch(server_name=host, server_port=port, allowed_paths=[str(r) for r in roots],
                       max_file_size=f"{engine.max_upload_mb}mb", css=CSS, theme=gr.themes.Soft(),
                       footer_links=["api", "settings"],
                       app_kwargs=app_kwargs, **kwargs)


def _folder_limits(engines: list[Engine]) -> list[FolderLimit]:
    """Size caps and ages for gradio's temp folder (when it is this app's own), each world's rendered media and
    reviews."""
    limits = [limit for engine in engines for limit in (
        FolderLimit(engine.media.root, *MEDIA_LIMIT, skip=("reviews",)),
        FolderLimit(engine.media.root / "reviews", *REVIEWS_LIMIT))]
    uploads = Path(os.environ.get("GRADIO_TEMP_DIR", ""))
    if uploads.resolve() == UPLOADS.resolve():  # never prune a temp folder shared with other apps
        limits.append(FolderLimit(uploads, *UPLOADS_LIMIT))
    return limits


def _served(demo: gr.Blocks, roots: list[Path], path: Path) -> bool:
    """Files the app means to serve: rendered media and examples, and the uploads and outputs this app's
    sessions created (gradio's temp folder also holds other files, which stay private)."""
    if any(is_inside(path, root) for root in roots):
        return True
    names = {str(path), str(path.resolve())}
    if any(not names.isdisjoint(files) for files in list(demo.temp_file_sets)):
        return True
    return is_inside(path, Path(gradio_utils.get_upload_folder())) and _gradio_copy(str(path.resolve()))


@functools.lru_cache(maxsize=4096)
def _content_hash(path: str, size: int, mtime_ns: int) -> str:
    return processing_utils.hash_file(path)


def _gradio_copy(path: str) -> bool:
    """Whether gradio itself put this file in its temp folder for a session: it names each copy's folder by
    a secret-seeded hash of the content (outputs held in per-session component copies are in no set)."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    return Path(path).parent.name == _content_hash(path, info.st_size, info.st_mtime_ns)


# the shipped worlds: (model, index, no-mask index, examples); the artifact world plants motion defects
WORLD_LABELS = {"clean": "clean demo", "artifact": "artifact (planted jitter/stutter)"}
WORLDS = {"clean": (DEFAULT_MODEL, DEFAULT_INDEX, DEFAULT_NOMASK, DEFAULT_EXAMPLES),
          "artifact": (REPO / "precomputed" / "artifact" / "model", REPO / "precomputed" / "artifact" / "index-motion",
                       REPO / "precomputed" / "artifact" / "index-nomask", REPO / "assets" / "examples-artifact")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; --model/--index/--examples default to the chosen --world's."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", choices=sorted(WORLDS), default="artifact",
                   help="shipped world the app opens on (the other is offered in its world menu): the artifact world "
                        "(clips with planted motion defects, the default), or the clean demo")
    p.add_argument("--model", default=None, help="demo or diffusers Wan model folder (default: the world's)")
    p.add_argument("--index", default=None, help="attribution index folder, Motive mask (default: the world's)")
    p.add_argument("--nomask-index", default=None,
                   help="no-mask index for the comparison switch (default: the world's, with the world's index)")
    p.add_argument("--examples", default=None, help="folder of example queries (default: the world's)")
    p.add_argument("--cache-dir", default=None, help="where rendered clips are cached (default: system temp)")
    p.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    p.add_argument("--max-seconds", type=float, default=60.0, help="longest query clip accepted")
    p.add_argument("--max-upload-mb", type=int, default=MAX_UPLOAD_MB, help="largest upload accepted (MB)")
    p.add_argument("--port", type=int, default=None, help="default 7860 or $GRADIO_SERVER_PORT")
    p.add_argument("--host", default=None, help="default 127.0.0.1 or $GRADIO_SERVER_NAME (0.0.0.0 on Spaces)")
    args = p.parse_args(argv)
    model, index, nomask, examples = WORLDS[args.world]
    world_index = args.index is None or Path(args.index).resolve() == index.resolve()
    chosen = model if args.model is None else DEFAULT_MODEL if args.model == "demo" else Path(args.model)
    world_model = chosen.resolve() == model.resolve()  # the world's examples were made by its own model only
    args.model, args.index = args.model or str(model), args.index or str(index)
    args.nomask_index = args.nomask_index or (str(nomask) if world_index and nomask.is_dir() else None)
    args.examples = args.examples or (str(examples) if world_model and examples.is_dir() else None)
    args.world_index = world_index
    return args


def _other_worlds(args: argparse.Namespace) -> dict[str, tuple]:
    """The shipped worlds a session may switch to: those built in precomputed/, when the app runs a shipped
    world's own index (not the user's model and index)."""
    if not args.world_index:
        return {}
    return {name: (model, index, nomask if nomask.is_dir() else None, examples if examples.is_dir() else None)
            for name, (model, index, nomask, examples) in WORLDS.items()
            if name != args.world and model.is_dir() and index.is_dir()}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        demo = build_app(args.model, args.index, args.nomask_index, args.examples, args.cache_dir, args.device,
                         args.max_seconds, args.max_upload_mb, args.world, _other_worlds(args))
    except MotiveError as err:
        print(f"motive-studio: {err}", file=sys.stderr)
        if args.world_index:
            stage = " --stage artifact" if args.world == "artifact" else ""
            print(f"The {args.world} world lives in precomputed/; rebuild it with `python -m motive_core demo{stage}`, "
                  "or pass --model DIR --index DIR.", file=sys.stderr)
        return 2
    log.info("loaded in %.1f s", time.perf_counter() - start)
    launch(demo, port=args.port, host=args.host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
