"""A batch model as rtml uses it, whatever its task: predictions, scores, explanations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from rtml.batch.frames import feature_frame, reference_space
from rtml.features import FeatureValue
from rtml.usecases import UseCase, get


def evaluate(
    spec: UseCase,
    predictions: Sequence[Any],
    truth: Sequence[Any],
    frame: pd.DataFrame | None = None,
) -> dict[str, float]:
    """The task's scores of predictions against the truth: the same numbers for the sweep, the
    gate, the evaluation view and the CLI.

    ``truth`` is the label for supervised use cases and the true segment for clustering (which
    also needs ``frame``, the features the points are judged in).
    """
    points = None
    if spec.task.needs_points:
        if frame is None:
            raise ValueError(f"{spec.task.name} scores need the feature frame")
        points = reference_space(spec, frame)
    return spec.task.scores(spec, list(predictions), list(truth), points)


@dataclass
class BatchModel:
    """A registered version (or a freshly fitted model), loaded natively.

    ``predict`` returns one value per row in the task's shape: the positive class's probability,
    the value, the cluster id.
    """

    usecase: str
    version: int
    metrics: dict[str, float]
    model: Any  # a CatBoostClassifier / CatBoostRegressor, or a scikit-learn Pipeline(KMeans)
    run_id: str = ""

    @property
    def spec(self) -> UseCase:
        return get(self.usecase)

    def frame(self, rows: Sequence[Mapping[str, FeatureValue]] | pd.DataFrame) -> pd.DataFrame:
        return feature_frame(self.spec, rows)

    def predict(self, rows: Sequence[Mapping[str, FeatureValue]] | pd.DataFrame) -> list[Any]:
        frame = self.frame(rows)
        if frame.empty:
            return []
        return self.spec.task.batch_predict(self.model, frame)

    def fast_predict(self, rows: Sequence[Mapping[str, FeatureValue]]) -> list[Any]:
        """:meth:`predict` without the DataFrame where the model takes plain rows (a typed pandas
        frame costs 4–20 ms for one row against ~0.1 ms for CatBoost itself)."""
        fast = self.spec.task.fast_predict(self.spec, self.model, rows)
        return self.predict(rows) if fast is None else fast

    def explain(self, row: Mapping[str, FeatureValue]) -> dict[str, float]:
        """Per-feature contributions to this row's prediction (the task says how)."""
        return self.spec.task.explain(self.spec, self.model, self.frame([row]))

    def feature_importance(self) -> dict[str, float]:
        """How much each feature matters to the model overall (the task says how)."""
        return self.spec.task.feature_importance(self.spec, self.model)
