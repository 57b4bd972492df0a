"""``python -m motive_core <command>``: masks, index builds, queries, curation and generation from a shell.

Every command exits non-zero with a one-line reason on bad input (a traceback only with ``--debug``);
``--json`` prints exactly one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from motive_core.config import GENERATION
from motive_core.errors import MotiveError

EXIT_BAD_INPUT = 2
ENSEMBLE_HELP = ("index folder; repeat it with indexes of the same clips built with other models to average their "
                 "scores (a model ensemble)")
MODEL_HELP = "default: the model the index was built with; with several --index, one --model for each, in order"


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """``--preset`` plus one flag per ``AttributionSettings`` field, generated from the field (its type,
    choices and help); a flag left out keeps the preset's value."""
    from motive_core.config import PRESETS, AttributionSettings

    parser.add_argument("--preset", default="paper", choices=PRESETS,
                        help="paper: Motive as published (captions, the paper's loss); motion: null prompt and "
                             "temporal-difference loss, the demo's default (the flags below override it)")
    for item in fields(AttributionSettings):
        flag = "--" + (item.metadata["flag"] or item.name).replace("_", "-")
        values = {name: getattr(preset, item.name) for name, preset in PRESETS.items()}
        shown = (f"default: {item.default}" if len(set(values.values())) == 1
                 else ", ".join(f"{name}: {value}" for name, value in values.items()))
        help_text = f"{item.metadata['help']} ({shown})"
        if isinstance(item.default, bool):
            parser.add_argument(flag, dest=item.name, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
        else:
            parser.add_argument(flag, dest=item.name, type=type(item.default), default=None,
                                choices=item.metadata["choices"], help=help_text)


def settings_from_args(args: argparse.Namespace):
    """The chosen preset with every given settings flag applied."""
    from motive_core.config import PRESETS, AttributionSettings

    given = {item.name: getattr(args, item.name) for item in fields(AttributionSettings)
             if getattr(args, item.name) is not None}
    return replace(PRESETS[args.preset], **given)


def _add_conditioning_check(parser: argparse.ArgumentParser) -> None:
    from motive_core.config import CONDITIONINGS

    parser.add_argument("--conditioning", default=None, choices=CONDITIONINGS,
                        help="refuse unless the index was built with this conditioning (default: the index's)")


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: CUDA when available)")
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                        help="model dtype (default: bf16 on CUDA, fp32 on CPU)")


def _tracker_options(args: argparse.Namespace) -> dict:
    """AllTracker's model, device and run size from the command line (unset: its environment defaults)."""
    if args.tracker != "alltracker":
        return {}
    options = {"model": args.tracker_model, "device": args.tracker_device, "image_size": args.tracker_size}
    return {key: value for key, value in options.items() if value is not None}


def cmd_mask(args: argparse.Namespace) -> dict:
    from motive_core.mask import grey_fade, heatmap, motion_mask, motion_stats
    from motive_core.motion import get_estimator
    from motive_core.video import read_video, resample_frames, write_mp4

    video = read_video(args.video)
    frames = video.frames
    fps = video.fps
    if args.frames:
        fps = args.fps or fps
        frames = resample_frames(frames, video.fps, args.frames, fps)
    estimator = get_estimator(args.tracker, **_tracker_options(args))
    field = estimator.estimate(frames)
    mask = motion_mask(field.magnitude)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "mask.npy", mask.astype(np.float32))
    np.save(out / "magnitude.npy", field.magnitude.astype(np.float32))
    files = {"mask": str(out / "mask.npy"), "magnitude": str(out / "magnitude.npy"),
             "overlay": str(write_mp4(grey_fade(frames, mask), out / "overlay.mp4", fps)),
             "heatmap": str(write_mp4(heatmap(frames, mask), out / "heatmap.mp4", fps))}
    if args.model:
        from motive_core.featurize import prepare_clip
        from motive_core.models import load_geometry

        latent = prepare_clip(video, load_geometry(args.model), estimator).latent_mask
        np.save(out / "latent_mask.npy", latent.astype(np.float32))
        files["latent_mask"] = str(out / "latent_mask.npy")
    stats = motion_stats(field).to_dict()
    return {**{k: stats[k] for k in ("frames", "height", "width", "motion_mean", "motion_max", "camera_motion_score")},
            "is_near_static": stats["is_near_static"], "is_camera_motion": stats["is_camera_motion"], "files": files}


def _progress_bar():
    """A tqdm bar per build stage, with clips/s and ETA, created on the first update so failures before any work
    print only their message."""
    from tqdm import tqdm

    bars: list = []

    def update(report) -> None:
        if not bars or bars[-1].desc != report.stage:
            if bars:
                bars[-1].close()
            bars.append(tqdm(total=report.units_total, desc=report.stage, unit="unit", file=sys.stderr))
        bar = bars[-1]
        bar.n = report.units_done
        eta = "?" if report.eta_seconds is None else bar.format_interval(report.eta_seconds)
        bar.set_postfix_str(f"{report.clips_per_second:.2f} clips/s, ETA {eta}")
    return update


