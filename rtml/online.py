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
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from river import cluster, compose, forest, imblearn, metrics, preprocessing, utils
from river.utils.vectordict import euclidean_distance_dict

from rtml import tree_paths
from rtml.usecases.base import UseCase

#: Events in the "recent" window of each metric.
WINDOW = 1000
#: The silhouette is estimated on every n-th clustered event: its distances to every centre cost
#: a tenth of DBSTREAM's own step, and a sample estimates a mean just as well.
SILHOUETTE_EVERY = 5
#: ROC AUC is exact over this many latest events ("overall" means these for it).
AUC_WINDOW = 100_000


#: Classification parameter (not the forest's): the share of positives the forest learns from.
#: Rare positives (fraud is ~1 %) leave a forest that never says "positive"; under-sampling the
#: negatives to this share fixes that and skips most learn steps, at the price of probabilities
#: biased upwards (the spec's decision threshold is applied to them as they are).
POSITIVE_SHARE = "positive_share"


def build_model(spec: UseCase, overrides: Mapping[str, Any] | None = None) -> Any:
    params = {**spec.online_model, **(overrides or {})}
    numeric = [f.name for f in spec.features if f.kind == "numeric"]
    nominal = [f.name for f in spec.features if f.kind == "categorical"]
    one_hot = compose.Select(*nominal) | preprocessing.OneHotEncoder()
    if spec.task == "classification":
        share = params.pop(POSITIVE_SHARE, None)
        forest_ = forest.ARFClassifier(**params)
        if share is None:
            return forest_
        return imblearn.RandomUnderSampler(
            forest_, desired_dist={False: 1.0 - share, True: share}, seed=params.get("seed")
        )
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


def predict(spec: UseCase, model: Any, x: dict[str, Any]) -> Any:
    """What the model says about ``x`` without learning it (the serving side's question).

    Same shapes as :func:`predict_then_learn`: the positive class's probability, the value
    (0.0 before the first learn), or the cluster (``None`` before the model has any cluster).
    """
    if spec.task == "classification":
        return model.predict_proba_one(x).get(True, 0.0)
    pred = model.predict_one(x)
    if spec.task == "regression":
        return 0.0 if pred is None else pred
    return pred


def predict_many(spec: UseCase, model: Any, xs: list[dict[str, Any]]) -> list[Any]:
    """:func:`predict` for each of ``xs``, in order, sharing the trees' fallback paths between
    them (:mod:`rtml.tree_paths`); the model must not learn meanwhile."""
    with tree_paths.remembering():
        return [predict(spec, model, x) for x in xs]


def _metric_set(spec: UseCase) -> dict[str, metrics.base.Metric]:
    if spec.task == "classification":
        return {
            "fbeta": metrics.FBeta(beta=2.0),
            "precision": metrics.Precision(),
            "recall": metrics.Recall(),
            # exact (rank-based) over a window; River's ROCAUC bins scores into 10 thresholds,
            # too coarse for fraud probabilities that mostly sit below 0.1
            "roc_auc": metrics.RollingROCAUC(window_size=AUC_WINDOW),
            "log_loss": metrics.LogLoss(),
        }
    if spec.task == "regression":
        return {"mae": metrics.MAE(), "rmse": metrics.RMSE(), "r2": metrics.R2()}
    return {"silhouette": Silhouette(), "ari": metrics.AdjustedRand()}


class Silhouette:
    """The simplified (centroid) silhouette, in the usual direction: higher is better, in [-1, 1].

    For each point, ``(b - a) / max(a, b)`` with ``a`` its distance to its own cluster's centre
    and ``b`` to the nearest other centre; the metric is the mean. (River's ``metrics.Silhouette``
    is a ratio of sums where *lower* is better; this one reads like scikit-learn's silhouette,
    which the batch model is scored by.) Its ``update`` takes the point and the centres, so it is
    fed by :meth:`Prequential.update_clustering`, not by the generic path.
    """

    def __init__(self, window: int | None = None) -> None:
        self.values: deque[float] = deque(maxlen=window)
        self.total = 0.0
        self.count = 0

    def update(
        self, x: Mapping[str, float], label: Any, centers: Mapping[Any, Mapping[str, float]]
    ) -> None:
        if label not in centers or len(centers) < 2:
            return
        distances = {k: _distance(x, c) for k, c in centers.items()}
        a = distances.pop(label)
        b = min(distances.values())
        value = (b - a) / max(a, b) if max(a, b) > 0 else 0.0
        if self.values.maxlen is not None and len(self.values) == self.values.maxlen:
            self.total -= self.values[0]
            self.count -= 1
        self.values.append(value)
        self.total += value
        self.count += 1

    def get(self) -> float:
        return self.total / self.count if self.count else 0.0

    def clone(self) -> Silhouette:
        return Silhouette(self.values.maxlen)


