"""The oracle's scores beside trivial baselines, on generated events.

The oracle is the best reachable predictor (see each spec); reporting a model's score as a share
of the oracle's on the same events says how much of the learnable signal it has found. The
scores are the task's (:meth:`rtml.tasks.base.Task.scores`), as for every batch model.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from rtml.batch.frames import feature_frame, reference_space
from rtml.usecases.base import UseCase

Record = tuple[Mapping[str, Any], Mapping[str, Any]]  # (event as on the wire, truth)


def oracle_report(spec: UseCase, records: Sequence[Record], seed: int = 0) -> dict[str, dict]:
    """The oracle's scores and those of the task's trivial baselines, on the same events."""
    if spec.oracle is None or spec.truth is None:
        raise ValueError(f"{spec.name} has no oracle")
    events = [spec.parse(e) for e, _ in records]
    oracle = [spec.oracle(spec.truth.model_validate(t)) for _, t in records]
    truth = [spec.label_of(e) for e in events] if spec.task.supervised else oracle
    points = None  # every answer is judged among the same points: placed in their space once
    if spec.task.needs_points:
        points = reference_space(spec, feature_frame(spec, [spec.features_of(e) for e in events]))
    answers = {"oracle": oracle, **spec.task.baselines(truth, random.Random(seed))}
    return {name: spec.task.scores(spec, list(p), truth, points) for name, p in answers.items()}
