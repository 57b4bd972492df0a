"""What a query and an index build cost on this machine.

Demo world (default): model + index load time (app start-up), per-stage seconds of one query clip
(decode, standardise, motion, encode, gradient, projection, ranking) end to end from a file, peak
resident memory, and the index build time recorded per stage for the demo set.

Wan2.1-1.3B shape (``--wan-shape``, needs CUDA): one clip's gradient through a random-weight
1,418,996,800-parameter Wan transformer at 81×480×832 (latent 16×21×60×104), bf16 + gradient
checkpointing, and the block-wise Fastfood projection of that gradient, with peak GPU memory.

  python -m benchmarks.bench_cost [--root precomputed] [--repeats 5]
  python -m benchmarks.bench_cost --wan-shape
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

from benchmarks.common.results import REPO, save


def demo_costs(root: Path, repeats: int) -> None:
    from motive_core.query import Attributor

    start = time.perf_counter()
    attributor = Attributor(root / "index-motion", model=str(root / "model"))
    load_seconds = time.perf_counter() - start
    clip = attributor.index.clip_path(attributor.index.clips[0])
    runs = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        result = attributor.attribute(attributor.prepare(clip), attributor.index.clips[0]["caption"], top=10)
        runs.append({**result.timings, "end to end": time.perf_counter() - start})
    runs = runs[1:]  # the first query warms caches (projection diagonals, ffmpeg)
    stages = [{"stage": k, "median s": statistics.median(r[k] for r in runs)} for k in runs[0]]
    build = json.loads((root / "index-motion" / "build.json").read_text()) if (root / "index-motion" / "build.json").is_file() else None
    tables = {"One query from a clip file (demo model, CPU)": stages,
              "Start-up": [{"what": "load model + index", "s": load_seconds},
                           {"what": "peak resident memory (MiB)", "s": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}]}
    notes = [f"{repeats} queries after one warm-up; clip {clip.name}; {len(attributor.index.clips)} indexed clips; "
             f"{attributor.featurizer.gradients.num_parameters:,} parameters in the gradient."]
    if build:
        tables["Index build (demo set, python -m motive_core demo --workers 2)"] = [
            {"stage": k, "s": v} for k, v in build.items()]
        notes.append("Index build: per-stage seconds are summed over the worker processes; `total` is wall-clock.")
    save("cost_demo", tables, notes, model=root / "model")


def wan_shape_costs() -> None:
    import torch
    from diffusers import WanTransformer3DModel

    from motive_core.attribution.fastfood import FastfoodConfig, FastfoodProjector

    if not torch.cuda.is_available():
        sys.exit("--wan-shape needs a CUDA GPU (the 1.3B transformer at 81×480×832 is not a CPU workload)")
    device = torch.device("cuda")
    model = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128,
                                  in_channels=16, out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=8960,
                                  num_layers=30, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                  eps=1e-6).to(device, torch.bfloat16)
    model.enable_gradient_checkpointing()
    params = [p for p in model.parameters() if p.requires_grad]
    total = sum(p.numel() for p in params)
    latents = torch.randn(1, 16, 21, 60, 104, device=device, dtype=torch.bfloat16)
    text = torch.randn(1, 512, 4096, device=device, dtype=torch.bfloat16)
    projector = FastfoodProjector(FastfoodConfig(dim=512), total, device=device)
    rows = []
    for _ in range(3):
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        out = model(latents, torch.tensor([750.0], device=device), text, return_dict=False)[0]
        grads = torch.autograd.grad(out.float().pow(2).mean() / 81, params)
        torch.cuda.synchronize()
        gradient_s = time.perf_counter() - start
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        stream = projector.stream()
        for g in grads:
            stream.update(g.reshape(-1))
        stream.finish()
        torch.cuda.synchronize()
        rows.append({"gradient s": gradient_s, "projection s": time.perf_counter() - start,
                     "projection extra GiB": (torch.cuda.max_memory_allocated() - before) / 2**30})
        del grads
    save("cost_wan_gpu", {f"Wan2.1-1.3B shape, {total:,} parameters, {torch.cuda.get_device_name()}": rows},
         ["Paper (A100): ~54 s per clip, projection 1.97 s. Targets: gradient + projection ≤ 3.5 s, "
          "projection ≤ 50 ms, ≤ 1 GiB extra."])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO / "precomputed"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--wan-shape", action="store_true")
    args = parser.parse_args()
    wan_shape_costs() if args.wan_shape else demo_costs(Path(args.root), args.repeats)


if __name__ == "__main__":
    main()
