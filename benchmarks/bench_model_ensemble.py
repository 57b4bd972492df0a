"""Attribution through several demo models at once: TRAK's model ensemble, measured across renderers.

One model's gradients carry that model's quirks along with the motion. TRAK (Park et al., 2023) averages
attribution scores over independently trained models to cancel them. This study does the same with the demo
generators this repository can train on the same 600 clips: the committed model and bench_retrain's models
(each indexed over the same clips with the shipped settings). A clip's ensemble score for a query is the mean
of its cosine scores through each model; queries carry no prompt and every index conditions on the null
prompt, so no caption enters any score. The committed model alone and all models together are also read with
query expansion (bench_gradient_variants): each model's query vector plus that model's vector of the clip the
ensemble ranks first, then the same mean of cosines.

Queries are bench_retrieval's held-out rendered set and the independent renderer's clips, the same for every
model, so every ensemble is paired per query with the committed model alone. The flow descriptor's P@10 on
the same clips is the ceiling #12 reads Motive against (0.8× asked).

  python -m benchmarks.bench_model_ensemble --model NAME=FOLDER [--model NAME=FOLDER ...]

A model folder's index is its sibling ``index-motion`` (as bench_retrain leaves it).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common.queries import (clip_motions, expanded_scores, flow_precision, in_subset,
                                       no_prompt_word_scores, paired_summary, precision_at_10, query_list,
                                       query_scores)
from benchmarks.common.results import DEMO_MODEL, log, model_folders, repo_relative, save
from benchmarks.independent_motions import independent_queries
from motive_core.index import AttributionIndex
from motive_core.models import load_model

SETS = ("rendered", "independent")
COMMITTED = "committed demo model"


def ensembles(names: list[str]) -> list[tuple[str, ...]]:
    """Each model alone, the committed model with each other one, and every model together (in that order,
    without repeats)."""
    others = [n for n in names if n != COMMITTED]
    chosen = [(n,) for n in names] + [(COMMITTED, n) for n in others] + [tuple(names)]
    return list(dict.fromkeys(chosen))


def expanded_mean(scores: dict[str, np.ndarray], grams: dict[str, np.ndarray],
                  members: tuple[str, ...]) -> np.ndarray:
    """The members' mean cosine after query expansion (``expanded_scores``, from each model's scores and its
    index's Gram matrix) with the clip their mean ranks first."""
    top = np.argmax(np.mean([scores[m] for m in members], axis=0), axis=1)
    return np.mean([expanded_scores(scores[m], grams[m], top) for m in members], axis=0)


