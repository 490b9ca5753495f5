"""Kafka → Delta with Spark Structured Streaming: the lake's bronze tables.

One streaming query per use case reads its topic and lands every record, exactly once, in one of
two Delta tables (layout in :mod:`rtml.lake`):

- ``bronze/<usecase>``: the event's fields with real Spark types (mapped from the spec's pydantic
  schema by :func:`spark_schema`), the ``rtml-truth`` header as ``truth``, the Kafka key,
  partition, offset and timestamp, and ``ingested_at``; partitioned by ``event_date`` (UTC).
- ``quarantine``: a record that fails its schema, with its raw value and the reason.

Validation is the spec's own (:meth:`UseCase.parse`, in an Arrow UDF), so the lake quarantines
exactly what a learner sends to the dead-letter topic, with the same reason. A valid event is
re-serialised by pydantic and typed by Spark's ``from_json``, so lax JSON (a number sent as a
string) lands typed rather than as a silent NULL.

Exactly once: Kafka offsets live in the query's checkpoint, and each micro-batch is written with
Delta's idempotent-write options (``txnAppId`` = the query's id, ``txnVersion`` = batch id), so a
batch replayed after a crash or a restart is skipped by Delta instead of appended twice.

The Kafka source and Delta jars come from Maven Central through ``spark.jars.packages`` into an
Ivy cache under rtml's cache folder; later starts resolve from the cache, offline.

Run it with ``python -m streaming.lakehouse run`` (``rtml up`` / ``rtml lakehouse start`` do).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import sys
import threading
import time
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyspark
from prometheus_client import Counter, Gauge, start_http_server
from pydantic import AwareDatetime, BaseModel, FutureDatetime, NaiveDatetime, PastDatetime
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.streaming import StreamingQuery

from rtml.kafka import consumer_config, wait_for_broker
from rtml.lake import QUARANTINE, checkpoint_uri, lake_uri, table_uri
from rtml.settings import LOOPBACK, Settings, get_settings
from rtml.usecases import USECASES, UseCase
from rtml.usecases import get as get_usecase
from rtml.usecases.base import TRUTH_HEADER
from streaming.validation import verdicts

SCALA_VERSION = "2.13"  # pyspark 4 ships Scala 2.13 only
#: The delta-spark Python package is 4.4.1, but Maven Central has no 4.4.1 jars (4.4.0 is the
#: newest published for Spark 4.2); the Python side is only a thin py4j wrapper over them.
DELTA_VERSION = "4.4.0"
#: A background job beside Kafka, Ray and the learners on a 2-core box: two task threads.
SPARK_MASTER = "local[2]"
#: The serial collector returns the JVM's unused heap to the OS; G1 keeps up to the full -Xmx
#: committed. One small, mostly idle driver needs no parallel GC.
JVM_OPTIONS = "-XX:+UseSerialGC -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=30"
#: How often the job rewrites its status file (the stack's health check reads it).
STATUS_EVERY_S = 1.0
SUMMARY_EVERY_S = 60.0

# -- progress metrics (prometheus_client, on RTML_LAKE_METRICS_PORT; docs/metrics.md) -----------
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


# -- the schema: pydantic → Spark --------------------------------------------------------------

_DATETIMES = (dt.datetime, AwareDatetime, NaiveDatetime, PastDatetime, FutureDatetime)


def spark_type(annotation: Any) -> tuple[T.DataType, bool]:
    """The Spark type of a pydantic field annotation, and whether it admits None."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return spark_type(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"no Spark type for the union {annotation!r}")
        return spark_type(args[0])[0], True
    if origin is typing.Literal:
        kinds = {type(v) for v in typing.get_args(annotation)}
        if len(kinds) != 1:
            raise TypeError(f"no Spark type for a Literal of mixed types {annotation!r}")
        return spark_type(kinds.pop())
    if origin in (list, tuple, set, frozenset, Sequence):
        (item,) = typing.get_args(annotation)[:1] or (str,)
        element, nullable = spark_type(item)
        return T.ArrayType(element, nullable), False
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return spark_schema(annotation), False
        if issubclass(annotation, bool):  # before int: bool is an int
            return T.BooleanType(), False
        if issubclass(annotation, int):
            return T.LongType(), False
        if issubclass(annotation, float):
            return T.DoubleType(), False
        if issubclass(annotation, str):
            return T.StringType(), False
        if issubclass(annotation, _DATETIMES):
            return T.TimestampType(), False
        if issubclass(annotation, dt.date):
            return T.DateType(), False
    raise TypeError(f"no Spark type for the pydantic annotation {annotation!r}")


