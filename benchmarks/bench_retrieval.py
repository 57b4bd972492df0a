"""Does the attribution find same-motion training clips? (issue 3 / 5, study 1)

Held-out queries — MotionShapes clips rendered with looks never seen in training (new shapes, colours,
background) and, with --generated, clips the demo model generates from prompts with those words —
are ranked against the demo index by: Motive (mask), the no-mask baseline, random, largest motion
magnitude, an appearance-only baseline (colour histograms) and a motion-only baseline that uses no model
(flow descriptors). Reports P@10 and mAP by motion, the appearance leak (share of the top 10 sharing the
query's background / colour), the controlled check (motion precision among the 4 best candidates that
share the query's background and colour), P@10 per motion category, and the per-query paired difference
between the mask and no mask.

  python benchmarks/bench_retrieval.py [--root precomputed] [--per-motion 4] [--generated 2]
                                      [--indexes DIR]   (index-motion/ and index-nomask/ from DIR, e.g. other settings)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results_io import save  # noqa: E402
from motive_core.featurize import Featurizer  # noqa: E402
from motive_core.index import AttributionIndex  # noqa: E402
from motive_core.metrics import (appearance_leak, clip_descriptor, color_histogram, descriptor_similarity,  # noqa: E402
                                 histogram_similarity, precision_at_k, retrieval_table)
from motive_core.models import load_model  # noqa: E402
from motive_core.models.flow import sample  # noqa: E402
from motive_core.motionshapes import (MOTIONS, Appearance, caption, heldout_appearance, render_clip,  # noqa: E402
                                      sample_specs, train_appearance)
from motive_core.query import settings_from_config  # noqa: E402
from motive_core.video import Video, read_video, standardize  # noqa: E402

LABELS = ("motion", "shape", "color", "background")


def query_sets() -> dict[str, Appearance]:
    """Two kinds of new clips: everything about the look unseen, or only the shape unseen."""
    train, held = train_appearance(), heldout_appearance()
    return {"unseen shape, colour and background": held,
            "unseen shape (training colours and backgrounds)": Appearance(held.shapes, train.colors, train.backgrounds)}


def heldout_queries(look: Appearance, per_motion: int, generated: int, model, seed: int = 100) -> list[dict]:
    """Rendered (and optionally generated) query clips with the given looks, with their labels and captions."""
    queries = []
    specs = sample_specs(per_motion * len(MOTIONS), seed=seed, appearance=look, pan_fraction=0.0,
                         static_fraction=0.0)
    for spec in specs:
        queries.append({"video": Video(render_clip(spec), 16.0, "rendered"), "caption": caption(spec),
                        "kind": "rendered", **spec.labels()})
    for i, spec in enumerate(specs[: generated * len(MOTIONS)]):
        frames = sample(model, caption(spec), seed=seed + i, steps=30, guidance=3.0)
        queries.append({"video": Video(frames, model.geometry.fps, "generated"), "caption": caption(spec),
                        "kind": "generated", **spec.labels()})
    return queries


def training_features(index: AttributionIndex, geometry) -> tuple[np.ndarray, np.ndarray]:
    """Flow descriptors and colour histograms of every indexed clip, at the model's geometry."""
    descriptors, histograms = [], []
    for clip in index.clips:
        frames = standardize(read_video(index.clip_path(clip)), geometry.num_frames, geometry.fps,
                             geometry.height, geometry.width)
        descriptors.append(clip_descriptor(frames))
        histograms.append(color_histogram(frames))
    return np.stack(descriptors), np.stack(histograms)


def rows_in_order(index: AttributionIndex, scores: np.ndarray) -> list[dict]:
    """Candidate label rows, best score first (stable)."""
    order = np.argsort(-scores, kind="stable")
    return [{**index.clips[i]["labels"], "id": index.clips[i]["id"]} for i in order]


def summarize(set_name: str, rankings: dict[str, list[list[dict]]], labels: list[dict]) -> list[dict]:
    """One row per method: P@10 / mAP by motion, appearance leak, controlled check."""
    rows = []
    for name, ranks in rankings.items():
        table = retrieval_table(ranks, labels, label_keys=("motion",))
        leak = [appearance_leak(r, q) for r, q in zip(ranks, labels)]
        rows.append({"queries": set_name, "method": name, "P@10 motion": table["p@10_motion"],
                     "mAP motion": table["map_motion"],
                     "top-10 same background": float(np.mean([x["background"] for x in leak])),
                     "top-10 same colour": float(np.mean([x["color"] for x in leak])),
                     "controlled@4": table["controlled@4"]})
    return rows


def per_category(set_name: str, rankings: dict[str, list[list[dict]]], labels: list[dict]) -> list[dict]:
    rows = []
    for motion in MOTIONS:
        row = {"queries": set_name, "motion": motion}
        for name in ("Motive (mask)", "no mask", "flow descriptor (no model)"):
            hits = [precision_at_k([r["motion"] for r in ranking], q["motion"], 10)
                    for ranking, q in zip(rankings[name], labels) if q["motion"] == motion]
            row[name] = float(np.mean(hits)) if hits else float("nan")
        rows.append(row)
    return rows