def _progress_lines(report) -> None:
    """With --json: one plain progress line per finished unit on stderr (stdout keeps the one JSON document)."""
    print(report, file=sys.stderr, flush=True)


def cmd_build_index(args: argparse.Namespace) -> dict:
    from motive_core.build import build_index
    from motive_core.featurize import Featurizer
    from motive_core.models import load_model

    model_spec = str(Path(args.model).resolve())
    progress = _progress_lines if args.json else _progress_bar()
    if args.ray:
        from motive_core.distributed import RayOptions, build_index_ray

        options = RayOptions(address=args.ray, workers=args.workers, num_gpus_per_worker=args.num_gpus_per_worker,
                             num_cpus_per_worker=args.num_cpus_per_worker, mask_stage=args.mask_stage,
                             device=args.device, dtype=args.dtype)
        summary = build_index_ray(args.data, args.out, model_spec, settings_from_args(args), args.unit_size, options, progress)
        return {"out": str(args.out), **summary}
    if args.mask_stage:
        raise MotiveError("--mask-stage runs on a Ray cluster; add --ray auto (or the cluster's address)")
    featurizer = Featurizer(load_model(args.model, device=args.device, dtype=args.dtype), settings_from_args(args))
    summary = build_index(args.data, args.out, featurizer, unit_size=args.unit_size, workers=args.workers or 1,
                          model_spec=model_spec, progress=progress)
    return {"out": str(args.out), **summary}


def open_attributor(args: argparse.Namespace):
    """The Attributor of ``--index``, or with several ``--index`` their ModelEnsemble, each index read through
    the model it records or the ``--model`` given in its place."""
    from motive_core.query import Attributor, ModelEnsemble

    models = args.model or [None] * len(args.index)
    if len(models) != len(args.index):
        raise MotiveError(f"got {len(args.index)} --index but {len(models)} --model; give one --model per --index, "
                          "in the same order, or none (each index is read through the model it records)")
    attributors = [Attributor(index, model=model, device=args.device, conditioning=args.conditioning)
                   for index, model in zip(args.index, models)]
    return attributors[0] if len(attributors) == 1 else ModelEnsemble(attributors)


def cmd_query(args: argparse.Namespace) -> dict:
    from motive_core.query import conditioning_note
    from motive_core.selection import parse_selection

    selection = parse_selection(args.region, args.frames, args.isolate)
    attributor = open_attributor(args)
    prepared = attributor.prepare(args.video)
    if args.windows:
        from motive_core.segments import attribute_segments

        if args.frames:
            raise MotiveError("--windows splits the whole clip into time windows; drop --frames (boxes may stay)")
        segments = attribute_segments(attributor, prepared, args.windows, args.prompt, args.top,
                                      selection.boxes if selection else (), bool(selection and selection.isolate))
        note = conditioning_note(attributor.featurizer.settings.conditioning, args.prompt)
        return {"windows": [s.to_dict() for s in segments], "conditioning_note": note, "video": str(args.video),
                "config": attributor.config}
    result = attributor.attribute(prepared, args.prompt, args.top, selection)
    return {**result.to_dict(attributor.config), "video": str(args.video)}


def cmd_select(args: argparse.Namespace) -> dict:
    from motive_core.attribution.scoring import majority_vote, write_selection_csv, write_selection_jsonl

    prompts = args.prompts or [""] * len(args.videos)
    if len(prompts) != len(args.videos):
        raise MotiveError(f"got {len(args.videos)} videos but {len(prompts)} prompts; give one prompt per video or none")
    out = Path(args.out)
    if out.suffix not in (".csv", ".jsonl"):
        raise MotiveError(f"--out must end in .csv or .jsonl (got {out.name})")
    attributor = open_attributor(args)
    scores = np.stack([attributor.attribute(attributor.prepare(v), p, top=1).scores
                       for v, p in zip(args.videos, prompts)])
    selection = majority_vote(scores, percentile=args.percentile, fraction=args.fraction)
    writer = write_selection_csv if out.suffix == ".csv" else write_selection_jsonl
    writer(out, selection, attributor.index.clips)
    return {"out": str(out), "selected": len(selection.indices), "queries": len(args.videos),
            "clips": [attributor.index.clips[i]["id"] for i in selection.indices]}


