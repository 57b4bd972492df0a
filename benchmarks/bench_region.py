"""Pointing at the artifact: attribution of one object's motion in a query that shows two (the artifact world).

World: ``precomputed/artifact/`` (``python -m motive_core demo --stage artifact``, docs/artifact-world.md): a
pool of 300 MotionShapes clips in which half of the static-camera bounce clips jitter and half of the swing
clips stutter, the demo model fine-tuned on it, and its Motive (mask) and no-mask indexes.

Queries: two objects in one clip, each in its own half of the frame: one carrying a planted artifact (a
jittering bounce on the left or right, or a stuttering swing at the top) and one moving cleanly with another
motion (spin, free fall, float or vertical stretch beside a bounce; slide, roll or compress under a swing).
Both objects have held-out looks (pentagon / cross, white / lime) on a plain background, rendered like the
pool (32 frames at 16 fps, 64 px, standardised to the model's 16 frames, 8 fps, 32 px). Two sets: both objects
of the pool's sizes (the artifact object then carries about three quarters of the motion mask), and a small
artifact object beside a large clean one (about 60 / 35). Protocol: no prompt
(both indexes condition clips and queries on the null prompt, so a prompt would not enter the gradient).

Relevant = the pool clips planted with the query's artifact kind. Arms per query: (a) the whole clip, (b) a
box around the artifact object's path, (c) a box around the clean object's path, (d) a box drawn on the
first frame around the artifact object and tracked through the clip, (e) the artifact object's box isolated
(outside it, the model's input shows the clip's still background); and, as the ceiling, (f) the same query
without the clean object. P@10 and AP per query, per-query paired differences with 95 % bootstrap intervals;
the planted share of the pool (what a ranking blind to the artifact gets) and of the artifact's motion (what a
perfect motion-only ranking gets) are the references. "motion mask kept" is the share of the query's motion
mask W inside the selection.

  python -m benchmarks.bench_region [--root precomputed] [--queries 16]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common.queries import paired_summary
from benchmarks.common.results import REPO, RESULTS, save
from motive_core.demo.artifacts import PLANTED
from motive_core.demo.motionshapes import PALETTES, ShapeSpec, heldout_appearance, render_clip
from motive_core.errors import MotiveError
from motive_core.eval.metrics import average_precision, precision_at_k
from motive_core.mask import grey_fade
from motive_core.query import Attributor
from motive_core.selection import Box, QuerySelection, outline_selection, select
from motive_core.video import Video

FRAMES, SIZE, FPS = 32, 64, 16.0  # the pool's own clip format
PARTNERS = {"jitter": ("spin", "free_fall", "float", "stretch"), "stutter": ("slide", "roll", "compress")}
ARMS = ("whole clip", "artifact object's box", "clean object's box", "artifact box on frame 0, tracked",
        "artifact object's box, isolated", "reference: the artifact object alone, whole clip")
PAD = 2  # px of the 64-px query around an object's path
# (artifact object, clean object) radius as a fraction of the frame, per artifact kind, for two query sets: objects
# of the pool's sizes (0.16-0.2; the object under a pendulum is smaller so that it fits below it), where the
# artifact object carries most of the motion mask, and a larger, faster-looking clean object that carries more.
QUERY_SETS = {"pool-size objects": {"jitter": (0.16, 0.16), "stutter": (0.16, 0.12)},
              "small artifact object, large clean object": {"jitter": (0.1, 0.22), "stutter": (0.1, 0.18)}}


def object_pixels(frames: np.ndarray, palette: int) -> np.ndarray:
    """(T, H, W) bool: where a plain-background render differs from its background colour."""
    return np.abs(frames.astype(np.int16) - np.array(PALETTES[palette][0], np.int16)).sum(-1) > 3


def extent(pixels: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), half-open, of every object pixel over the whole clip (or of one frame)."""
    seen = pixels.reshape(-1, *pixels.shape[-2:]).any(axis=0)
    rows, cols = np.flatnonzero(seen.any(axis=1)), np.flatnonzero(seen.any(axis=0))
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def shifted(frames: np.ndarray, pixels: np.ndarray, dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames and object pixels moved by (dx, dy); what leaves the frame is dropped."""
    def move(a: np.ndarray) -> np.ndarray:
        out = np.zeros_like(a)
        h, w = a.shape[1:3]
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[:, yd, xd] = a[:, ys, xs]
        return out
    return move(frames), move(pixels)


def two_object_query(kind: str, number: int, sizes: tuple[float, float], seed: int = 500) -> dict:
    """A query showing ``kind``'s artifact on one object and a clean motion on another, with both objects' boxes."""
    rng = np.random.default_rng([seed, number, len(kind)])
    look = heldout_appearance()
    shapes, colors = rng.permutation(look.shapes), rng.permutation(look.colors)
    palette = int(rng.integers(len(PALETTES)))
    partner = PARTNERS[kind][number % len(PARTNERS[kind])]
    artifact_size, partner_size = sizes
    spec = dict(background="plain", palette=palette, seed=int(rng.integers(2 ** 31)))
    bad = ShapeSpec(PLANTED[kind], str(shapes[0]), str(colors[0]), size=artifact_size, artifact=kind,
                    direction=int(rng.choice([1, -1])), jitter=(0.0, float(rng.uniform(-1, 1))), **spec)
    good = ShapeSpec(partner, str(shapes[1]), str(colors[1]), size=partner_size,
                     direction=-1 if partner == "stretch" else int(rng.choice([1, -1])),
                     jitter=(0.0, float(rng.uniform(-1, 1))), **{**spec, "seed": spec["seed"] + 1})
    bad_frames, good_frames = render_clip(bad, FRAMES, SIZE), render_clip(good, FRAMES, SIZE)
    bad_px, good_px = object_pixels(bad_frames, palette), object_pixels(good_frames, palette)
    (bx0, by0, bx1, by1), (gx0, gy0, gx1, gy1) = extent(bad_px), extent(good_px)
    if kind == "jitter":  # side by side: the bouncing object in one half, the other in the other half
        left = number % 2 == 0
        bad_dx = (SIZE // 4 if left else 3 * SIZE // 4) - (bx0 + bx1) // 2
        good_dx = (3 * SIZE // 4 if left else SIZE // 4) - (gx0 + gx1) // 2
        bad_frames, bad_px = shifted(bad_frames, bad_px, bad_dx, 0)
        good_frames, good_px = shifted(good_frames, good_px, good_dx, 0)
    else:  # the pendulum hangs from the top; the other object moves below it
        good_frames, good_px = shifted(good_frames, good_px, 0, by1 + 1 - gy0)
    background = np.empty_like(bad_frames)
    background[:] = PALETTES[palette][0]  # the plain background both objects were drawn on
    alone = np.where(bad_px[..., None], bad_frames, background)
    canvas = np.where(bad_px[..., None], bad_frames, np.where(good_px[..., None], good_frames, background))

    def box(pixels: np.ndarray, frame: int | None = None) -> Box:
        x0, y0, x1, y1 = extent(pixels if frame is None else pixels[frame])
        return Box(max(x0 - PAD, 0), max(y0 - PAD, 0), min(x1 + PAD, SIZE), min(y1 + PAD, SIZE), frame=frame)

    return {"video": Video(canvas, FPS, f"{kind}-{number}"), "alone": Video(alone, FPS, f"{kind}-{number}-alone"),
            "kind": kind, "motion": PLANTED[kind], "partner": partner,
            "boxes": {"artifact": box(bad_px), "clean": box(good_px), "tracked": box(bad_px, 0)}}


def example_figure(attributor: Attributor, query: dict, path: Path, scale: int = 4) -> Path:
    """One query as the selection sees it: its frames with both boxes, then W ⊙ S (grey fade) for each box."""
    prepared = attributor.featurizer.prepare(query["video"])
    geometry = attributor.featurizer.adapter.geometry
    chosen = {name: select(prepared, QuerySelection((query["boxes"][name],)), geometry)
              for name in ("artifact", "clean")}
    big = prepared.frames.repeat(scale, axis=1).repeat(scale, axis=2)
    framed = outline_selection(outline_selection(big, chosen["artifact"].selection, (255, 80, 80)),
                               chosen["clean"].selection, (80, 255, 80))
    rows = [framed] + [grey_fade(big, chosen[name].mask) for name in ("artifact", "clean")]
    picked = range(0, len(big), 2)
    image = np.concatenate([np.concatenate([row[t] for t in picked], axis=1) for row in rows], axis=0)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def arm_inputs(query: dict) -> dict[str, tuple[str, QuerySelection | None]]:
    """Per arm: which video ("video": both objects, "alone": the artifact object only) and which selection."""
    boxes = query["boxes"]
    return dict(zip(ARMS, (("video", None), ("video", QuerySelection((boxes["artifact"],))),
                           ("video", QuerySelection((boxes["clean"],))), ("video", QuerySelection((boxes["tracked"],))),
                           ("video", QuerySelection((boxes["artifact"],), isolate=True)), ("alone", None))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO / "precomputed"), help="folder holding artifact/")
    parser.add_argument("--queries", type=int, default=16, help="two-object queries per artifact kind and set")
    args = parser.parse_args()
    world = Path(args.root) / "artifact"
    if not (world / "index-motion" / "config.json").is_file():
        raise SystemExit(f"no artifact world in {world}: build it with python -m motive_core demo --stage artifact")
    started = time.perf_counter()
    query_sets = {name: [two_object_query(kind, n, sizes[kind]) for kind in PLANTED for n in range(args.queries)]
                  for name, sizes in QUERY_SETS.items()}
    tables, extra = {}, {"queries": []}
    for index_name, folder in (("Motive (mask)", "index-motion"), ("no mask", "index-nomask")):
        attributor = Attributor(world / folder, model=str(world / "model"))
        if index_name == "Motive (mask)":
            example_figure(attributor, query_sets[next(iter(QUERY_SETS))][0], RESULTS / "region_example.png")
        for set_name, queries in query_sets.items():
            scores = score_arms(attributor, queries)
            tables.update(summary_tables(f"{index_name}, {set_name}", queries, scores, attributor.index.clips))
            if index_name == "Motive (mask)":
                extra["queries"] += [{"set": set_name, "kind": q["kind"], "partner": q["partner"],
                                      "boxes": {k: b.to_dict() for k, b in q["boxes"].items()},
                                      "p@10": {arm: scores["p10"][arm][i] for arm in ARMS}}
                                     for i, q in enumerate(queries)]
    seconds = time.perf_counter() - started
    header = attributor.index.header
    world_id = (f"Artifact world: pool clip list {header['clip_list_sha']}, artifact model weights "
                f"{attributor.index.config['model']['weight_hash']}.")
    # The recorded demo model is the clean one the artifact world is fine-tuned from (the default), so that the
    # results page flags these figures when that model changes; the artifact model's own hash is in world_id.
    save("region", tables, [*notes(sum(map(len, query_sets.values())), seconds), world_id], extra)


def score_arms(attributor: Attributor, queries: list[dict]) -> dict[str, dict[str, list[float]]]:
    """Per arm and query: P@10 and AP of the planted clips of the query's kind, P@10 of the clean object's
    motion, and the share of the motion mask the selection keeps."""
    artifacts = [clip["labels"].get("artifact", "none") for clip in attributor.index.clips]
    motions = [clip["labels"]["motion"] for clip in attributor.index.clips]
    scores = {key: {arm: [] for arm in ARMS} for key in ("p10", "ap", "partner", "kept")}
    for query in queries:
        prepared = {name: attributor.featurizer.prepare(query[name]) for name in ("video", "alone")}
        for arm, (video, selection) in arm_inputs(query).items():
            result = attributor.attribute(prepared[video], "", top=10, selection=selection)
            order = np.argsort(-result.scores, kind="stable")
            ranked = [artifacts[i] for i in order]
            scores["p10"][arm].append(precision_at_k(ranked, query["kind"], 10))
            scores["ap"][arm].append(average_precision(ranked, query["kind"]))
            scores["partner"][arm].append(precision_at_k([motions[i] for i in order], query["partner"], 10))
            scores["kept"][arm].append(result.prepared.selection["motion_kept"] if selection else 1.0)
    return scores


def summary_tables(title: str, queries: list[dict], scores: dict, clips: list[dict]) -> dict[str, list[dict]]:
    artifacts = [clip["labels"].get("artifact", "none") for clip in clips]
    motions = [clip["labels"]["motion"] for clip in clips]
    kinds = np.array([q["kind"] for q in queries])
    groups = {kind: kinds == kind for kind in PLANTED} | {"both": np.ones(len(kinds), bool)}
    rows, blank = [], {"AP planted": float("nan"), "P@10 by the clean object's motion": float("nan"),
                       "motion mask kept": float("nan")}
    for kind, chosen in groups.items():
        named = PLANTED if kind == "both" else (kind,)
        planted = sum(a in named for a in artifacts)
        label = f"{kind} ({int(chosen.sum())})"
        for arm in ARMS:
            mean = {key: float(np.mean(np.array(values[arm])[chosen])) for key, values in scores.items()}
            rows.append({"queries": label, "selection": arm, "P@10 planted": mean["p10"], "AP planted": mean["ap"],
                         "P@10 by the clean object's motion": mean["partner"], "motion mask kept": mean["kept"]})
        rows.append({"queries": label, "selection": "reference: planted share of the pool",
                     "P@10 planted": planted / len(artifacts) / len(named), **blank})
        rows.append({"queries": label, "selection": "reference: same-motion oracle (planted share of that motion)",
                     "P@10 planted": planted / sum(m in {PLANTED[k] for k in named} for m in motions), **blank})
    paired = []
    for name, a, b in (("artifact box − whole clip", ARMS[1], ARMS[0]),
                       ("clean box − whole clip", ARMS[2], ARMS[0]),
                       ("tracked artifact box − whole clip", ARMS[3], ARMS[0]),
                       ("isolated artifact box − whole clip", ARMS[4], ARMS[0]),
                       ("artifact box − clean box", ARMS[1], ARMS[2]),
                       ("artifact object alone − whole clip", ARMS[5], ARMS[0])):
        for kind, chosen in groups.items():
            paired.append({"difference (P@10 planted)": name, "queries": kind,
                           **paired_summary(np.array(scores["p10"][a])[chosen], np.array(scores["p10"][b])[chosen])})
    return {f"{title}: P@10 and AP of the planted clips of the query's artifact kind (no prompt)": rows,
            f"{title}: per-query paired differences, 95 % bootstrap intervals": paired}


def notes(count: int, seconds: float) -> list[str]:
    return [f"{count} two-object queries, rendered with held-out looks on a plain background: the artifact object "
            "left or right of a clean one (jitter) or above it (stutter). Two sets: objects of the pool's sizes, and "
            "a small artifact object beside a large clean one, which carries more of the clip's motion. Protocol: "
            "no prompt; both indexes condition clips and queries on the null prompt.",
            "Boxes enclose each object's whole path with a 2 px margin (pixels of the 64-px query); the tracked box "
            "encloses the artifact object on frame 0 only and follows it by the query's motion field. An isolated "
            "box also replaces what lies outside it by the clip's per-pixel median over time in the model's input.",
            "No caption-only baseline: the queries carry no prompt, and the artifact is never in any caption.",
            f"Run time: {seconds:.0f} s on this CPU (one thread)."]


if __name__ == "__main__":
    try:
        main()
    except MotiveError as err:
        raise SystemExit(f"error: {err}") from None