def paired_difference(set_name: str, rankings: dict[str, list[list[dict]]], labels: list[dict],
                      better: str = "Motive (mask)", baseline: str = "no mask") -> dict:
    """Per-query P@10 of ``better`` minus ``baseline``: mean, 95 % bootstrap interval, wins / ties / losses.

    Both methods rank the same queries, so the paired difference says whether the mask's edge is more than
    the spread between queries.
    """
    def p10(name: str) -> np.ndarray:
        return np.array([precision_at_k([r["motion"] for r in ranking], q["motion"], 10)
                         for ranking, q in zip(rankings[name], labels)])

    diff = p10(better) - p10(baseline)
    means = np.random.default_rng(0).choice(diff, (10000, len(diff))).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"queries": set_name, f"{better} − {baseline}, P@10": float(diff.mean()),
            "95 % bootstrap interval": f"[{low:+.3f}, {high:+.3f}]",
            "queries better / same / worse": f"{(diff > 0).sum()} / {(diff == 0).sum()} / {(diff < 0).sum()}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(ROOT / "precomputed"))
    parser.add_argument("--per-motion", type=int, default=4)
    parser.add_argument("--generated", type=int, default=0, help="generated queries per motion")
    parser.add_argument("--name", default="retrieval")
    parser.add_argument("--indexes", default=None, help="folder with index-motion/ and index-nomask/ built from "
                        "--root's clips and model under other settings (default: --root)")
    args = parser.parse_args()
    root = Path(args.root)
    folder = Path(args.indexes or root)
    masked, plain = AttributionIndex(folder / "index-motion"), AttributionIndex(folder / "index-nomask")
    model = load_model(root / "model", device="cpu")
    featurizers = {"Motive (mask)": Featurizer(model, settings_from_config(masked.config)),
                   "no mask": Featurizer(model, settings_from_config(plain.config))}
    indexes = {"Motive (mask)": masked, "no mask": plain}
    descriptors, histograms = training_features(masked, model.geometry)
    rng = np.random.default_rng(0)
    baselines = {"random": lambda frames: rng.random(len(masked.clips)),
                 "largest motion": lambda frames: np.array([c["motion"]["motion_mean"] for c in masked.clips]),
                 "colour histogram (appearance only)":
                     lambda frames: histogram_similarity(color_histogram(frames), histograms),
                 "flow descriptor (no model)": lambda frames: descriptor_similarity(clip_descriptor(frames), descriptors)}
    summary, categories, paired, counts = [], [], [], {}
    all_rankings: dict[str, list[list[dict]]] = {}
    all_labels: list[dict] = []
    for set_name, look in query_sets().items():
        queries = heldout_queries(look, args.per_motion, args.generated, model)
        counts[set_name] = len(queries)
        print(f"{set_name}: {len(queries)} queries against {len(masked.clips)} training clips", flush=True)
        rankings: dict[str, list[list[dict]]] = {name: [] for name in [*featurizers, *baselines]}
        for n, query in enumerate(queries):
            prepared = featurizers["Motive (mask)"].prepare(query["video"])
            for name, featurizer in featurizers.items():
                scores = indexes[name].scores(featurizer.vector(prepared, query["caption"]))
                rankings[name].append(rows_in_order(indexes[name], scores))
            for name, scorer in baselines.items():
                rankings[name].append(rows_in_order(masked, scorer(prepared.frames)))
            print(f"  query {n + 1}/{len(queries)}", end="\r", flush=True)
        labels = [{k: q[k] for k in LABELS} for q in queries]
        summary += summarize(set_name, rankings, labels)
        categories += per_category(set_name, rankings, labels)
        paired.append(paired_difference(set_name, rankings, labels))
        for name, ranks in rankings.items():
            all_rankings.setdefault(name, []).extend(ranks)
        all_labels += labels
    paired.append(paired_difference("all queries", all_rankings, all_labels))
    losses = {name: featurizer.settings.loss for name, featurizer in featurizers.items()}
    notes = [f"Attribution loss of each index: {losses} ('motive' = the paper's Eq. 15–16, 'temporal_diff' = the "
             "variant that won in the variants table). "
             f"Each method ranks its own index: the masked one holds {len(masked.clips)} clips (static clips have a zero "
             f"mask and are refused), the no-mask one {len(plain.clips)}. "
             f"Queries: {counts}; MotionShapes clips never seen in training, {args.per_motion} rendered "
             f"(+{args.generated} generated) per motion, against {len(masked.clips)} training clips. Chance P@10 "
             "for motion ≈ 0.1 (ten balanced categories). With an unseen colour and background no training clip "
             "shares the query's look, so the appearance leak is 0 and the controlled check undefined (–) there."]
    save(args.name, {"Retrieval of same-motion training clips": summary, "P@10 by motion category": categories,
                     "Does the mask beat no mask? Paired per query": paired}, notes, model=root / "model")


if __name__ == "__main__":
    main()
