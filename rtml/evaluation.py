"""How the champion does on the newest events of the lake, as the UI plots it.

For fraud, the confusion matrix at the spec's threshold and the ROC and precision–recall curves;
for travel time, predicted against actual and the residuals; for segments, the cluster sizes and
a 2-D projection of the events (PCA of the model's own encoded space), coloured by cluster and by
the true segment. The rows are read through the same training SQL and ``feature_frame`` as every
other path, and the numbers come from the same ``registry.evaluate``.

Core module: the lake, the registry, scikit-learn; no Ray, no HTTP.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from rtml import registry, training
from rtml.settings import Settings
from rtml.usecases import UseCase, get

#: Points of a curve or a scatter sent to the UI: enough to draw, few enough to send.
MAX_POINTS = 400
RESIDUAL_BINS = 30


def _thin(n: int, most: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most ``most`` evenly spread items of ``n``, first and last kept."""
    if n <= most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, most).round().astype(int))


def classification_view(
    truth: Sequence[bool], probability: Sequence[float], threshold: float
) -> dict[str, Any]:
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
        keep = _thin(len(fpr))
        out["roc"] = [
            {"fpr": float(fpr[i]), "tpr": float(tpr[i]), "threshold": _finite(roc_t[i])}
            for i in keep
        ]
        precision, recall, pr_t = precision_recall_curve(y, p)
        keep = _thin(len(precision))
        out["pr"] = [
            {
                "recall": float(recall[i]),
                "precision": float(precision[i]),
                "threshold": _finite(pr_t[i]) if i < len(pr_t) else None,
            }
            for i in keep
        ]
    return out


def regression_view(truth: Sequence[float], predicted: Sequence[float]) -> dict[str, Any]:
    y, yhat = np.asarray(truth, dtype=float), np.asarray(predicted, dtype=float)
    keep = _thin(len(y))
    residuals = yhat - y
    counts, edges = np.histogram(residuals, bins=RESIDUAL_BINS)
    return {
        "points": [{"actual": float(y[i]), "predicted": float(yhat[i])} for i in keep],
        "residuals": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
        "mean_residual": float(residuals.mean()) if len(residuals) else 0.0,
    }


def clustering_view(
    encoded: np.ndarray, clusters: Sequence[int], segments: Sequence[str]
) -> dict[str, Any]:
    from sklearn.decomposition import PCA

    sizes = Counter(int(c) for c in clusters)
    out: dict[str, Any] = {"sizes": {str(k): n for k, n in sorted(sizes.items())}}
    if len(encoded) >= 3:
        pca = PCA(n_components=2, random_state=0)
        xy = pca.fit_transform(encoded)
        keep = _thin(len(xy))
        out["projection"] = [
            {
                "x": float(xy[i, 0]),
                "y": float(xy[i, 1]),
                "cluster": int(clusters[i]),
                "segment": str(segments[i]),
            }
            for i in keep
        ]
        out["explained_variance"] = [float(v) for v in pca.explained_variance_ratio_]
    return out


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def evaluate_champion(settings: Settings, usecase: str, rows: int = 2000) -> dict[str, Any]:
    """The champion on the newest ``rows`` events of the lake: its scores beside the oracle's and
    the view of its task. Raises ``LookupError`` when there is no champion or no row yet."""
    spec = get(usecase)
    model = registry.load_champion(settings, usecase)
    if model is None:
        raise LookupError(
            f"no champion of {registry.model_name(usecase)} yet: `rtml train {usecase}`"
        )
    try:
        frame = training.load_frame(settings, usecase, max_rows=rows)
    except ValueError as exc:  # no rows
        raise LookupError(str(exc)) from None
    predictions = model.predict(frame)
    truth = frame[training.truth_column(spec)].tolist()
    out: dict[str, Any] = {
        "usecase": usecase,
        "version": model.version,
        "rows": len(frame),
        "scores": registry.evaluate(spec, predictions, truth, frame),
        "oracle": training.oracle_scores(spec, frame),
        "task": spec.task,
    }
    out[spec.task] = _view(spec, model, frame, predictions, truth)
    return out


def _view(
    spec: UseCase, model: registry.BatchModel, frame: Any, predictions: list, truth: list
) -> dict[str, Any]:
    if spec.task == "classification":
        return classification_view([bool(t) for t in truth], predictions, spec.decision_threshold)
    if spec.task == "regression":
        return regression_view([float(t) for t in truth], predictions)
    encode = model.model[:-1]
    encoded = np.asarray(encode.transform(registry.frame_of(spec, frame)))
    return clustering_view(encoded, predictions, [str(t) for t in truth])
