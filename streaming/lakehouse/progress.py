"""How far the query has come for each use case: Kafka's end offsets, the records not yet landed,
the status that the stack's health check reads and the series Prometheus scrapes."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyspark.sql.streaming import StreamingQuery

from rtml.kafka import consumer_config
from rtml.settings import Settings
from streaming.lakehouse.metrics import LAKE_OFFSETS_BEHIND, LAKE_QUERY_ACTIVE
from streaming.lakehouse.query import BatchWriter

TopicEnds = dict[str, dict[int, int]]  # topic → partition → end offset (the next to be written)


class KafkaEnds:
    """The topics' end offsets, asked of Kafka every ``every_s`` seconds.

    Spark's own ``latestOffset`` is the end seen when the last batch was planned: a job that hangs
    would keep reporting itself caught up. Kafka's end keeps moving, so the gap shows the stall.
    """

    def __init__(self, settings: Settings, topics: Sequence[str], every_s: float = 5.0) -> None:
        from confluent_kafka import Consumer

        self._consumer = Consumer(consumer_config(settings, "rtml-lakehouse-ends"))
        self.topics, self.every_s = list(topics), every_s
        self.ends: TopicEnds = {}
        self._next = 0.0

    def refresh(self) -> TopicEnds:
        from confluent_kafka import KafkaException, TopicPartition

        if time.monotonic() < self._next:
            return self.ends
        self._next = time.monotonic() + self.every_s
        try:
            for topic in self.topics:
                meta = self._consumer.list_topics(topic, timeout=2).topics[topic]
                self.ends[topic] = {
                    p: self._consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=2)[1]
                    for p in meta.partitions
                }
        except KafkaException as exc:  # Kafka away for a moment: keep the last ends
            print(f"lakehouse: end offsets: {exc}", file=sys.stderr, flush=True)
        return self.ends

    def close(self) -> None:
        self._consumer.close()


def offsets_behind(progress: Any, ends: TopicEnds, topic: str | None = None) -> int | None:
    """Records in the query's topics (or in ``topic`` alone) past what its last batch read (all
    partitions), or None before the first progress or the first end offsets.

    Spark reports each source's ``endOffset`` as ``{"topic": {"partition": offset}}``, as JSON
    text or as a dict depending on the version.
    """
    total = None
    for source in (progress or {}).get("sources") or []:
        read = source.get("endOffset")
        read = json.loads(read) if isinstance(read, str) else read
        if not isinstance(read, dict):
            continue
        for name, partitions in read.items():
            if topic is not None and name != topic:
                continue
            for partition, end in ends.get(name, {}).items():
                done = int(partitions.get(str(partition), 0))
                total = (total or 0) + max(0, end - done)
    return total


def query_status(
    query: StreamingQuery, writer: BatchWriter, ends: TopicEnds | None = None
) -> dict[str, dict[str, Any]]:
    """Each use case's part of the one query's progress, keyed by use case."""
    progress: dict[str, Any] = query.lastProgress or {}
    error = query.exception()
    active = query.isActive
    rate = progress.get("processedRowsPerSecond")
    batch_rows = progress.get("numInputRows") or 0
    out = {}
    for name, spec in writer.specs.items():
        behind = offsets_behind(progress, ends or {}, spec.topic)
        LAKE_QUERY_ACTIVE.labels(name).set(1 if active else 0)
        if behind is not None:
            LAKE_OFFSETS_BEHIND.labels(name).set(behind)
        last = writer.last_rows[name]
        out[name] = {
            "id": str(query.id),
            "active": active,
            "batch": progress.get("batchId"),
            "last_input_rows": last if progress else None,
            # the query's rate, in this use case's share of the last batch
            "rows_per_s": rate * last / batch_rows if rate and batch_rows else rate,
            "progress_at": progress.get("timestamp"),
            "duration_ms": progress.get("durationMs"),
            "rows": writer.rows[name],
            "quarantined": writer.quarantined[name],
            "offsets_behind": behind,
            "error": str(error) if error else None,
        }
    return out


def write_status(path: Path | None, status: dict[str, Any]) -> None:
    if path is None:
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status))
    tmp.replace(path)  # atomic: a reader never sees half a file
