"""Binary classification: is an event positive (a fraud)? Predictions are the positive class's
probability; the decision is that probability at or above the spec's threshold.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from rtml.tasks.base import OnlineMetric, Predicted, thin
from rtml.tasks.boosting import Boosted

if TYPE_CHECKING:
    import pyarrow as pa

    from rtml.usecases.base import UseCase

#: ROC AUC is exact over this many latest events ("overall" means these for it). River's
#: ``ROCAUC`` bins scores into 10 thresholds, too coarse for probabilities that mostly sit below
#: 0.1; ``RollingROCAUC`` is rank-based.
AUC_WINDOW = 100_000


@dataclass(frozen=True)
class Classification(Boosted):
    """``beta`` weighs recall against precision in the primary metric F-beta; the decision
    threshold is the probability at or above which the answer is "positive" (for a calibrated
    probability, F-beta's best threshold sits near F*/(1 + beta²), well below 0.5 when beta > 1).
    ``positive_share``, when set, under-samples the negatives the online forest learns from so
    that positives are that share of them (rare positives leave a forest that never says
    "positive"), at the price of probabilities biased upwards."""

    name: ClassVar[str] = "classification"
    loss: ClassVar[str] = "Logloss"
    primary_metric: str = "fbeta"
    beta: float = 1.0
    decision_threshold: float = 0.5
    positive_share: float | None = None

    #: The online learner: an adaptive random forest, or a logistic regression over standardized
    #: numerics and one-hot categoricals (where the odds are additive in what the features say,
    #: it learns in a few thousand events what a forest needs tens of thousands for).
    online: Literal["forest", "linear"] = "forest"

    # -- online --------------------------------------------------------------------------------
    def online_model(self, spec: UseCase, params: dict[str, Any]) -> Any:
        from river import compose, forest, imblearn, linear_model, optim, preprocessing

        if self.online == "linear":
            scaled = compose.Select(*spec.numeric_names) | preprocessing.StandardScaler()
            one_hot = compose.Select(*spec.categorical_names) | preprocessing.OneHotEncoder()
            regression = linear_model.LogisticRegression(
                optimizer=optim.SGD(params.get("learning_rate", 0.02)), l2=params.get("l2", 0.0)
            )
            return (scaled + one_hot) | regression
        share = params.pop("positive_share", self.positive_share)
        forest_ = forest.ARFClassifier(**params)
        if share is None:
            return forest_
        return imblearn.RandomUnderSampler(
            forest_, desired_dist={False: 1.0 - share, True: share}, seed=params.get("seed")
        )

    def predict(self, model: Any, x: dict[str, Any]) -> float:
        return float(model.predict_proba_one(x).get(True, 0.0))

    def predict_then_learn(self, model: Any, x: dict[str, Any], y: Any) -> float:
        proba = self.predict(model, x)
        model.learn_one(x, y)
        return proba

    def online_metrics(self) -> dict[str, OnlineMetric]:
        from river import metrics

        return {
            "fbeta": metrics.FBeta(beta=self.beta),
            "precision": metrics.Precision(),
            "recall": metrics.Recall(),
            "roc_auc": metrics.RollingROCAUC(window_size=AUC_WINDOW),
            "log_loss": metrics.LogLoss(),
        }

    def update(self, metric: Any, y: Any, prediction: Any) -> None:
        """A metric of decisions (``requires_labels``) gets the decision at the threshold, one of
        probabilities gets them."""
        if metric.requires_labels:
            metric.update(bool(y), prediction >= self.decision_threshold)
        else:
            metric.update(bool(y), {True: prediction, False: 1.0 - prediction})

    def combine(self, values: Sequence[Any]) -> float:
        return sum(float(v) for v in values) / len(values)

    # -- batch ---------------------------------------------------------------------------------
    def search_space(self) -> dict[str, Any]:
        from ray import tune

        return {
            **super().search_space(),
            "class_weights": tune.choice(["", "SqrtBalanced", "Balanced"]),
        }

    def catboost(self, params: Mapping[str, Any], common: dict[str, Any]) -> Any:
        """Log loss: F-beta at a fixed threshold needs calibrated probabilities, which log loss
        rewards; ``class_weights`` ``SqrtBalanced`` trades calibration for recall."""
        from catboost import CatBoostClassifier

        weights = params.get("class_weights") or None
        return CatBoostClassifier(loss_function=self.loss, auto_class_weights=weights, **common)

    def predict_values(self, model: Any, data: Any, **options: Any) -> list[Any]:
        return [float(p) for p in model.predict_proba(data, **options)[:, 1]]

    def scores(
        self, spec: UseCase, predictions: Sequence[Any], truth: Sequence[Any], x: np.ndarray | None
    ) -> dict[str, float]:
        from sklearn.metrics import fbeta_score, precision_score, recall_score, roc_auc_score

        y = [bool(t) for t in truth]
        said = [p >= self.decision_threshold for p in predictions]
        return {
            "fbeta": float(fbeta_score(y, said, beta=self.beta, zero_division=0)),
            "precision": float(precision_score(y, said, zero_division=0)),
            "recall": float(recall_score(y, said, zero_division=0)),
            "roc_auc": float(roc_auc_score(y, list(predictions))),
        }

    def baselines(self, truth: Sequence[Any], rng: random.Random) -> dict[str, Sequence[Any]]:
        prior = sum(bool(t) for t in truth) / len(truth)
        return {
            "always_positive": [1.0] * len(truth),
            "prior_noise": [prior * rng.random() for _ in truth],
        }

    def evaluation_view(self, spec: UseCase, model: Any, rows: Predicted) -> dict[str, Any]:
        truth = [bool(t) for t in rows.truth]
        return classification_view(truth, rows.predictions, self.decision_threshold)

    # -- serving and storage ---------------------------------------------------------------------
    def answer(self, spec: UseCase, value: Any) -> dict[str, Any]:
        probability = float(value)
        return {spec.label: probability >= self.decision_threshold, "probability": probability}

    def answer_fields(self, spec: UseCase) -> dict[str, tuple[Any, Any]]:
        said = f"probability >= {self.decision_threshold}"
        return {
            spec.label: (bool, Field(description=f"the decision: {said}")),
            "probability": (float, Field(ge=0, le=1, description="of the positive class")),
        }

    def prediction_type(self) -> pa.DataType:
        import pyarrow as pa

        return pa.float64()

    def truth_type(self) -> pa.DataType:
        import pyarrow as pa

        return pa.bool_()

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "decision_threshold": self.decision_threshold,
            "beta": self.beta,
        }


def classification_view(
    truth: Sequence[bool], probability: Sequence[float], threshold: float
) -> dict[str, Any]:
    """The confusion matrix at the threshold, and the ROC and precision–recall curves."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    y, p = np.asarray(truth, dtype=bool), np.asarray(probability, dtype=float)
    said = p >= threshold
    confusion = {
        "tp": int((said & y).sum()),
        "fp": int((said & ~y).sum()),
        "fn": int((~said & y).sum()),
        "tn": int((~said & ~y).sum()),
    }
    out: dict[str, Any] = {
        "threshold": threshold,
        "confusion": confusion,
        "positives": int(y.sum()),
    }
    if 0 < y.sum() < len(y):  # curves need both classes
        fpr, tpr, roc_t = roc_curve(y, p)
        out["roc"] = [
            {"fpr": float(fpr[i]), "tpr": float(tpr[i]), "threshold": _finite(roc_t[i])}
            for i in thin(len(fpr))
        ]
        precision, recall, pr_t = precision_recall_curve(y, p)
        out["pr"] = [
            {
                "recall": float(recall[i]),
                "precision": float(precision[i]),
                "threshold": _finite(pr_t[i]) if i < len(pr_t) else None,
            }
            for i in thin(len(precision))
        ]
    return out


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
