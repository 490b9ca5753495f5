"""One streaming query for every use case: their topics read from Kafka together, the records
split per use case inside each micro-batch, and landed in Delta exactly once.

One query, not one per topic: each micro-batch has a fixed cost (planning, the offset log, a
commit) whatever it carries, so three queries paid it three times for the same few events
(docs/footprint.md has the measurements).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from rtml.kafka import consumer_config
from rtml.lake import QUARANTINE, checkpoint_uri, table_uri
from rtml.settings import Settings
from rtml.usecases import UseCase
from streaming.lakehouse.metrics import (
    LAKE_INGEST_LAG,
    LAKE_LAST_BATCH,
    LAKE_QUARANTINED,
    LAKE_ROWS,
)
from streaming.lakehouse.session import spark_uri
from streaming.lakehouse.tables import bronze_columns, classify, quarantine_columns, typed

#: The checkpoint of the one query (beside the per-use-case ones of earlier versions; "all"
#: names no use case: the CLI takes it for every use case).
STREAM = "all"


class BatchWriter:
    """``foreachBatch`` sink: each use case's valid rows to its bronze table, every invalid row to
    quarantine, each write idempotent.

    The Delta transaction app id carries the query's id, which lives in the checkpoint: a
    restarted query replays a batch under the same (id, batch) and Delta skips each table's write
    it had already made. A deleted checkpoint starts a new id and re-reads the topics from the
    start, so its batches 0, 1, ... are never mistaken for old ones, but it lands the topics
    again: delete the tables with it.
    """

    def __init__(
        self, settings: Settings, specs: Sequence[UseCase], app_prefix: str = "rtml-lakehouse"
    ) -> None:
        self.app_prefix = app_prefix
        self.specs = {spec.name: spec for spec in specs}
        self.bronze = {spec.name: spark_uri(table_uri(settings, spec.name)) for spec in specs}
        self.quarantine = spark_uri(table_uri(settings, QUARANTINE))
        self.app_id = ""
        self._bound = threading.Event()
        self.rows = dict.fromkeys(self.specs, 0)
        self.quarantined = dict.fromkeys(self.specs, 0)
        #: records of each use case in the last micro-batch (valid or not)
        self.last_rows = dict.fromkeys(self.specs, 0)
        # Until a batch lands, "the last batch" is the start: a job that never lands ages too.
        for name in self.specs:
            LAKE_LAST_BATCH.labels(name).set(time.time())

    def bind(self, query: StreamingQuery) -> None:
        self.app_id = f"{self.app_prefix}-{query.id}"
        self._bound.set()

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        self._bound.wait()
        # One task, not one per topic partition: a micro-batch is small, and each concurrent
        # task would keep a Python worker of its own (~200 MB with the specs loaded) for the
        # validation UDF.
        batch = batch.coalesce(1).persist()
        try:
            # One pass fills the cache (the validation UDF runs once) and counts every kind.
            valid = F.col("reason").isNull()
            counts = []
            for name in self.specs:
                mine = F.col("usecase") == F.lit(name)
                latest = F.max(F.when(mine, F.col("kafka_timestamp")))
                counts += [F.count_if(mine & valid), F.count_if(~valid & mine)]
                counts.append(F.unix_micros(latest))
            first = batch.agg(*counts).first()
            row: list[Any] = list(first) if first else [0, 0, None] * len(self.specs)
            tally = {
                name: (int(row[3 * i]), int(row[3 * i + 1]), row[3 * i + 2])
                for i, name in enumerate(self.specs)
            }
            writes = []
            for name, (good, _, _) in tally.items():
                if good:
                    spec = self.specs[name]
                    rows = typed(batch.where(valid & (F.col("usecase") == F.lit(name))), spec)
                    writes.append((rows.select(bronze_columns(spec)), self.bronze[name]))
            if any(bad for _, bad, _ in tally.values()):
                writes.append((batch.where(~valid).select(quarantine_columns()), self.quarantine))
            # Each table is its own Delta log: their writes run side by side (Spark runs jobs of
            # several threads at once), so the batch lands in the time of the slowest write.
            with ThreadPoolExecutor(max_workers=len(writes) or 1) as pool:
                for done in [
                    pool.submit(self._write, rows, path, batch_id) for rows, path in writes
                ]:
                    done.result()
        finally:
            batch.unpersist()
        now = time.time()
        for name, (good, bad, newest) in tally.items():
            self.rows[name] += good
            self.quarantined[name] += bad
            self.last_rows[name] = good + bad
            if good or bad:
                LAKE_ROWS.labels(name).inc(good)
                LAKE_QUARANTINED.labels(name).inc(bad)
                LAKE_LAST_BATCH.labels(name).set(now)
                if newest is not None:
                    LAKE_INGEST_LAG.labels(name).set(max(0.0, now - newest / 1e6))

    def _write(self, rows: DataFrame, path: str, batch_id: int) -> None:
        # One file per partition and batch: micro-batches are small, and fewer files read faster.
        (
            rows.coalesce(1)
            .write.format("delta")
            .mode("append")
            .option("txnAppId", self.app_id)
            .option("txnVersion", batch_id)
            .option("mergeSchema", "true")
            .save(path)
        )


def _kafka(
    spark: SparkSession, settings: Settings, specs: Sequence[UseCase], starting: str
) -> DataFrame:
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_servers)
        .option("subscribe", ",".join(spec.topic for spec in specs))
        .option("startingOffsets", starting)
        .option("includeHeaders", "true")
        # The setting bounds a batch per topic; Spark's bound is over all of the query's topics.
        .option("maxOffsetsPerTrigger", str(settings.lake_max_offsets_per_trigger * len(specs)))
        # Records deleted by retention before they were landed are skipped with a warning, not
        # a dead job: bronze is a best-effort copy of the stream, Kafka is the source of truth.
        .option("failOnDataLoss", "false")
        .load()
    )


def start_query(
    spark: SparkSession, settings: Settings, specs: Sequence[UseCase]
) -> tuple[StreamingQuery, BatchWriter]:
    """Start the one query; a lake of an earlier version (a query per use case) is first brought
    up to date by its own queries, and the new one starts where they stopped."""
    checkpoint = spark_uri(checkpoint_uri(settings, STREAM))
    starting = "earliest"
    if not _logged_batches(spark, checkpoint):
        landed = drain_per_usecase_queries(spark, settings, specs)
        if landed:
            starting = json.dumps(_every_partition(settings, specs, landed))
    writer = BatchWriter(settings, specs)
    query = (
        classify(_kafka(spark, settings, specs, starting), specs)
        .writeStream.queryName("bronze")
        .foreachBatch(writer)
        .option("checkpointLocation", checkpoint)
        .trigger(processingTime=f"{settings.lake_trigger_s:g} seconds")
        .start()
    )
    writer.bind(query)
    return query, writer


def drain_per_usecase_queries(
    spark: SparkSession, settings: Settings, specs: Sequence[UseCase]
) -> dict[str, dict[str, int]]:
    """Run each use case's query of an earlier version (checkpoint ``<checkpoints>/<usecase>``)
    until it has landed everything in its topic, exactly once as it always did (same query id,
    same Delta app id, so a batch in flight at its last stop is replayed, not doubled); return
    where each stopped, as Kafka source offsets (topic → partition → next offset).

    Topics without such a checkpoint are not in the answer: the one query reads them from the
    start."""
    out: dict[str, dict[str, int]] = {}
    for spec in specs:
        checkpoint = spark_uri(checkpoint_uri(settings, spec.name))
        if not _logged_batches(spark, checkpoint):
            continue
        writer = BatchWriter(settings, [spec], app_prefix=f"rtml-lakehouse-{spec.name}")
        query = (
            classify(_kafka(spark, settings, [spec], "earliest"), [spec])
            .writeStream.queryName(f"bronze-{spec.name}-catch-up")
            .foreachBatch(writer)
            .option("checkpointLocation", checkpoint)
            .trigger(availableNow=True)
            .start()
        )
        writer.bind(query)
        query.awaitTermination()
        logged = _logged_batches(spark, checkpoint)
        offsets = spark.read.text(f"{checkpoint}/offsets/{max(logged)}").collect()
        out.update(json.loads(offsets[-1].value))
        print(
            f"lakehouse: {spec.name}'s own query of an earlier version caught up "
            f"({writer.rows[spec.name]} rows); the shared query goes on from there",
            flush=True,
        )
    return out


def _every_partition(
    settings: Settings, specs: Sequence[UseCase], offsets: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """``offsets`` with every partition of every topic (Spark wants them all when it is given
    offsets); a partition not in them starts at the earliest record (-2)."""
    from confluent_kafka import Consumer

    consumer = Consumer(consumer_config(settings, "rtml-lakehouse-partitions"))
    try:
        out = {}
        for spec in specs:
            meta = consumer.list_topics(spec.topic, timeout=30).topics[spec.topic]
            known = offsets.get(spec.topic, {})
            out[spec.topic] = {str(p): int(known.get(str(p), -2)) for p in meta.partitions}
        return out
    finally:
        consumer.close()


def _logged_batches(spark: SparkSession, checkpoint: str) -> list[int]:
    """The batch ids in a query checkpoint's offset log (none when there is no checkpoint)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    path = jvm.org.apache.hadoop.fs.Path(f"{checkpoint}/offsets")
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(path):
        return []
    names = [status.getPath().getName() for status in fs.listStatus(path)]
    return [int(name) for name in names if name.isdigit()]
