"""The online model of a use case and its prequential metrics, both built from the spec.

The River pipeline starts from the spec's one feature definition (``spec.features_of``) and adds
only what the model needs: Adaptive Random Forest classifiers split on nominal features natively;
the regressor's linear leaves and DBSTREAM's distances need numbers, so categoricals are one-hot
encoded for them (and numbers standardized for the distances).

Metrics are prequential (test-then-train): each event is scored before the model learns it, and
the oracle's prediction for the same event is scored beside it, so every figure also exists as a
share of the best reachable one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

from river import cluster, compose, forest, metrics, preprocessing, utils

from rtml.usecases.base import UseCase

#: Events in the "recent" window of each metric.
WINDOW = 1000


def build_model(spec: UseCase, overrides: Mapping[str, Any] | None = None) -> Any:
    params = {**spec.online_model, **(overrides or {})}
    numeric = [f.name for f in spec.features if f.kind == "numeric"]
    nominal = [f.name for f in spec.features if f.kind == "categorical"]
    one_hot = compose.Select(*nominal) | preprocessing.OneHotEncoder()
    if spec.task == "classification":
        return forest.ARFClassifier(**params)
    # Linear leaves and distances want comparable scales (unscaled, the regressor's prequential
    # MAE over its first 1500 events was worse than predicting the median).
    scaled = compose.Select(*numeric) | preprocessing.StandardScaler()
    if spec.task == "regression":
        return (scaled + one_hot) | forest.ARFRegressor(**params)
    return (scaled + one_hot) | cluster.DBSTREAM(**params)


def predict_then_learn(spec: UseCase, model: Any, x: dict[str, Any], y: Any = None) -> Any:
    """One prequential step: the model's prediction for ``x`` made before it learns ``(x, y)``.

    Classification gives the positive class's probability, regression the value (0.0 before the
    first learn), clustering the cluster (DBSTREAM assigns only after it has seen the point).
    """
    if spec.task == "classification":
        proba = model.predict_proba_one(x).get(True, 0.0)
        model.learn_one(x, y)
        return proba
    if spec.task == "regression":
        pred = model.predict_one(x)
        model.learn_one(x, y)
        return 0.0 if pred is None else pred
    model.learn_one(x)
    return model.predict_one(x)


def _metric_set(spec: UseCase) -> dict[str, metrics.base.Metric]:
    if spec.task == "classification":
        return {
            "fbeta": metrics.FBeta(beta=2.0),
            "precision": metrics.Precision(),
            "recall": metrics.Recall(),
            "roc_auc": metrics.ROCAUC(),
            "log_loss": metrics.LogLoss(),
        }
    if spec.task == "regression":
        return {"mae": metrics.MAE(), "rmse": metrics.RMSE(), "r2": metrics.R2()}
    return {"ari": metrics.AdjustedRand()}


class Prequential:
    """Overall and recent metrics of the model and of the oracle on the same events."""

    def __init__(self, spec: UseCase) -> None:
        # Plain values, not the spec: a checkpoint pickles this object, and specs hold functions.
        self.task, self.threshold, self.primary = spec.task, spec.decision_threshold, spec.primary_metric
        self.model = _metric_set(spec)
        with warnings.catch_warnings():
            # River 0.26 deprecates wrapping a metric instance, but its class form only serves
            # stats, not metrics; the instance form is the one that works for metrics.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.recent = {n: utils.Rolling(m.clone(), WINDOW) for n, m in self.model.items()}
        self.oracle = _metric_set(spec)
        self.events = 0

    def update(self, y_true: Any, y_pred: Any, oracle_pred: Any) -> None:
        """Classification takes probabilities of the positive class; the threshold is the spec's."""
        self.events += 1
        for group in (self.model, self.recent):
            self._update(group, y_true, y_pred)
        self._update(self.oracle, y_true, oracle_pred)

    def _update(self, group: Mapping[str, Any], y_true: Any, pred: Any) -> None:
        for name, metric in group.items():
            if self.task == "classification" and name in ("fbeta", "precision", "recall"):
                metric.update(bool(y_true), pred >= self.threshold)
            elif self.task == "classification":
                metric.update(bool(y_true), {True: pred, False: 1.0 - pred})
            else:
                metric.update(y_true, pred)

    def report(self) -> dict[str, Any]:
        def values(group: Mapping[str, Any]) -> dict[str, float]:
            return {name: float(m.get()) for name, m in group.items()}

        model, oracle = values(self.model), values(self.oracle)
        share = {}
        for name, value in model.items():
            o = oracle[name]
            if o and not math.isnan(o):
                # for errors (lower is better) the share is oracle / model, so 1.0 is "as good"
                lower_better = name in ("mae", "rmse", "log_loss")
                share[name] = (o / value if value else 0.0) if lower_better else value / o
        return {
            "events": self.events,
            "primary": self.primary,
            "overall": model,
            "recent": values(self.recent),
            "oracle": oracle,
            "share_of_oracle": share,
        }
