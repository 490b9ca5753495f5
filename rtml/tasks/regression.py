"""Regression: how much (seconds of travel)? Predictions are the value."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import Field

from rtml.tasks.base import OnlineMetric, Predicted, thin
from rtml.tasks.boosting import Boosted

if TYPE_CHECKING:
    import pyarrow as pa

    from rtml.usecases.base import UseCase

#: Bins of the residuals' histogram.
RESIDUAL_BINS = 30


@dataclass(frozen=True)
class Regression(Boosted):
    """The batch model minimises the absolute error (MAE: the median is its best answer)."""

    name: ClassVar[str] = "regression"
    loss: ClassVar[str] = "MAE"
    primary_metric: str = "mae"

    # -- online --------------------------------------------------------------------------------
    def online_model(self, spec: UseCase, params: dict[str, Any]) -> Any:
        """An adaptive random forest with linear leaves, which want comparable scales: numerics
        standardized, categoricals one-hot (unscaled, the prequential MAE over the first 1500
        events was worse than predicting the median)."""
        from river import compose, forest, preprocessing

        scaled = compose.Select(*spec.numeric_names) | preprocessing.StandardScaler()
        one_hot = compose.Select(*spec.categorical_names) | preprocessing.OneHotEncoder()
        return (scaled + one_hot) | forest.ARFRegressor(**params)

    def predict(self, model: Any, x: dict[str, Any]) -> float:
        """The value; 0.0 before the model's first learn."""
        prediction = model.predict_one(x)
        return 0.0 if prediction is None else float(prediction)

    def predict_then_learn(self, model: Any, x: dict[str, Any], y: Any) -> float:
        prediction = self.predict(model, x)
        model.learn_one(x, y)
        return prediction

    def online_metrics(self) -> dict[str, OnlineMetric]:
        from river import metrics

        return {"mae": metrics.MAE(), "rmse": metrics.RMSE(), "r2": metrics.R2()}

    def combine(self, values: Sequence[Any]) -> float:
        return sum(float(v) for v in values) / len(values)

    # -- batch ---------------------------------------------------------------------------------
    def catboost(self, params: Mapping[str, Any], common: dict[str, Any]) -> Any:
        from catboost import CatBoostRegressor

        return CatBoostRegressor(loss_function=self.loss, **common)

    def predict_values(self, model: Any, data: Any, **options: Any) -> list[Any]:
        return [float(p) for p in model.predict(data, **options)]

    def scores(
        self, spec: UseCase, predictions: Sequence[Any], truth: Sequence[Any], x: np.ndarray | None
    ) -> dict[str, float]:
        from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

        y = [float(t) for t in truth]
        return {
            "mae": float(mean_absolute_error(y, predictions)),
            "rmse": float(root_mean_squared_error(y, predictions)),
            "r2": float(r2_score(y, predictions)),
        }

    def baselines(self, truth: Sequence[Any], rng: random.Random) -> dict[str, Sequence[Any]]:
        return {"median": [float(np.median([float(t) for t in truth]))] * len(truth)}

    def evaluation_view(self, spec: UseCase, model: Any, rows: Predicted) -> dict[str, Any]:
        return regression_view([float(t) for t in rows.truth], rows.predictions)

    # -- serving and storage ---------------------------------------------------------------------
    def answer(self, spec: UseCase, value: Any) -> dict[str, Any]:
        return {spec.label: float(value)}

    def answer_fields(self, spec: UseCase) -> dict[str, tuple[Any, Any]]:
        return {spec.label: (float, Field(description="the predicted value"))}

    def prediction_type(self) -> pa.DataType:
        import pyarrow as pa

        return pa.float64()

    def truth_type(self) -> pa.DataType:
        import pyarrow as pa

        return pa.float64()


def regression_view(truth: Sequence[float], predicted: Sequence[float]) -> dict[str, Any]:
    """Predicted against actual, and the residuals' histogram."""
    y, yhat = np.asarray(truth, dtype=float), np.asarray(predicted, dtype=float)
    residuals = yhat - y
    counts, edges = np.histogram(residuals, bins=RESIDUAL_BINS)
    return {
        "points": [{"actual": float(y[i]), "predicted": float(yhat[i])} for i in thin(len(y))],
        "residuals": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
        "mean_residual": float(residuals.mean()) if len(residuals) else 0.0,
    }
