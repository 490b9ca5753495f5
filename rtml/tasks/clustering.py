"""Clustering: which segment does an event's entity fall in? Predictions are cluster ids.

Online, River's DBSTREAM over standardized numerics and one-hot categoricals; in batch,
scikit-learn's KMeans. Both are judged by the silhouette (higher is better, in [-1, 1]) and,
where the world's true segment travels beside the event, by the adjusted Rand index against it.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import Field

from rtml.online.prequential import WINDOW, Prequential
from rtml.tasks.base import Fit, Flavor, OnlineMetric, Predicted, Task, thin

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from rtml.usecases.base import UseCase

#: The silhouette is estimated on every n-th clustered event: its distances to every centre cost
#: a tenth of DBSTREAM's own step, and a sample estimates a mean just as well.
SILHOUETTE_EVERY = 5
#: Silhouette is quadratic in the number of points; a fixed sample keeps it cheap and stable.
SILHOUETTE_SAMPLE = 3000
#: KMeans is fitted on at most this many rows: Lloyd's iterations are linear in rows and the
#: centres of a few segments settle long before 50k points.
KMEANS_MAX_ROWS = 50_000


@dataclass(frozen=True)
class Clustering(Task):
    name: ClassVar[str] = "clustering"
    supervised: ClassVar[bool] = False
    flavor: ClassVar[Flavor] = "sklearn"
    quick_params: ClassVar[dict[str, Any]] = {"k": 4, "scaling": "standard"}
    explained_as: ClassVar[str] = "share of the squared distance to the assigned centre"
    primary_metric: str = "silhouette"

    # -- online --------------------------------------------------------------------------------
    def online_model(self, spec: UseCase, params: dict[str, Any]) -> Any:
        """DBSTREAM's distances want comparable scales: numerics standardized, categoricals
        one-hot."""
        from river import cluster, compose, preprocessing

        scaled = compose.Select(*spec.numeric_names) | preprocessing.StandardScaler()
        one_hot = compose.Select(*spec.categorical_names) | preprocessing.OneHotEncoder()
        return (scaled + one_hot) | cluster.DBSTREAM(**params)

    def predict(self, model: Any, x: dict[str, Any]) -> Any:
        """The cluster (``None`` before the model has any cluster)."""
        return model.predict_one(x)

    def predict_then_learn(self, model: Any, x: dict[str, Any], y: Any) -> Any:
        """DBSTREAM assigns a point only after it has seen it: learn, then predict."""
        model.learn_one(x)
        return model.predict_one(x)

    def online_metrics(self) -> dict[str, OnlineMetric]:
        from river import metrics

        return {"silhouette": Silhouette(), "ari": metrics.AdjustedRand()}

    def prequential(
        self, has_oracle: bool = True, has_ceiling: bool = False, window: int = WINDOW
    ) -> Prequential:
        return ClusteringPrequential(self, has_oracle, window=window)

    def shards_asked(self, shards: int) -> list[int]:
        """Each shard clusters on its own, so cluster ids of two shards are not comparable: the
        first shard answers."""
        return [0]

    def combine(self, values: Sequence[Any]) -> Any:
        return values[0]

    # -- batch ---------------------------------------------------------------------------------
    def search_space(self) -> dict[str, Any]:
        from ray import tune

        return {"k": tune.randint(2, 9), "scaling": tune.choice(["standard", "robust", "none"])}

    def pipeline(self, spec: UseCase, k: int, scaling: str, seed: int = 0) -> Any:
        """One-hot categoricals, numerics scaled (``standard``, ``robust`` or ``none``), KMeans."""
        from sklearn.cluster import KMeans
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, RobustScaler, StandardScaler

        scalers = {"standard": StandardScaler(), "robust": RobustScaler(), "none": "passthrough"}
        encode = ColumnTransformer(
            [
                ("num", scalers[scaling], spec.numeric_names),
                (
                    "cat",
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                    spec.categorical_names,
                ),
            ]
        )
        kmeans = KMeans(n_clusters=k, n_init=3, random_state=seed)
        return Pipeline([("encode", encode), ("kmeans", kmeans)])

    def fit(self, spec: UseCase, params: Mapping[str, Any], train: pd.DataFrame, run: Fit) -> Any:
        from rtml.batch.frames import frame_of

        rows = train
        if len(train) > KMEANS_MAX_ROWS:
            rows = train.sample(KMEANS_MAX_ROWS, random_state=run.seed)
        model = self.pipeline(spec, int(params["k"]), str(params["scaling"]), run.seed)
        return model.fit(frame_of(spec, rows))

    def batch_predict(self, model: Any, frame: pd.DataFrame) -> list[Any]:
        return [int(c) for c in model.predict(frame)]

    @property
    def needs_points(self) -> bool:
        return True

    def scores(
        self, spec: UseCase, predictions: Sequence[Any], truth: Sequence[Any], x: np.ndarray | None
    ) -> dict[str, float]:
        from sklearn.metrics import adjusted_rand_score, silhouette_score

        if x is None:
            raise ValueError("clustering scores need the points")
        labels = list(predictions)
        n = min(len(labels), SILHOUETTE_SAMPLE)
        return {
            "silhouette": float(silhouette_score(x, labels, sample_size=n, random_state=0)),
            "ari": float(adjusted_rand_score(list(truth), labels)),
        }

    def baselines(self, truth: Sequence[Any], rng: random.Random) -> dict[str, Sequence[Any]]:
        shuffled = list(truth)
        rng.shuffle(shuffled)
        return {"shuffled_segments": shuffled}

    def explain(self, spec: UseCase, model: Any, frame: pd.DataFrame) -> dict[str, float]:
        """Each feature's share of the squared distance from the row to the centre it was
        assigned to, in the model's own (scaled, one-hot) space, one-hot columns summed back to
        their feature. Small means "typical of its cluster", large means "pulls it away"."""
        encode, kmeans = model[:-1], model[-1]
        x = np.asarray(encode.transform(frame))[0]
        centre = kmeans.cluster_centers_[int(kmeans.predict(x.reshape(1, -1))[0])]
        return _group_by_feature(
            spec.feature_names, encode.get_feature_names_out(), (x - centre) ** 2
        )

    def feature_importance(self, spec: UseCase, model: Any) -> dict[str, float]:
        """The spread (variance) of the cluster centres along each feature, one-hot columns
        summed back, as shares of one: a feature on which all centres agree separates nothing."""
        encode, kmeans = model[:-1], model[-1]
        spread = kmeans.cluster_centers_.var(axis=0)
        grouped = _group_by_feature(spec.feature_names, encode.get_feature_names_out(), spread)
        total = sum(grouped.values()) or 1.0
        return {name: v / total for name, v in grouped.items()}

    def evaluation_view(self, spec: UseCase, model: Any, rows: Predicted) -> dict[str, Any]:
        from rtml.batch.frames import frame_of

        encoded = np.asarray(model[:-1].transform(frame_of(spec, rows.frame)))
        return clustering_view(encoded, rows.predictions, [str(t) for t in rows.truth])

    # -- serving and storage ---------------------------------------------------------------------
    def answer(self, spec: UseCase, value: Any) -> dict[str, Any]:
        return {"cluster": None if value is None else int(value)}

    def answer_fields(self, spec: UseCase) -> dict[str, tuple[Any, Any]]:
        return {"cluster": (int | None, Field(description="the cluster id (None: no cluster yet)"))}

    def prediction_type(self) -> pa.DataType:
        import pyarrow as pa

        return pa.int64()

    def truth_type(self) -> pa.DataType:
        import pyarrow as pa

        return pa.string()


class Silhouette:
    """The simplified (centroid) silhouette, in the usual direction: higher is better, in [-1, 1].

    For each point, ``(b - a) / max(a, b)`` with ``a`` its distance to its own cluster's centre
    and ``b`` to the nearest other centre; the metric is the mean. (River's ``metrics.Silhouette``
    is a ratio of sums where *lower* is better; this one reads like scikit-learn's silhouette,
    which the batch model is scored by.) Its ``update`` takes the point and the centres, so it is
    fed by :class:`ClusteringPrequential`, not by the generic path.
    """

    bigger_is_better = True

    def __init__(self, window: int | None = None) -> None:
        self.values: deque[float] = deque(maxlen=window)
        self.total = 0.0
        self.count = 0

    def update(
        self, x: dict[str, float], label: Any, centers: Mapping[Any, dict[str, float]]
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

    def windowed(self, window: int) -> Silhouette:
        return Silhouette(window)


def _distance(a: dict[str, float], b: dict[str, float]) -> float:
    """River's compiled distance (absent keys count as 0); it takes real dicts, no Mapping."""
    from river.utils.vectordict import euclidean_distance_dict

    return float(euclidean_distance_dict(a, b))