def spark_schema(model: type[BaseModel]) -> T.StructType:
    """The Spark schema of a pydantic model: one typed field per model field, in order.

    A field is nullable when its annotation admits None or it is not required.
    """
    fields = []
    for name, info in model.model_fields.items():
        data_type, optional = spark_type(info.annotation)
        fields.append(T.StructField(name, data_type, nullable=optional or not info.is_required()))
    return T.StructType(fields)


def event_time_field(schema: T.StructType) -> str | None:
    """The event's time: its ``timestamp`` field, else its first timestamp field."""
    stamps = [f.name for f in schema.fields if isinstance(f.dataType, T.TimestampType)]
    return "timestamp" if "timestamp" in stamps else (stamps[0] if stamps else None)


# -- validation: the spec's own, in an Arrow UDF (streaming/validation.py) ------------------------

#: The Spark side of :data:`streaming.validation.VERDICT`.
VERDICT = T.StructType(
    [T.StructField("reason", T.StringType()), T.StructField("event", T.StringType())]
)


def _verdict_udf(usecase: str) -> Any:
    @F.arrow_udf(VERDICT)  # type: ignore[call-overload]
    def verdict(values: pa.Array) -> pa.Array:
        return verdicts(usecase, values)

    return verdict


def classify(raw: DataFrame, spec: UseCase) -> DataFrame:
    """Kafka records → one row each with the typed ``event``, a ``reason`` (None when valid),
    and the Kafka metadata."""
    schema = spark_schema(spec.event)
    verdict = _verdict_udf(spec.name)(F.col("value")).alias("verdict")
    truth = F.filter(F.col("headers"), lambda h: h["key"] == F.lit(TRUTH_HEADER))
    checked = raw.select(
        verdict,
        F.col("value").cast("string").alias("value"),
        F.col("key").cast("string").alias("kafka_key"),
        F.try_element_at(truth, F.lit(1))["value"].cast("string").alias("truth"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
    ).withColumn("event", F.from_json("verdict.event", schema))
    # A safety net: a field pydantic accepted but Spark could not type is not a silent NULL.
    untyped = [
        F.when(
            F.col(f"event.{f.name}").isNull(),
            F.lit(f"{f.name}: not readable as {f.dataType.simpleString()}"),
        )
        for f in schema.fields
        if not f.nullable
    ]
    gap = (
        F.nullif(F.concat_ws("; ", *untyped), F.lit("")) if untyped else F.lit(None).cast("string")
    )
    reason = F.coalesce(F.col("verdict.reason"), F.when(F.col("verdict.event").isNotNull(), gap))
    return checked.withColumn("reason", reason).drop("verdict")


def _provenance_columns() -> list[Column]:
    """Where a row came from, kept by bronze and quarantine alike."""
    return [
        F.col("truth"),
        F.col("kafka_key"),
        F.col("kafka_partition"),
        F.col("kafka_offset"),
        F.col("kafka_timestamp"),
        F.current_timestamp().alias("ingested_at"),
    ]


def bronze_columns(spec: UseCase) -> list[Column]:
    schema = spark_schema(spec.event)
    when = event_time_field(schema)
    event_date = F.to_date(F.col(f"event.{when}") if when else F.col("kafka_timestamp"))
    return [
        *(F.col(f"event.{f.name}").alias(f.name) for f in schema.fields),
        *_provenance_columns(),
        event_date.alias("event_date"),
    ]


def bronze_arrow_schema(spec: UseCase) -> pa.Schema:
    """The Arrow schema of a bronze table as this job writes it (event fields from
    :func:`spark_schema`, then the provenance columns and ``event_date``), for writers that need
    no Spark: tests and benchmarks that put a lake of known content in place quickly."""
    from pyspark.sql.pandas.types import to_arrow_schema

    event = to_arrow_schema(spark_schema(spec.event), timezone="UTC")
    stamp = pa.timestamp("us", tz="UTC")
    return pa.schema(
        [
            *event,
            pa.field("truth", pa.string()),
            pa.field("kafka_key", pa.string()),
            pa.field("kafka_partition", pa.int32()),
            pa.field("kafka_offset", pa.int64()),
            pa.field("kafka_timestamp", stamp),
            pa.field("ingested_at", stamp),
            pa.field("event_date", pa.date32()),
        ]
    )


def quarantine_columns(spec: UseCase) -> list[Column]:
    return [
        F.lit(spec.name).alias("usecase"),
        F.col("reason"),
        F.col("value"),
        *_provenance_columns(),
    ]


# -- the Spark session ---------------------------------------------------------------------------


def hadoop_version() -> str:
    """The Hadoop release bundled with pyspark (hadoop-aws must match it exactly)."""
    jars = Path(pyspark.__file__).parent / "jars"
    for jar in jars.glob("hadoop-client-api-*.jar"):
        return jar.stem.removeprefix("hadoop-client-api-")
    raise RuntimeError(f"no hadoop-client-api jar in {jars}")


def spark_packages(settings: Settings) -> list[str]:
    """Maven coordinates of the jars the job needs on top of pyspark's own."""
    spark = pyspark.__version__
    spark_minor = ".".join(spark.split(".")[:2])
    packages = [
        f"io.delta:delta-spark_{spark_minor}_{SCALA_VERSION}:{DELTA_VERSION}",
        f"org.apache.spark:spark-sql-kafka-0-10_{SCALA_VERSION}:{spark}",
    ]
    if settings.lake_s3_bucket:
        packages.append(f"org.apache.hadoop:hadoop-aws:{hadoop_version()}")
    return packages


def spark_uri(uri: str) -> str:
    """Hadoop reads S3 through the ``s3a://`` scheme; ``deltalake`` through ``s3://``."""
    return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri


def s3_conf(settings: Settings) -> dict[str, str]:
    """Hadoop S3A settings for an S3-compatible lake ({} for a local one)."""
    if not settings.lake_s3_bucket:
        return {}
    conf = {"spark.hadoop.fs.s3a.endpoint.region": settings.lake_s3_region}
    if settings.lake_s3_endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = settings.lake_s3_endpoint
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"  # MinIO and most S3 clones
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(
            settings.lake_s3_endpoint.startswith("https://")
        ).lower()
    if settings.lake_s3_access_key_id and settings.lake_s3_secret_access_key:
        conf["spark.hadoop.fs.s3a.access.key"] = settings.lake_s3_access_key_id.get_secret_value()
        conf["spark.hadoop.fs.s3a.secret.key"] = (
            settings.lake_s3_secret_access_key.get_secret_value()
        )
    return conf


def spark_conf(settings: Settings) -> dict[str, str]:
    ivy = settings.cache_dir.expanduser().resolve() / "ivy"
    return {
        "spark.master": SPARK_MASTER,
        "spark.app.name": "rtml-lakehouse",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.jars.packages": ",".join(spark_packages(settings)),
        "spark.jars.ivy": str(ivy),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # Event dates and timestamps in UTC whatever the machine's zone; INT64 microseconds in
        # Parquet (not legacy INT96), which deltalake/Arrow read as timestamp[us, tz=UTC].
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        # Loopback only, no web UI, no console progress bars in the log.
        "spark.driver.host": LOOPBACK,
        "spark.driver.bindAddress": LOOPBACK,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": JVM_OPTIONS,
        # Tiny batches: Spark's defaults (200 shuffle partitions, 50 snapshot partitions for the
        # Delta log) would spend most of each micro-batch scheduling empty tasks.
        "spark.sql.shuffle.partitions": "2",
        "spark.databricks.delta.snapshotPartitions": "2",
        # Python workers (the validation UDF) must be this environment's interpreter.
        "spark.pyspark.python": sys.executable,
        **s3_conf(settings),
    }


def spark_session(settings: Settings) -> SparkSession:
    os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    builder = SparkSession.builder
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


# -- the streams ---------------------------------------------------------------------------------


def ensure_tables(spark: SparkSession, settings: Settings, specs: Sequence[UseCase]) -> None:
    """Create the bronze and quarantine tables up front, so readers see them (empty) at once and
    the three queries never race to create the shared quarantine table."""
    from delta.tables import DeltaTable

    for spec in specs:
        empty = classify(_empty_kafka_frame(spark), spec)
        (
            DeltaTable.createIfNotExists(spark)
            .location(spark_uri(table_uri(settings, spec.name)))
            .addColumns(empty.select(bronze_columns(spec)).schema)
            .partitionedBy("event_date")
            .execute()
        )
    empty = classify(_empty_kafka_frame(spark), specs[0]).select(quarantine_columns(specs[0]))
    (
        DeltaTable.createIfNotExists(spark)
        .location(spark_uri(table_uri(settings, QUARANTINE)))
        .addColumns(empty.schema)
        .partitionedBy("usecase")
        .execute()
    )


def _empty_kafka_frame(spark: SparkSession) -> DataFrame:
    """An empty frame shaped like the Kafka source's rows (with headers)."""
    schema = T.StructType(
        [
            T.StructField("key", T.BinaryType()),
            T.StructField("value", T.BinaryType()),
            T.StructField("topic", T.StringType()),
            T.StructField("partition", T.IntegerType()),
            T.StructField("offset", T.LongType()),
            T.StructField("timestamp", T.TimestampType()),
            T.StructField("timestampType", T.IntegerType()),
            T.StructField(
                "headers",
                T.ArrayType(
                    T.StructType(
                        [
                            T.StructField("key", T.StringType()),
                            T.StructField("value", T.BinaryType()),
                        ]
                    )
                ),
            ),
        ]
    )
    return spark.createDataFrame([], schema)


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


def offsets_behind(progress: Any, ends: TopicEnds) -> int | None:
    """Records in the query's topics past what its last batch read (all partitions), or None
    before the first progress or the first end offsets.

    Spark reports each source's ``endOffset`` as ``{"topic": {"partition": offset}}``, as JSON
    text or as a dict depending on the version.
    """
    total = None
    for source in (progress or {}).get("sources") or []:
        read = source.get("endOffset")
        read = json.loads(read) if isinstance(read, str) else read
        if not isinstance(read, dict):
            continue
        for topic, partitions in read.items():
            for partition, end in ends.get(topic, {}).items():
                done = int(partitions.get(str(partition), 0))
                total = (total or 0) + max(0, end - done)
    return total


def query_status(
    query: StreamingQuery, writer: BatchWriter, ends: TopicEnds | None = None
) -> dict[str, Any]:
    progress = query.lastProgress or {}
    error = query.exception()
    behind = offsets_behind(progress, ends or {})
    name = writer.spec.name
    LAKE_QUERY_ACTIVE.labels(name).set(1 if query.isActive else 0)
    if behind is not None:
        LAKE_OFFSETS_BEHIND.labels(name).set(behind)
    return {
        "id": str(query.id),
        "active": query.isActive,
        "batch": progress.get("batchId"),
        "last_input_rows": progress.get("numInputRows"),
        "rows_per_s": progress.get("processedRowsPerSecond"),
        "progress_at": progress.get("timestamp"),
        "duration_ms": progress.get("durationMs"),
        "rows": writer.rows,
        "quarantined": writer.quarantined,
        "offsets_behind": behind,
        "error": str(error) if error else None,
    }


def _write_status(path: Path | None, status: dict[str, Any]) -> None:
    if path is None:
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status))
    tmp.replace(path)  # atomic: a reader never sees half a file


