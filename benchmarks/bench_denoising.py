"""At which noise levels does the demo model's clean-clip estimate still carry the clip's motion?

A model can only generate a motion if, from a heavily noised clip, its estimate x̂₀ = x_σ − σ·v̂ already
follows the prompted trajectory; and the attribution gradient at index 500 (σ = 0.75) can only record
motion that the model resolves there. For clips noised at several σ (one fixed noise draw), the flow
classifier (``benchmarks.common.features.motion_classifier``, fitted on the training clips) names the
motion of x̂₀. Training clips (what the model saw) and rendered clips with unseen looks are both measured.
Pass several model folders to compare training recipes (e.g. the model of an earlier commit extracted with
`git archive`).

  python -m benchmarks.bench_denoising [--models precomputed/model[,other/model]] [--per-motion 4]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from benchmarks.common.features import motion_classifier
from benchmarks.common.results import REPO, save
from motive_core.demo import DEMO_MODEL_DIR
from motive_core.demo.motionshapes import MOTIONS, caption, render_clip, sample_specs
from motive_core.eval.metrics import motion_accuracy
from motive_core.models import load_model
from motive_core.models.flow import fixed_noise
from motive_core.video import Video, standardize

SIGMAS = (0.3, 0.6, 0.75, 0.8, 0.9, 0.97)


def clean_estimates(model, frames: list[np.ndarray], captions: list[str], sigma: float) -> list[np.ndarray]:
    """x̂₀ of every clip noised to ``sigma`` with the same fixed noise draw, as uint8 (T, H, W, 3) frames."""
    x0 = torch.cat([model.encode(f) for f in frames])
    noisy = (1 - sigma) * x0 + sigma * fixed_noise(tuple(x0.shape[1:]), seed=0)
    condition = torch.cat([model.encode_prompt(c) for c in captions])
    with torch.no_grad():
        velocity = model.predict(noisy, torch.full((len(frames),), sigma * 1000.0), condition)
    return [model.decode(estimate[None]) for estimate in noisy - sigma * velocity]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=str(REPO / "precomputed" / "model"),
                        help="comma-separated model folders (default: the committed demo model)")
    parser.add_argument("--clips", default=str(REPO / "precomputed" / "clips"), help="the training clip folder")
    parser.add_argument("--per-motion", type=int, default=4)
    parser.add_argument("--name", default="denoising")
    args = parser.parse_args()
    folders = [Path(m) for m in args.models.split(",")]
    models = [load_model(folder, device="cpu") for folder in folders]
    g = models[0].geometry
    classifier = motion_classifier(Path(args.clips), g, MOTIONS)
    sets = {look: sample_specs(args.per_motion * len(MOTIONS), seed=300, appearance=look, pan_fraction=0.0,
                               static_fraction=0.0) for look in ("train", "heldout")}
    rows = []
    for folder, model in zip(folders, models):
        for look, specs in sets.items():
            frames = [standardize(Video(render_clip(s), 16.0, "rendered"), g.num_frames, g.fps, g.height, g.width)
                      for s in specs]
            name = "committed" if folder.resolve() == DEMO_MODEL_DIR.resolve() else folder.name
            row = {"model": f"{name} ({model.identity()['weight_hash'][:8]})",
                   "clips": "training looks" if look == "train" else "unseen looks",
                   "clean clip (σ 0)": motion_accuracy(classifier, frames, [s.motion for s in specs])["mean"]}
            for sigma in SIGMAS:
                estimates = clean_estimates(model, frames, [caption(s) for s in specs], sigma)
                row[f"x̂₀ at σ {sigma}"] = motion_accuracy(classifier, estimates, [s.motion for s in specs])["mean"]
            rows.append(row)
            print(row, flush=True)
    notes = [f"{args.per_motion} rendered clips per motion and look set, each noised with one fixed draw and "
             "denoised in one step under its own caption; accuracy = share whose x̂₀ the flow classifier "
             "(fitted on the training clips) names as the clip's motion, mean over motions. Chance = 0.1. "
             "σ 0.75 is the attribution timestep (index 500 at shift 3)."]
    save(args.name, {"Motion kept in the model's clean-clip estimate x̂₀, by noise level": rows}, notes, model=folders[0])


if __name__ == "__main__":
    main()