ClusterView = tuple[dict[str, float], dict[Any, dict[str, float]]]


def cluster_view(model: Any, x: dict[str, Any]) -> ClusterView:
    """A clustering pipeline's view of ``x``: the point as its clusterer sees it and the centres."""
    return model.transform_one(x), model[-1].centers


class ClusteringPrequential(Prequential):
    """Clusters are scored against the true segment (the oracle's answer: ARI) and by the
    silhouette of the point among the clusterer's centres, which needs the model's view of the
    point; the oracle's silhouette is measured on the same points, around the running centres
    of the true segments."""

    def __init__(
        self, task: Task, has_oracle: bool = True, has_ceiling: bool = False, window: int = WINDOW
    ) -> None:
        # the true segment is both the oracle and the ceiling
        super().__init__(task, has_oracle, window=window)
        #: running centres of the true segments in the clusterer's space
        self.true_centres: dict[Any, dict[str, float]] = {}
        self.true_counts: dict[Any, int] = {}
        self.n_clusters = 0

    def observe(
        self, model: Any, x: dict[str, Any], y: Any, pred: Any, oracle: Any, ceiling: Any = None
    ) -> None:
        self.update_clustering(oracle, pred, lambda: cluster_view(model, x))

    def update_clustering(
        self, segment: Any, cluster_: Any, view: Callable[[], ClusterView]
    ) -> None:
        """One clustered event: its true segment (``None`` where none is known), its cluster,
        and (called only for the sampled events, see :data:`SILHOUETTE_EVERY`) the point as the
        clusterer sees it and the centres."""
        self.events += 1
        if segment is not None:
            for group in (self.model, self.recent):
                group["ari"].update(segment, cluster_)
            if self.oracle is not None:
                self.oracle["ari"].update(segment, segment)
            for reference in self.recent_references.values():
                reference["ari"].update(segment, segment)
        if self.events % SILHOUETTE_EVERY:
            return
        x, centers = view()
        self.n_clusters = len(centers)
        for group in (self.model, self.recent):
            group["silhouette"].update(x, cluster_, centers)
        if segment is None or self.oracle is None:
            return
        n = self.true_counts.get(segment, 0) + 1
        self.true_counts[segment] = n
        centre = self.true_centres.setdefault(segment, {})
        for k in centre.keys() | x.keys():
            old = centre.get(k, 0.0)
            centre[k] = old + (x.get(k, 0.0) - old) / n
        self.oracle["silhouette"].update(x, segment, self.true_centres)

    def extra(self) -> dict[str, Any]:
        return {"n_clusters": self.n_clusters}


