"""Motive Studio's library: motion attribution for video generation (Motive, arXiv 2601.08828).

Data flows one way, one module per stage: video → motion → mask → (loss → gradient → projection, in
``attribution/``) → featurize → index (the store) and build → query (scores and ranking) → curation. Everything
named in ``__all__`` is importable from here (loaded on first use, so ``import motive_core`` stays cheap):

    from motive_core import PRESETS, Attributor, Featurizer, build_index, load_model

The demo world (``motive_core.demo``), the evaluation code (``motive_core.eval``) and the app's display code
(``motive_core.ui``) sit beside the engine; the engine never imports them.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_HOMES = {
    "MotiveError": "errors",
    "read_video": "video", "write_mp4": "video", "Video": "video",
    "get_estimator": "motion", "MotionField": "motion",
    "motion_mask": "mask", "mask_to_latent": "mask", "motion_stats": "mask",
    "AttributionSettings": "config", "PRESETS": "config",
    "load_model": "models", "load_geometry": "models", "VideoModelAdapter": "models",
    "Featurizer": "featurize", "PreparedClip": "featurize", "prepare_clip": "featurize",
    "build_index": "build", "AttributionIndex": "index",
    "Attributor": "query", "ModelEnsemble": "query", "QueryResult": "query",
    "QuerySelection": "selection", "Box": "selection", "attribute_segments": "segments",
    "majority_vote": "attribution.scoring", "write_selection_csv": "attribution.scoring",
    "write_selection_jsonl": "attribution.scoring",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'motive_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"motive_core.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
