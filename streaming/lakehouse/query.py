"""One streaming query per use case: its topic, read from Kafka, landed in Delta exactly once."""

from __future__ import annotations

import threading
import time

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

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
from streaming.lakehouse.tables import bronze_columns, classify, quarantine_columns


class BatchWriter:
    """``foreachBatch`` sink: valid rows to bronze, the rest to quarantine, each write idempotent.

    The Delta transaction app id carries the query's id, which lives in the checkpoint: a
    restarted query replays a batch under the same (id, batch) and Delta skips it. A deleted
    checkpoint starts a new id and re-reads the topics from the start, so its batches 0, 1, ...
    are never mistaken for old ones, but it lands the topics again: delete the tables with it.
    """

    def __init__(self, settings: Settings, spec: UseCase) -> None:
        self.spec = spec
        self.bronze = spark_uri(table_uri(settings, spec.name))
        self.quarantine = spark_uri(table_uri(settings, QUARANTINE))
        self.app_id = ""
        self._bound = threading.Event()
        self.rows = 0
        self.quarantined = 0
        # Until a batch lands, "the last batch" is the start: a job that never lands ages too.
        LAKE_LAST_BATCH.labels(spec.name).set(time.time())

    def bind(self, query: StreamingQuery) -> None:
        self.app_id = f"rtml-lakehouse-{self.spec.name}-{query.id}"
        self._bound.set()

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        self._bound.wait()
        batch.persist()
        try:
            # One pass fills the cache (the validation UDF runs once) and counts both kinds.
            valid = F.col("reason").isNull()
            newest = F.unix_micros(F.max("kafka_timestamp"))
            row = batch.agg(F.count_if(valid), F.count_if(~valid), newest).first()
            good, bad = (int(row[0]), int(row[1])) if row else (0, 0)
            if good:
                self._write(
                    batch.where("reason IS NULL").select(bronze_columns(self.spec)),
                    self.bronze,
                    batch_id,
                )
            if bad:
                self._write(
                    batch.where("reason IS NOT NULL").select(quarantine_columns(self.spec)),
                    self.quarantine,
                    batch_id,
                )
        finally:
            batch.unpersist()
        self.rows += good
        self.quarantined += bad
        if good or bad:
            now = time.time()
            LAKE_ROWS.labels(self.spec.name).inc(good)
            LAKE_QUARANTINED.labels(self.spec.name).inc(bad)
            LAKE_LAST_BATCH.labels(self.spec.name).set(now)
            if row and row[2] is not None:
                LAKE_INGEST_LAG.labels(self.spec.name).set(max(0.0, now - row[2] / 1e6))

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


def start_query(
    spark: SparkSession, settings: Settings, spec: UseCase
) -> tuple[StreamingQuery, BatchWriter]:
    raw = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_servers)
        .option("subscribe", spec.topic)
        .option("startingOffsets", "earliest")
        .option("includeHeaders", "true")
        .option("maxOffsetsPerTrigger", str(settings.lake_max_offsets_per_trigger))
        # Records deleted by retention before they were landed are skipped with a warning, not
        # a dead job: bronze is a best-effort copy of the stream, Kafka is the source of truth.
        .option("failOnDataLoss", "false")
        .load()
    )
    writer = BatchWriter(settings, spec)
    query = (
        classify(raw, spec)
        .writeStream.queryName(f"bronze-{spec.name}")
        .foreachBatch(writer)
        .option("checkpointLocation", spark_uri(checkpoint_uri(settings, spec.name)))
        .trigger(processingTime=f"{settings.lake_trigger_s:g} seconds")
        .start()
    )
    writer.bind(query)
    return query, writer