def clustering_view(
    encoded: np.ndarray, clusters: Sequence[int], segments: Sequence[str]
) -> dict[str, Any]:
    """Cluster sizes and a 2-D projection (PCA of the model's own encoded space), coloured by
    cluster and by the true segment."""
    from sklearn.decomposition import PCA

    sizes = Counter(int(c) for c in clusters)
    out: dict[str, Any] = {"sizes": {str(k): n for k, n in sorted(sizes.items())}}
    if len(encoded) >= 3:
        pca = PCA(n_components=2, random_state=0)
        xy = pca.fit_transform(encoded)
        out["projection"] = [
            {
                "x": float(xy[i, 0]),
                "y": float(xy[i, 1]),
                "cluster": int(clusters[i]),
                "segment": str(segments[i]),
            }
            for i in thin(len(xy))
        ]
        out["explained_variance"] = [float(v) for v in pca.explained_variance_ratio_]
    return out


def _group_by_feature(
    names: Sequence[str], columns: Sequence[str], values: np.ndarray
) -> dict[str, float]:
    """Sum encoded columns (``num__amount``, ``cat__currency_EUR``) back to their feature."""
    out = dict.fromkeys(names, 0.0)
    for column, value in zip(columns, values, strict=True):
        out[_feature_of(column, names)] += float(value)
    return out


def _feature_of(column: str, names: Sequence[str]) -> str:
    bare = column.split("__", 1)[-1]
    # The longest name that prefixes the column: "device_type_mobile" is device_type's.
    matches = [n for n in names if bare == n or bare.startswith(f"{n}_")]
    if not matches:
        raise ValueError(f"encoded column {column!r} belongs to no feature")
    return max(matches, key=len)
