"""Attribute a query clip against an index: the featurize → score → rank path shared by CLI and app."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from motive_core.config import AttributionSettings
from motive_core.errors import ConfigMismatchError
from motive_core.featurize import Featurizer, PreparedClip
from motive_core.index import AttributionIndex
from motive_core.models import VideoModelAdapter, load_model
from motive_core.selection import QuerySelection, select


def conditioning_note(conditioning: str, prompt: str) -> str:
    """One sentence for people: what the prompt did to this ranking."""
    if conditioning == "null":
        return ("conditioning 'null': clips and query are conditioned on the empty prompt, so the ranking follows "
                "the clip's motion" + (f"; the prompt {prompt!r} was not used" if prompt else ""))
    if prompt:
        return (f"conditioning 'caption': the prompt {prompt!r} enters the gradient, so words it shares with "
                "training captions can move the ranking")
    return "conditioning 'caption' with no prompt: the query is conditioned on the empty prompt"


@dataclass
class QueryResult:
    prepared: PreparedClip
    vector: np.ndarray
    scores: np.ndarray
    positives: list[dict]
    negatives: list[dict]
    prompt: str = ""
    conditioning: str = "caption"
    timings: dict = field(default_factory=dict)

    def to_dict(self, config: dict | None = None) -> dict:
        data = {"query": self.prepared.stats.to_dict(), "positives": self.positives, "negatives": self.negatives,
                "prompt": self.prompt, "conditioning": self.conditioning,
                "prompt_in_gradient": self.conditioning == "caption" and bool(self.prompt),
                "conditioning_note": conditioning_note(self.conditioning, self.prompt),
                "selection": self.prepared.selection, "timings": self.timings}
        if config is not None:
            data["config"] = config
        return data


class Attributor:
    """An index with the model and featurizer that reproduce its vectors for new queries."""

    def __init__(self, index: str | Path | AttributionIndex, model: str | VideoModelAdapter | None = None,
                 device: str | None = None, conditioning: str | None = None):
        """``conditioning``, when given, must be the index's: vectors under another conditioning are not comparable."""
        self.index = index if isinstance(index, AttributionIndex) else AttributionIndex(index)
        config = self.index.config
        built = config["settings"]["conditioning"]
        if conditioning is not None and conditioning != built:
            raise ConfigMismatchError(f"query settings differ from the index's in settings.conditioning "
                                      f"(index={built!r} query={conditioning!r}); use an index built with "
                                      f"--conditioning {conditioning} or query with --conditioning {built}")
        if model is None or isinstance(model, str):
            model = load_model(model or self.index.model_folder(), device=device,
                               dtype=config.get("dtype"))
        self.featurizer = Featurizer(model, AttributionSettings.from_vector_config(config))
        self.index.check_query_config(self.featurizer.config())

    def prepare(self, video: str | Path) -> PreparedClip:
        return self.featurizer.prepare_file(video)

    def attribute(self, prepared: PreparedClip, prompt: str = "", top: int = 10,
                  selection: QuerySelection | None = None) -> QueryResult:
        """One gradient, one projection, one matrix-vector product (paper §3.6).

        ``selection`` (boxes, frame range) restricts the query's motion weight before the gradient (Eq. 14).
        """
        if selection is not None:
            prepared = select(prepared, selection, self.featurizer.adapter.geometry, self.featurizer.settings.use_mask)
        vector = self.featurizer.vector(prepared, prompt)
        start = time.perf_counter()
        scores = self.index.scores(vector)
        ranked = self.index.rank(scores, top)
        timings = {**prepared.timings, "ranking": time.perf_counter() - start}
        return QueryResult(prepared, vector, scores, ranked["positives"], ranked["negatives"], prompt,
                           self.featurizer.settings.conditioning, timings)
