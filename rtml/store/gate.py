"""The promotion gate: a new version of a batch model becomes ``champion`` only if it beats the
current one on the same holdout by the use case's primary metric.

Both models score the very same rows (the newest events of the training run) with the task's
scores; the decision, the metric and both scores become tags of the new version (``gate.*``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from rtml.batch.model import evaluate
from rtml.settings import Settings
from rtml.store import registry
from rtml.usecases import UseCase, get

GateDecision = Literal["promoted", "rejected", "first"]


@dataclass
class GateResult:
    version: int
    decision: GateDecision
    metric: str
    candidate_score: float
    champion_version: int | None
    champion_score: float | None

    @property
    def promoted(self) -> bool:
        return self.decision != "rejected"


def beats(spec: UseCase, candidate: float, incumbent: float) -> bool:
    """Strictly better by the spec's primary metric (a tie keeps the incumbent)."""
    if math.isnan(candidate):
        return False
    if math.isnan(incumbent):
        return True
    return candidate > incumbent if spec.higher_is_better else candidate < incumbent


def gate(
    settings: Settings,
    usecase: str,
    version: int,
    holdout: pd.DataFrame,
    truth: Sequence[Any],
) -> GateResult:
    """Promote ``version`` only if it beats the current champion on the same holdout.

    Both models score the very same rows (the newest events of this training run) with the
    spec's primary metric; the decision, the metric and both scores become tags of ``version``
    (``gate.*``). The first version of a model becomes champion unopposed (``first``).
    """
    spec = get(usecase)
    metric = spec.primary_metric
    candidate = registry.load(settings, usecase, version)
    cand_score = evaluate(spec, candidate.predict(holdout), truth, holdout)[metric]
    current = registry.champion(settings, usecase)
    champ_score: float | None = None
    if current is None or current.version == version:
        decision: GateDecision = "first"
    else:
        incumbent = registry.load(settings, usecase, current.version)
        champ_score = evaluate(spec, incumbent.predict(holdout), truth, holdout)[metric]
        decision = "promoted" if beats(spec, cand_score, champ_score) else "rejected"
    result = GateResult(
        version, decision, metric, cand_score, current.version if current else None, champ_score
    )
    tags = {
        "gate.decision": decision,
        "gate.metric": metric,
        "gate.candidate_score": registry.fmt(cand_score),
        "gate.champion_version": str(result.champion_version or ""),
        "gate.champion_score": "" if champ_score is None else registry.fmt(champ_score),
        "gate.holdout_rows": str(len(holdout)),
        "gate.at": registry.now(),
    }
    mlflow_client = registry.client(settings)
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(registry.model_name(usecase), str(version), key, value)
    if result.promoted:
        registry.promote(settings, usecase, version, reason=f"gate: {decision}")
    return result
