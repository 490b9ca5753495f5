"""Scores of predictions against the truth, and the oracle's scores beside trivial baselines.

The oracle is the best reachable predictor (see each spec); reporting a model's score as a share
of the oracle's on the same events says how much of the learnable signal it has found.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.feature_extraction import DictVectorizer
from sklearn.metrics import (
    adjusted_rand_score,
    fbeta_score,
    mean_absolute_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    root_mean_squared_error,
    silhouette_score,
)
from sklearn.preprocessing import StandardScaler

from rtml.usecases.base import UseCase

#: F-beta's beta for fraud: missing a fraud costs more than reviewing a false alarm.
FRAUD_BETA = 2.0
#: Silhouette is quadratic in the number of points; a fixed sample keeps it cheap and stable.
SILHOUETTE_SAMPLE = 3000

Record = tuple[Mapping[str, Any], Mapping[str, Any]]  # (event as on the wire, truth)


def feature_matrix(spec: UseCase, events: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Features of events as a standardized numeric matrix (categoricals one-hot)."""
    rows = [spec.features_of(spec.parse(e)) for e in events]
    return StandardScaler().fit_transform(DictVectorizer(sparse=False).fit_transform(rows))


def classification_scores(
    y: Sequence[bool], proba: Sequence[float], threshold: float
) -> dict[str, float]:
    predicted = [p >= threshold for p in proba]
    return {
        "fbeta": float(fbeta_score(y, predicted, beta=FRAUD_BETA, zero_division=0)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(y, proba)),
    }


def regression_scores(y: Sequence[float], predicted: Sequence[float]) -> dict[str, float]:
    return {
        "mae": float(mean_absolute_error(y, predicted)),
        "rmse": float(root_mean_squared_error(y, predicted)),
        "r2": float(r2_score(y, predicted)),
    }


def clustering_scores(
    x: np.ndarray, labels: Sequence[Any], truth: Sequence[Any], seed: int = 0
) -> dict[str, float]:
    n = min(len(labels), SILHOUETTE_SAMPLE)
    return {
        "silhouette": float(silhouette_score(x, labels, sample_size=n, random_state=seed)),
        "ari": float(adjusted_rand_score(truth, labels)),
    }


def oracle_report(spec: UseCase, records: Sequence[Record], seed: int = 0) -> dict[str, dict]:
    """The oracle's scores and those of the trivial baselines, on the same events."""
    events = [e for e, _ in records]
    oracle = [spec.oracle(spec.truth.model_validate(t)) for _, t in records]
    rng = random.Random(seed)
    if spec.task == "classification":
        y = [bool(e[spec.target]) for e in events]  # type: ignore[index]
        prior = sum(y) / len(y)
        return {
            "oracle": classification_scores(y, oracle, spec.decision_threshold),  # type: ignore[arg-type]
            "always_positive": classification_scores(y, [1.0] * len(y), spec.decision_threshold),
            "prior_noise": classification_scores(
                y, [prior * rng.random() for _ in y], spec.decision_threshold
            ),
        }
    if spec.task == "regression":
        y = [float(e[spec.target]) for e in events]  # type: ignore[index]
        return {
            "oracle": regression_scores(y, oracle),  # type: ignore[arg-type]
            "median": regression_scores(y, [float(np.median(y))] * len(y)),
        }
    x = feature_matrix(spec, events)
    shuffled = list(oracle)
    rng.shuffle(shuffled)
    return {
        "oracle": clustering_scores(x, oracle, oracle, seed),
        "shuffled_segments": clustering_scores(x, shuffled, oracle, seed),
    }
