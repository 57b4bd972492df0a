"""Attribute a query clip against an index: the featurize → score → rank path shared by CLI and app."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from motive_core.config import AttributionSettings
from motive_core.errors import ConfigMismatchError, MotiveError
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

    @property
    def config(self) -> dict:
        """The vector config its rankings were made under (the index's)."""
        return self.index.config

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


class ModelEnsemble:
    """Several indexes of the same clips, each read through the model it was built with: a clip's score is the
    mean of its cosine influences under each model (TRAK's ensemble over models; Eq. 10 averaged).

    On the demo, a second model of the same recipe and another seed raised same-motion retrieval on the rendered
    queries and not on the independent renderer's; one trained on recoloured views of the clips raised both
    (docs/results.md, "Several models at once"). The indexes must
    hold the same clips in the same order, and share the clip geometry, tracker and conditioning, so that one
    prepared query serves every model and each score averages like with like.
    """

    def __init__(self, attributors: Sequence[Attributor]):
        if len(attributors) < 2:
            raise MotiveError(f"a model ensemble needs at least two indexes (got {len(attributors)})")
        first = attributors[0]
        clips = [clip["id"] for clip in first.index.clips]
        for other in attributors[1:]:
            where = f"{other.index.folder} and {first.index.folder}"
            if [clip["id"] for clip in other.index.clips] != clips:
                raise ConfigMismatchError(f"{where} do not hold the same clips in the same order; an ensemble "
                                          "averages each clip's scores, so build every index from one clip folder")
            for key in ("geometry", "tracker"):
                if other.config[key] != first.config[key]:
                    raise ConfigMismatchError(f"{where} differ in {key} ({other.config[key]} against "
                                              f"{first.config[key]}); one prepared query must serve every model")
            if other.featurizer.settings.conditioning != first.featurizer.settings.conditioning:
                raise ConfigMismatchError(f"{where} differ in settings.conditioning; an ensemble's prompt must "
                                          "enter every model's gradient alike")
        self.attributors = list(attributors)

    @property
    def featurizer(self) -> Featurizer:
        """The first model's featurizer: its geometry, tracker and conditioning are every model's."""
        return self.attributors[0].featurizer

    @property
    def index(self) -> AttributionIndex:
        """The first index: its clips (every index's) and their metadata."""
        return self.attributors[0].index

    @property
    def config(self) -> dict:
        """Every model's vector config, in the ensemble's order."""
        return {"ensemble": [attributor.config for attributor in self.attributors]}

    def prepare(self, video: str | Path) -> PreparedClip:
        return self.attributors[0].prepare(video)

    def attribute(self, prepared: PreparedClip, prompt: str = "", top: int = 10,
                  selection: QuerySelection | None = None) -> QueryResult:
        """Each model's :meth:`Attributor.attribute`, their scores averaged and ranked; ``vector`` holds each
        model's query vector, one row each."""
        results = [attributor.attribute(prepared, prompt, top, selection) for attributor in self.attributors]
        start = time.perf_counter()
        scores = np.mean([result.scores for result in results], axis=0)
        ranked = self.index.rank(scores, top)
        per_model = {key: sum(result.timings.get(key, 0.0) for result in results)
                     for key in ("encode", "gradient", "projection")}  # the steps each model repeats
        timings = {**results[0].timings, **per_model, "ranking": time.perf_counter() - start}
        return QueryResult(results[0].prepared, np.stack([result.vector for result in results]), scores,
                           ranked["positives"], ranked["negatives"], prompt, results[0].conditioning, timings)