def run(
    settings: Settings,
    usecases: Sequence[str],
    status_file: Path | None = None,
    metrics_port: int | None = None,
) -> int:
    """Run the streams until SIGTERM/SIGINT or a query fails; return the exit code.

    ``status_file``, when given, is rewritten every second with each query's progress;
    ``metrics_port``, when given, serves the same progress to Prometheus on loopback.
    """
    specs = [get_usecase(name) for name in usecases]
    if metrics_port:
        start_http_server(metrics_port, addr=LOOPBACK)
    if status_file is not None:
        status_file.parent.mkdir(parents=True, exist_ok=True)
        status_file.unlink(missing_ok=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    print(f"lakehouse: waiting for Kafka at {settings.kafka_servers}", flush=True)
    wait_for_broker(settings, timeout=120)
    t0 = time.monotonic()
    print(f"lakehouse: starting Spark ({', '.join(spark_packages(settings))})", flush=True)
    spark = spark_session(settings)
    ensure_tables(spark, settings, specs)
    streams = {spec.name: start_query(spark, settings, spec) for spec in specs}
    kafka_ends = KafkaEnds(settings, [spec.topic for spec in specs])
    print(
        f"lakehouse: {len(streams)} queries started in {time.monotonic() - t0:.1f}s, "
        f"trigger {settings.lake_trigger_s:g}s, lake {lake_uri(settings)}",
        flush=True,
    )
    code, last_summary = 0, time.monotonic()
    try:
        while not stopping.is_set():
            try:
                ends = kafka_ends.refresh()
                statuses = {name: query_status(q, w, ends) for name, (q, w) in streams.items()}
            except Exception:
                if stopping.is_set():  # SIGTERM reached the JVM too: it is going down already
                    break
                raise
            if stopping.is_set():
                break
            _write_status(
                status_file, {"pid": os.getpid(), "updated": time.time(), "queries": statuses}
            )
            failed = {n: s["error"] for n, s in statuses.items() if not s["active"]}
            if failed:
                print(f"lakehouse: query failed: {failed}", file=sys.stderr, flush=True)
                code = 1
                break
            if time.monotonic() - last_summary >= SUMMARY_EVERY_S:
                last_summary = time.monotonic()
                print(
                    "lakehouse: "
                    + ", ".join(
                        f"{n} {s['rows']} rows / {s['quarantined']} quarantined"
                        for n, s in statuses.items()
                    ),
                    flush=True,
                )
            stopping.wait(STATUS_EVERY_S)
    finally:
        print("lakehouse: stopping", flush=True)
        for query, _ in streams.values():
            try:
                query.stop()
            except Exception as exc:  # noqa: BLE001 - stopping: say it, go on stopping
                if not stopping.is_set():  # on SIGTERM the JVM is going down with the same signal
                    print(f"lakehouse: stopping {query.name}: {exc}", file=sys.stderr, flush=True)
        with contextlib.suppress(Exception):  # the JVM may be gone already
            spark.stop()
        kafka_ends.close()
        if status_file is not None:
            status_file.unlink(missing_ok=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streaming.lakehouse", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run", help="run the Kafka → Delta streams until stopped")
    go.add_argument("--usecase", action="append", choices=list(USECASES), help="default: all")
    go.add_argument(
        "--status-file", type=Path, help="rewrite this JSON file with progress every second"
    )
    go.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics here (default: RTML_LAKE_METRICS_PORT; 0: none)",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    port = settings.lake_metrics_port if args.metrics_port is None else args.metrics_port
    return run(settings, args.usecase or list(USECASES), args.status_file, port)


if __name__ == "__main__":
    sys.exit(main())
