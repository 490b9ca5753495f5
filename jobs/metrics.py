"""The sweeps' Prometheus series (names: docs/metrics.md), through Ray's own metrics API from the
job's driver, which the node's metrics agent exports like any worker's."""

from __future__ import annotations

import time
from functools import lru_cache

from ray.util import metrics

#: Seconds: a quick sweep on little data (~30 s) to a long one on a big table (2 h).
DURATION_BOUNDARIES: list[float] = [30, 60, 120, 300, 600, 1200, 1800, 3600, 7200]
#: Ray pushes a worker's metrics to its node's agent every few seconds
#: (``metrics_report_interval_ms``, 10 s by default): a driver that exits at once would take its
#: last values with it.
EXPORT_WAIT_S = 12.0


class SweepMetrics:
    def __init__(self) -> None:
        tags = ("usecase", "outcome")
        self.duration = metrics.Histogram(
            "rtml_sweep_duration_s",
            "seconds one Tune sweep took, start to promotion decision",
            boundaries=DURATION_BOUNDARIES,
            tag_keys=tags,
        )
        self.sweeps = metrics.Counter("rtml_sweeps", "sweeps finished, by outcome", tag_keys=tags)

    def record(self, usecase: str, outcome: str, seconds: float) -> None:
        """``outcome``: ``promoted`` (a new champion), ``kept`` (the old one stays), ``failed``."""
        tags = {"usecase": usecase, "outcome": outcome}
        self.duration.observe(seconds, tags=tags)
        self.sweeps.inc(1, tags=tags)


@lru_cache(maxsize=1)
def sweep_metrics() -> SweepMetrics:
    """Once per process: Ray registers metrics by name."""
    return SweepMetrics()


def wait_for_export() -> None:
    time.sleep(EXPORT_WAIT_S)