def cmd_generate(args: argparse.Namespace) -> dict:
    from motive_core.models import load_model
    from motive_core.models.flow import sample
    from motive_core.video import write_mp4

    model = load_model(args.model, device=args.device, dtype=args.dtype)
    frames = sample(model, args.prompt, seed=args.seed, steps=args.steps, guidance=args.guidance)
    path = write_mp4(frames, args.out, model.geometry.fps, scale=args.scale)
    return {"out": str(path), "frames": int(frames.shape[0]), "height": int(frames.shape[1]),
            "width": int(frames.shape[2]), "prompt": args.prompt, "seed": args.seed, "steps": args.steps}


def cmd_demo(args: argparse.Namespace) -> dict:
    from motive_core.demo.world import REPO, STAGES, DemoRecipe, build_demo

    recipe = DemoRecipe()
    if args.steps is not None:
        recipe = replace(recipe, train=replace(recipe.train, steps=args.steps))
    if args.clips is not None:
        recipe = replace(recipe, num_clips=args.clips)
    stages = tuple(args.stage) if args.stage else STAGES
    seconds = build_demo(args.root or REPO / "precomputed", args.assets or REPO / "assets", recipe, stages,
                         workers=args.workers)
    return {"stage_seconds": seconds, "root": str(args.root or REPO / "precomputed")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m motive_core", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        sub.add_argument("--debug", action="store_true", help="show tracebacks")
        sub.set_defaults(func=func)
        return sub

    p = command("mask", cmd_mask, "motion mask (Eq. 13), overlays and statistics of one video")
    p.add_argument("--video", required=True)
    p.add_argument("--out", required=True, help="folder for mask.npy, magnitude.npy, overlay.mp4, heatmap.mp4")
    p.add_argument("--tracker", default="opencv")
    p.add_argument("--tracker-model", choices=["full", "tiny"], default=None, help="AllTracker checkpoint kind")
    p.add_argument("--tracker-device", default=None, help="AllTracker device: auto (default), cpu, cuda, cuda:1 …")
    p.add_argument("--tracker-size", type=int, default=None,
                   help="AllTracker run size: long side in px (default 1024, as its demo; 256-384 on a CPU)")
    p.add_argument("--frames", type=int, default=None, help="resample to this many frames first")
    p.add_argument("--fps", type=float, default=None, help="frame rate for --frames (default: the video's)")
    p.add_argument("--model", default=None, help="also write the latent-grid mask for this model (demo or folder; only its configs are read)")

    p = command("build-index", cmd_build_index, "compute and store the attribution vectors of a clip folder")
    p.add_argument("--data", required=True, help="clip folder with metadata.jsonl")
    p.add_argument("--model", required=True, help="'demo' or a local model folder")
    p.add_argument("--out", required=True, help="index folder (re-run the same command to resume)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: 1 locally; with --ray, as many as the cluster holds)")
    p.add_argument("--unit-size", type=int, default=8, help="clips per atomically written unit")
    p.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                   help="build on a Ray cluster: 'auto' (the cluster this machine joined) or its head's host:port")
    p.add_argument("--num-gpus-per-worker", type=float, default=0.0,
                   help="with --ray: GPUs per worker (workers with a GPU default to cuda + bf16)")
    p.add_argument("--num-cpus-per-worker", type=float, default=1.0,
                   help="with --ray: CPUs per worker (also its torch threads)")
    p.add_argument("--mask-stage", action="store_true",
                   help="with --ray: compute and cache motion masks on CPU workers before the gradient stage")
    add_settings_flags(p)
    _add_device(p)

    p = command("query", cmd_query, "rank the indexed clips by influence on one query video")
    p.add_argument("--index", required=True, action="append", help=ENSEMBLE_HELP)
    p.add_argument("--video", required=True)
    p.add_argument("--prompt", default="", help="the query's caption (enters the gradient only under caption "
                   "conditioning)")
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--region", action="append", default=None, metavar="x0,y0,x1,y1[@frame]",
                   help="attribute only the motion inside this box (pixels of the query video; repeatable: the "
                        "union); @frame: the box is drawn on that query frame and follows the object from there")
    p.add_argument("--frames", default=None, metavar="A:B",
                   help="attribute only the motion of query frames A to B-1")
    p.add_argument("--isolate", action="store_true",
                   help="with --region: also hide what lies outside the boxes from the model's input (replaced by "
                        "the clip's still background), not only from the loss")
    p.add_argument("--windows", type=int, default=None, metavar="N",
                   help="rank separately for N consecutive time windows of the query (when did which clips matter)")
    _add_conditioning_check(p)
    p.add_argument("--model", action="append", default=None, help=MODEL_HELP)
    p.add_argument("--device", default=None)

    p = command("select", cmd_select, "majority-vote curation over several queries (Eq. 18), exported as CSV/JSONL")
    p.add_argument("--index", required=True, action="append", help=ENSEMBLE_HELP)
    p.add_argument("--videos", nargs="+", required=True)
    p.add_argument("--prompts", nargs="+", default=None, help="one caption per video")
    _add_conditioning_check(p)
    p.add_argument("--fraction", type=float, default=0.1)
    p.add_argument("--percentile", type=float, default=90.0)
    p.add_argument("--out", required=True, help="selection.csv or selection.jsonl")
    p.add_argument("--model", action="append", default=None, help=MODEL_HELP)
    p.add_argument("--device", default=None)

    p = command("generate", cmd_generate, "generate a clip from a prompt with a local model")
    p.add_argument("--model", required=True)
    p.add_argument("--prompt", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=GENERATION.seed)
    p.add_argument("--steps", type=int, default=GENERATION.steps)
    p.add_argument("--guidance", type=float, default=GENERATION.guidance,
                   help="classifier-free guidance scale (1 = off; a folder without a text encoder then needs no "
                        "embedding of the empty prompt)")
    p.add_argument("--scale", type=int, default=1, help="nearest-neighbour upscale of the written mp4")
    _add_device(p)

    p = command("demo", cmd_demo, "rebuild the embedded demo world (clips, model, indexes, examples)")
    p.add_argument("--root", default=None, help="output folder (default: precomputed/)")
    p.add_argument("--assets", default=None, help="folder for example queries (default: assets/)")
    p.add_argument("--stage", action="append", choices=["clips", "model", "indexes", "examples", "artifact"],
                   help="run only these stages (repeatable; 'artifact' builds precomputed/artifact/, see "
                        "docs/artifact-world.md); finished stages are kept")
    p.add_argument("--steps", type=int, default=None, help="override the training steps (smaller = rougher model)")
    p.add_argument("--clips", type=int, default=None, help="override the number of training clips")
    p.add_argument("--workers", type=int, default=1, help="local processes for the index stage (same vectors)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        model = getattr(args, "model", None)  # "demo": the bundled demo model, by name
        if isinstance(model, list):  # query and select: one per --index
            args.model = [str(_demo_model()) if spec == "demo" else spec for spec in model]
        elif model == "demo":
            args.model = str(_demo_model())
        result = args.func(args)
    except Exception as err:  # noqa: BLE001 - the command line promises one line, not a traceback
        if args.debug:
            raise
        known = isinstance(err, MotiveError)
        message = str(err) if known else f"unexpected {type(err).__name__}: {err} (rerun with --debug for details)"
        print(f"error: {message}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": message}))
        return EXIT_BAD_INPUT if known else 1
    print(json.dumps(result, indent=2) if args.json else _human(result))
    return 0