def ensemble_rows(scores: dict[str, np.ndarray], motions: np.ndarray, truth: list[str], sets: np.ndarray,
                  baselines: dict[str, np.ndarray], grams: dict[str, np.ndarray]) -> tuple[list[dict], list[dict]]:
    """P@10 of each ensemble (mean of its models' scores) and its paired difference from the committed model;
    the committed model alone and all models are read with query expansion too (``grams``: each model's index
    vectors against themselves); ``baselines`` (per-query P@10 of methods without a model, the flow descriptor
    first) close the table."""
    flow = next(iter(baselines.values()))
    alone = precision_at_10(scores[COMMITTED], motions, truth)
    figures, paired = [], []
    chosen = ensembles(list(scores))
    read = [(members, False) for members in chosen] + [(members, True) for members in (chosen[0], chosen[-1])]
    for members, expand in read:
        name = " + ".join(members) if len(members) < max(3, len(scores)) else f"all {len(members)} models"
        name += ", query expansion" if expand else ""
        mean = expanded_mean(scores, grams, members) if expand else np.mean([scores[m] for m in members], axis=0)
        precision = precision_at_10(mean, motions, truth)
        independent = float(precision[in_subset(sets, "independent")].mean())
        figures.append({"models (scores averaged)": name, "models": len(members),
                        **{f"P@10 {s}": float(precision[in_subset(sets, s)].mean()) for s in SETS},
                        "independent ÷ flow": independent / float(flow[in_subset(sets, "independent")].mean())})
        if (members, expand) != ((COMMITTED,), False):
            paired += [{"queries": s, "comparison": f"{name} − {COMMITTED}",
                        **paired_summary(precision[in_subset(sets, s)], alone[in_subset(sets, s)])} for s in SETS]
    figures += [{"models (scores averaged)": name, "models": 0,
                 **{f"P@10 {s}": float(values[in_subset(sets, s)].mean()) for s in SETS},
                 "independent ÷ flow": float(values[in_subset(sets, "independent")].mean())
                 / float(flow[in_subset(sets, "independent")].mean())} for name, values in baselines.items()]
    return figures, paired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FOLDER",
                        help="another demo model (its index: the sibling index-motion folder); at least one")
    parser.add_argument("--per-motion", type=int, default=4, help="rendered queries per motion and look set")
    parser.add_argument("--independent", type=int, default=10, help="independent-renderer queries per motion")
    parser.add_argument("--name", default="model_ensemble")
    args = parser.parse_args()
    if not args.model:
        parser.error("name at least one --model NAME=FOLDER beside the committed demo model")
    start = time.perf_counter()
    models = model_folders(args.model)
    shipped = load_model(DEMO_MODEL, device="cpu")
    queries = query_list(shipped, args.per_motion, 0, independent_queries(args.independent, seed=0))
    sets = np.array([q["set"] for q in queries])
    truth = [q["motion"] for q in queries]
    committed_index = AttributionIndex(DEMO_MODEL.parent / "index-motion")
    clip_ids = [clip["id"] for clip in committed_index.clips]
    scores, grams = {}, {}
    for name, folder in models.items():
        log(f"{len(queries)} queries through the {name}")
        index = AttributionIndex(folder.parent / "index-motion")
        if [clip["id"] for clip in index.clips] != clip_ids:
            raise SystemExit(f"{repo_relative(folder.parent / 'index-motion')} does not hold the committed index's "
                             "clips in its order; an ensemble averages scores of the same clips")
        scores[name] = query_scores(shipped if folder == DEMO_MODEL else load_model(folder, device="cpu"), index,
                                    queries)
        vectors = np.asarray(index.vectors, np.float64)
        grams[name] = vectors @ vectors.T
    motions = clip_motions(committed_index)
    captions = [clip["caption"] for clip in committed_index.clips]
    words_only = no_prompt_word_scores(captions, len(queries))
    baselines = {"flow descriptor (no model)": flow_precision(shipped, committed_index, queries),
                 "caption-only: words shared with the prompt (none given)": precision_at_10(words_only, motions, truth)}
    figures, paired = ensemble_rows(scores, motions, truth, sets, baselines, grams)
    counts = {s: int((sets == s).sum()) for s in SETS}
    notes = [
        "Protocol: no prompt with any query; every index conditions each clip on the null prompt (the motion "
        "preset), so a prompt would change nothing; the caption-only row ranks clips by the words their captions "
        "share with the query's prompt, of which there is none under this protocol.",
        f"Queries: {counts} (bench_retrieval's held-out rendered sets and benchmarks/independent_motions.py, seed 0). "
        f"Training clips: the {len(clip_ids)} of {repo_relative(DEMO_MODEL.parent / 'index-motion')}. Models: "
        f"{', '.join(f'{n} ({repo_relative(f)})' for n, f in models.items())}.",
        "Ensemble: a clip's score is the mean of its cosine scores through the listed models (each the shipped "
        "setting: null conditioning, temporal-difference loss, mask, timesteps 300/500/700); one backward pass "
        "per timestep and model, for the query and for every indexed clip. 'query expansion': each model's unit "
        "query vector plus its unit vector of the clip the ensemble ranks first, then the same mean of cosines "
        "(no further backward pass). Flow descriptor: the model-free "
        "reading of the same queries against the same clips. Intervals: 95 % bootstrap of the mean per-query "
        f"difference (10,000 resamples). Run time {(time.perf_counter() - start) / 60:.1f} min on this CPU.",
    ]
    save(args.name, {"P@10 by motion, no prompt": figures,
                     f"Ensemble − {COMMITTED}, paired per query (P@10 by motion, no prompt)": paired}, notes)


if __name__ == "__main__":
    main()
