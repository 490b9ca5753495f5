"""A learner's Prometheus series, through Ray's own metrics API (names: ``docs/metrics.md``).

Ray exports them from the worker that runs the actor (with a ``ray_`` prefix), and its
service-discovery file lets Prometheus find every node. Counters move once per micro-batch and
gauges once per second, so the hot loop pays nothing per event.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ray.util import metrics

#: Seconds per event of one micro-batch: 0.1 ms (River's predict) .. 1 s (something is wrong).
PER_EVENT_BOUNDARIES = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0]
CHECKPOINT_BOUNDARIES = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]


class LearnerMetrics:
    def __init__(self, usecase: str, shard: int) -> None:
        base = ("usecase", "shard")
        self.tags = {"usecase": usecase, "shard": str(shard)}
        self._last_checkpoint: tuple[int, int, float] | None = None
        self._last_snapshot: float | None = None
        self.learned = metrics.Counter(
            "rtml_learner_events_learned", "Events learned (predicted, then learned)", base
        )
        self.dead_lettered = metrics.Counter(
            "rtml_learner_events_dead_lettered",
            "Events sent to the dead-letter topic",
            (*base, "kind"),
        )
        self.batch_latency = metrics.Histogram(
            "rtml_learner_batch_latency_s",
            "Seconds per event of a micro-batch",
            PER_EVENT_BOUNDARIES,
            base,
        )
        self.lag = metrics.Gauge(
            "rtml_learner_consumer_lag", "Events behind the partition's end", (*base, "partition")
        )
        self.checkpoint_duration = metrics.Histogram(
            "rtml_learner_checkpoint_duration_s",
            "Seconds to write a checkpoint",
            CHECKPOINT_BOUNDARIES,
            base,
        )
        self.checkpoint_failures = metrics.Counter(
            "rtml_learner_checkpoint_failures",
            "Checkpoints that failed (Redis or the broker away)",
            base,
        )
        self.checkpoint_bytes = metrics.Gauge(
            "rtml_learner_checkpoint_bytes", "Latest checkpoint size", base
        )
        self.checkpoint_version = metrics.Gauge(
            "rtml_learner_checkpoint_version", "Latest checkpoint version", base
        )
        self.checkpoint_time = metrics.Gauge(
            "rtml_learner_checkpoint_timestamp_s", "Unix time of the latest checkpoint", base
        )
        self.snapshot_time = metrics.Gauge(
            "rtml_learner_snapshot_timestamp_s", "Unix time of the latest MLflow snapshot", base
        )
        self.entities_held = metrics.Gauge(
            "rtml_learner_entities", "Entities the learner's memory holds", (*base, "field")
        )
        self.entity_observations = metrics.Gauge(
            "rtml_learner_entity_observations",
            "Earlier events the learner's entity memory holds",
            (*base, "field"),
        )
        self.entities_too_late = metrics.Gauge(
            "rtml_learner_entity_events_too_late",
            "Events recorded later than the lateness allowed (features may differ from the lake's)",
            base,
        )
        self.entity_bytes = metrics.Gauge(
            "rtml_learner_entity_bytes_per_entity",
            "Pickled bytes of the entity memory per entity, as of its latest measure",
            base,
        )
        self.entity_write_failures = metrics.Counter(
            "rtml_learner_entity_store_failures",
            "Writes of touched entity memories to the online store that failed",
            base,
        )
        self.model_metric = metrics.Gauge(
            "rtml_online_metric",
            "Prequential metrics of the online model",
            (*base, "metric", "window"),
        )

    def batch(
        self, learned: int, invalid: int, model_errors: int, seconds: float, events: int
    ) -> None:
        if learned:
            self.learned.inc(learned, self.tags)
        if invalid:
            self.dead_lettered.inc(invalid, {**self.tags, "kind": "invalid"})
        if model_errors:
            self.dead_lettered.inc(model_errors, {**self.tags, "kind": "model_error"})
        if events:
            self.batch_latency.observe(seconds / events, self.tags)

    def checkpoint(self, seconds: float, size: int, version: int, when: float) -> None:
        self.checkpoint_duration.observe(seconds, self.tags)
        self._last_checkpoint = (size, version, when)
        self._set_checkpoint_gauges()

    def _set_checkpoint_gauges(self) -> None:
        if self._last_checkpoint is not None:
            size, version, when = self._last_checkpoint
            self.checkpoint_bytes.set(size, self.tags)
            self.checkpoint_version.set(version, self.tags)
            self.checkpoint_time.set(when, self.tags)
        if self._last_snapshot is not None:
            self.snapshot_time.set(self._last_snapshot, self.tags)

    def checkpoint_failed(self) -> None:
        self.checkpoint_failures.inc(1, self.tags)

    def snapshot(self, when: float) -> None:
        self._last_snapshot = when
        self.snapshot_time.set(when, self.tags)

    def gauges(self, lag: Mapping[int, int], report: Mapping[str, Any]) -> None:
        """Every second: Ray exports a gauge only for a short while after its last set, so the
        checkpoint's gauges are set again too (an idle learner's checkpoint must look old, not
        vanish — the stale-checkpoint alert reads its age)."""
        self._set_checkpoint_gauges()
        for partition, behind in lag.items():
            self.lag.set(behind, {**self.tags, "partition": str(partition)})
        windows = ("overall", "recent", "oracle", "share_of_oracle", "share_of_ceiling")
        for window in (*windows, "recent_share_of_oracle", "recent_share_of_ceiling"):
            for name, value in (report.get(window) or {}).items():  # no oracle: None
                if isinstance(value, float | int) and math.isfinite(value):
                    self.model_metric.set(value, {**self.tags, "metric": name, "window": window})
        if "n_clusters" in report:
            self.model_metric.set(
                report["n_clusters"], {**self.tags, "metric": "n_clusters", "window": "overall"}
            )

    def entity_write_failed(self) -> None:
        self.entity_write_failures.inc(1, self.tags)

    def entities(self, report: Mapping[str, Any]) -> None:
        """Every second, beside :meth:`gauges`: the entity memory's size (``size()``)."""
        for name, value in report["held"].items():
            if name.endswith("_events"):
                tags = {**self.tags, "field": name.removesuffix("_events")}
                self.entity_observations.set(value, tags)
            else:
                self.entities_held.set(value, {**self.tags, "field": name})
        self.entities_too_late.set(report["too_late"], self.tags)
        if report.get("bytes_per_entity") is not None:
            self.entity_bytes.set(report["bytes_per_entity"], self.tags)