def _demo_model() -> Path:
    """The demo model of the checkout this package runs from (``precomputed/model``)."""
    from motive_core.demo import DEMO_MODEL_DIR

    if not DEMO_MODEL_DIR.is_dir():
        raise MotiveError(f"--model demo names the demo model of a checkout ({DEMO_MODEL_DIR} here, which does not "
                          "exist: installed without -e, or precomputed/ removed); pass the model folder itself, "
                          "or rebuild it with `python -m motive_core demo`")
    return DEMO_MODEL_DIR


def _models_line(result: dict) -> list[str]:
    """A model ensemble's line: how many models' scores were averaged, and which (none for one model)."""
    members = result.get("config", {}).get("ensemble")
    if not members:
        return []
    names = ", ".join(f"{m['model']['name']} {m['model']['weight_hash']}" for m in members)
    return [f"scores: the mean over {len(members)} models ({names})"]


def _human(result: dict) -> str:
    if "windows" in result:
        lines = [result["conditioning_note"], *_models_line(result)]
        for w in result["windows"]:
            lines.append(f"frames {w['frames'][0]}:{w['frames'][1]} ({w['seconds'][0]:g}-{w['seconds'][1]:g} s)"
                         + (f": {w['note']}" if w["note"] else ""))
            lines += [f"  {e['score']:+.3f}  {e['id']}  {e['caption']}" for e in w["positives"]]
        return "\n".join(lines)
    if "positives" in result:
        selected = [f"selection: {result['selection']['description']}"] if result.get("selection") else []
        lines = [result["conditioning_note"], *_models_line(result), *selected, "most positive:"]
        lines += [f"  {e['score']:+.3f}  {e['id']}  {e['caption']}" for e in result["positives"]]
        lines += ["most negative:"] + [f"  {e['score']:+.3f}  {e['id']}  {e['caption']}" for e in result["negatives"]]
        return "\n".join(lines)
    return "\n".join(f"{k}: {v}" for k, v in result.items() if k != "files") + (
        "\n" + "\n".join(f"  {k}: {v}" for k, v in result["files"].items()) if "files" in result else "")
