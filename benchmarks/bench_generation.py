"""Does the demo model generate the prompted motion?

A flow-only motion classifier (no generative model involved) is fitted on the demo's training clips at
the model's geometry; then, for every motion category, the demo model generates clips from prompts made
of unseen appearance words (held-out shapes, colours, background) and the classifier names their motion.
Reports per-category accuracy, with the classifier's own accuracy on rendered held-out clips beside it
(its ceiling), on clips generated with the motion and direction words removed (a floor: what the look alone yields), and
on clips generated from prompts in training looks (does the model draw the motion when every word is known?).

  python -m benchmarks.bench_generation [--root precomputed] [--per-motion 10] [--steps 30] [--guidance 3]
                                       [--sweep 2:3,5:3,3:6]   (guidance:shift pairs) [--name generation]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.common.features import motion_classifier
from benchmarks.common.results import REPO, save
from motive_core.data import load_clip_folder
from motive_core.demo.motionshapes import MOTIONS, caption, motion_phrase, render_clip, sample_specs
from motive_core.eval.metrics import motion_accuracy
from motive_core.models import load_model
from motive_core.models.flow import sample
from motive_core.video import Video, standardize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO / "precomputed"))
    parser.add_argument("--per-motion", type=int, default=10)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--name", default="generation")
    parser.add_argument("--sweep", default="", help="extra sampler settings to measure, 'guidance:shift' pairs "
                        "comma-separated (e.g. 2:3,5:3,3:6); the scheduler's own shift is 3")
    args = parser.parse_args()
    root = Path(args.root)
    model = load_model(root / "model", device="cpu")
    g = model.geometry
    classifier = motion_classifier(root / "clips", g, MOTIONS)
    specs = sample_specs(args.per_motion * len(MOTIONS), seed=200, appearance="heldout", pan_fraction=0.0,
                         static_fraction=0.0)
    labels = [s.motion for s in specs]
    rendered = [standardize(Video(render_clip(s), 16.0, "rendered"), g.num_frames, g.fps, g.height, g.width)
                for s in specs]
    seen_look = sample_specs(len(specs), seed=200, appearance="train", pan_fraction=0.0, static_fraction=0.0)
    generated, unprompted, familiar = [], [], []
    for i, (spec, known) in enumerate(zip(specs, seen_look)):
        prompt = caption(spec)
        generated.append(sample(model, prompt, seed=i, steps=args.steps, guidance=args.guidance))
        familiar.append(sample(model, caption(known), seed=i, steps=args.steps, guidance=args.guidance))
        no_motion = prompt.replace(f" {motion_phrase(spec)} ", " ")
        unprompted.append(sample(model, no_motion, seed=i, steps=args.steps, guidance=args.guidance))
        print(f"  generated {i + 1}/{len(specs)}", end="\r", flush=True)
    results = {name: motion_accuracy(classifier, clips, prompted)
               for name, clips, prompted in (
                   ("rendered held-out clips (classifier ceiling)", rendered, labels),
                   ("generated, prompt with motion word", generated, labels),
                   ("generated, motion words removed (floor)", unprompted, labels),
                   ("generated, training-look prompt", familiar, [s.motion for s in seen_look]))}
    rows = [{"motion": m, **{name: r["per_category"][m] for name, r in results.items()}} for m in MOTIONS]
    rows.append({"motion": "mean", **{name: r["mean"] for name, r in results.items()}})
    sweep = []
    for setting in filter(None, args.sweep.split(",")):
        guidance, shift = (float(v) for v in setting.split(":"))
        row = {"guidance": guidance, "shift": shift}
        for name, prompts in (("unseen-look prompts", specs), ("training-look prompts", seen_look)):
            clips = [sample(model, caption(s), seed=i, steps=args.steps, guidance=guidance, shift=shift)
                     for i, s in enumerate(prompts)]
            row[name] = motion_accuracy(classifier, clips, [s.motion for s in prompts])["mean"]
        sweep.append(row)
        print(row, flush=True)
    notes = [f"{args.per_motion} prompts per motion with unseen appearance words (e.g. \"{caption(specs[0])}\"); "
             f"{args.steps} Euler steps, guidance {args.guidance}; classifier = flow descriptors + logistic "
             f"regression fitted on the {len(load_clip_folder(root / 'clips'))} training clips. Chance = 0.1."]
    tables = {"Generated motion recognised by the flow classifier": rows}
    if sweep:
        tables["Other sampler settings: mean accuracy with the motion word"] = sweep
    save(args.name, tables, notes, model=root / "model",
         extra={"predicted": {name: r["predicted"] for name, r in results.items()}, "prompted": labels})


if __name__ == "__main__":
    main()
