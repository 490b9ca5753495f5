"""The serving metrics, with exactly the names of docs/metrics.md (Serving section).

Ray exports them with a ``ray_`` prefix (and ``_total`` for counters). Created once per replica
process: Ray metrics are registered by name, so a second instance would only alias the first.
"""

from __future__ import annotations

from functools import lru_cache

from ray.util import metrics

#: Seconds: from sub-millisecond (a cached batch answer) to a slow list of 1000 events.
LATENCY_BOUNDARIES = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]


class ServeMetrics:
    def __init__(self) -> None:
        kind = ("usecase", "kind")
        self.latency = metrics.Histogram(
            "rtml_serve_prediction_latency_s",
            "seconds to answer one predict request",
            boundaries=LATENCY_BOUNDARIES,
            tag_keys=kind,
        )
        self.predictions = metrics.Counter(
            "rtml_serve_predictions", "events predicted", tag_keys=kind
        )
        self.cache = metrics.Counter(
            "rtml_serve_cache_requests",
            "batch prediction cache lookups",
            tag_keys=("usecase", "kind", "result"),
        )
        self.model_version = metrics.Gauge(
            "rtml_serve_model_version", "version of the model being served", tag_keys=kind
        )
        self.swaps = metrics.Counter(
            "rtml_serve_model_swaps", "times a new model version was swapped in", tag_keys=kind
        )
        self.champion_metric = metrics.Gauge(
            "rtml_serve_champion_metric",
            "the champion's holdout metrics",
            tag_keys=("usecase", "kind", "metric"),
        )
        self.refused = metrics.Counter(
            "rtml_serve_models_refused",
            "champion versions refused: their files fail the signature",
            tag_keys=kind,
        )
        self.errors = metrics.Counter(
            "rtml_serve_errors",
            "requests answered with an error",
            tag_keys=("usecase", "kind", "status"),
        )


@lru_cache(maxsize=1)
def serve_metrics() -> ServeMetrics:
    return ServeMetrics()
