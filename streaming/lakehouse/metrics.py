"""The lakehouse job's Prometheus series (``prometheus_client``, served on
``RTML_LAKE_METRICS_PORT``; listed in docs/metrics.md, alerted on by monitoring/rules/)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

LAKE_ROWS = Counter("rtml_lake_rows", "Rows landed in bronze", ["usecase"])
LAKE_QUARANTINED = Counter("rtml_lake_quarantined", "Rows landed in quarantine", ["usecase"])
LAKE_LAST_BATCH = Gauge(
    "rtml_lake_last_batch_timestamp_seconds",
    "Unix time of the last micro-batch that landed rows (the job's start until the first)",
    ["usecase"],
)
LAKE_INGEST_LAG = Gauge(
    "rtml_lake_ingest_lag_seconds",
    "Seconds from the Kafka timestamp of the newest record of the last batch to its landing",
    ["usecase"],
)
LAKE_OFFSETS_BEHIND = Gauge(
    "rtml_lake_offsets_behind",
    "Records in the topic not yet landed, at the last progress",
    ["usecase"],
)
LAKE_QUERY_ACTIVE = Gauge("rtml_lake_query_active", "1 while the streaming query runs", ["usecase"])