def _recent(metric: Any) -> Any:
    """The same metric over the last :data:`WINDOW` events."""
    if isinstance(metric, Silhouette):
        return Silhouette(WINDOW)
    if isinstance(metric, metrics.RollingROCAUC):
        return metrics.RollingROCAUC(window_size=WINDOW)
    return utils.Rolling(metric.clone(), WINDOW)


def _distance(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    return float(euclidean_distance_dict(a, b))  # River's compiled one: absent keys count as 0


ClusterView = tuple[dict[str, float], dict[Any, dict[str, float]]]


def cluster_view(model: Any, x: dict[str, Any]) -> ClusterView:
    """A clustering pipeline's view of ``x``: the point as its clusterer sees it, and the centres."""
    return model.transform_one(x), model[-1].centers


class Prequential:
    """Overall and recent metrics of the model and of the oracle on the same events."""

    def __init__(self, spec: UseCase) -> None:
        # Plain values, not the spec: a checkpoint pickles this object, and specs hold functions.
        self.task, self.threshold, self.primary = (
            spec.task,
            spec.decision_threshold,
            spec.primary_metric,
        )
        self.model = _metric_set(spec)
        with warnings.catch_warnings():
            # River 0.26 deprecates wrapping a metric instance, but its class form only serves
            # stats, not metrics; the instance form is the one that works for metrics.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.recent = {n: _recent(m) for n, m in self.model.items()}
        self.oracle = _metric_set(spec)
        self.events = 0
        #: clustering: running centres of the true segments in the clusterer's space, so the
        #: oracle's silhouette is measured on the same points as the model's
        self.true_centres: dict[Any, dict[str, float]] = {}
        self.true_counts: dict[Any, int] = {}
        self.n_clusters = 0

    def observe(self, model: Any, x: dict[str, Any], y: Any, pred: Any, oracle: Any) -> None:
        """Score one prequential step of ``model`` (what :func:`predict_then_learn` returned)
        beside the oracle's answer; clustering is scored against the true segment."""
        if self.task == "clustering":
            self.update_clustering(oracle, pred, lambda: cluster_view(model, x))
        else:
            self.update(y, pred, oracle)

    def update_clustering(
        self, segment: Any, cluster_: Any, view: Callable[[], ClusterView]
    ) -> None:
        """One clustered event: its true segment, its cluster, and (called only for the sampled
        events, see :data:`SILHOUETTE_EVERY`) the point as the clusterer sees it and the centres."""
        self.events += 1
        for group in (self.model, self.recent):
            group["ari"].update(segment, cluster_)
        self.oracle["ari"].update(segment, segment)
        if self.events % SILHOUETTE_EVERY:
            return
        x, centers = view()
        self.n_clusters = len(centers)
        n = self.true_counts.get(segment, 0) + 1
        self.true_counts[segment] = n
        centre = self.true_centres.setdefault(segment, {})
        for k in centre.keys() | x.keys():
            old = centre.get(k, 0.0)
            centre[k] = old + (x.get(k, 0.0) - old) / n
        for group in (self.model, self.recent):
            group["silhouette"].update(x, cluster_, centers)
        self.oracle["silhouette"].update(x, segment, self.true_centres)

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
        extra = {"n_clusters": self.n_clusters} if self.task == "clustering" else {}
        return {
            **extra,
            "events": self.events,
            "primary": self.primary,
            "overall": model,
            "recent": values(self.recent),
            "oracle": oracle,
            "share_of_oracle": share,
        }
