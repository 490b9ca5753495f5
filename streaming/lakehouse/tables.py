"""The bronze and quarantine tables: how a Kafka record becomes a row of one, and their creation.

Both tables keep where a row came from (the ``truth`` header and the Kafka position), so a row of
either can be traced back to its record and counted exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from rtml.lake import QUARANTINE, table_uri
from rtml.settings import Settings
from rtml.usecases import UseCase
from rtml.usecases.base import TRUTH_HEADER
from streaming.lakehouse.schema import event_time_field, spark_schema
from streaming.lakehouse.session import spark_uri
from streaming.lakehouse.validation import verdicts_by_topic

#: Commits between two checkpoints of a table's Delta log. Delta's default (10) made every tenth
#: micro-batch of each table also rewrite that table's whole state as a Parquet checkpoint (a
#: Spark job of its own); readers replay at most this many small JSON commits instead.
CHECKPOINT_INTERVAL = 100

#: The Spark side of :data:`streaming.lakehouse.validation.VERDICT`.
VERDICT = T.StructType(
    [T.StructField("reason", T.StringType()), T.StructField("event", T.StringType())]
)


def _verdict_udf(usecases: dict[str, str]) -> Any:
    @F.arrow_udf(VERDICT)  # type: ignore[call-overload]
    def verdict(topics: pa.Array, values: pa.Array) -> pa.Array:
        return verdicts_by_topic(usecases, topics, values)

    return verdict


def classify(raw: DataFrame, specs: Sequence[UseCase]) -> DataFrame:
    """Kafka records of the specs' topics → one row each with its ``usecase``, a ``reason`` (None
    when valid), the event as pydantic's canonical JSON (``event_json``, typed per use case by
    :func:`typed` once the rows are split) and the Kafka metadata."""
    by_topic = {spec.topic: spec.name for spec in specs}
    verdict = _verdict_udf(by_topic)(F.col("topic"), F.col("value")).alias("verdict")
    names = F.create_map(*(F.lit(x) for pair in by_topic.items() for x in pair))
    truth = F.filter(F.col("headers"), lambda h: h["key"] == F.lit(TRUTH_HEADER))
    checked = raw.select(
        verdict,
        # never NULL: every record comes from one of these topics (and quarantine's partition
        # column was made NOT NULL)
        F.coalesce(F.element_at(names, F.col("topic")), F.lit("")).alias("usecase"),
        F.col("value").cast("string").alias("value"),
        F.col("key").cast("string").alias("kafka_key"),
        F.try_element_at(truth, F.lit(1))["value"].cast("string").alias("truth"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
    )
    # A safety net: a field pydantic accepted but Spark could not type is not a silent NULL.
    gaps = [F.when(F.col("usecase") == F.lit(spec.name), _untyped(spec)) for spec in specs]
    gap = F.coalesce(*gaps) if len(gaps) > 1 else gaps[0]
    reason = F.coalesce(F.col("verdict.reason"), F.when(F.col("verdict.event").isNotNull(), gap))
    return checked.select(
        "*", reason.alias("reason"), F.col("verdict.event").alias("event_json")
    ).drop("verdict")


def _untyped(spec: UseCase) -> Column:
    """Why the spec's typed event (from ``verdict.event``) has a required field NULL, or NULL."""
    schema = spark_schema(spec.event)
    event = F.from_json("verdict.event", schema)
    untyped = [
        F.when(
            event[f.name].isNull(),
            F.lit(f"{f.name}: not readable as {f.dataType.simpleString()}"),
        )
        for f in schema.fields
        if not f.nullable
    ]
    if not untyped:
        return F.lit(None).cast("string")
    return F.nullif(F.concat_ws("; ", *untyped), F.lit(""))


def typed(rows: DataFrame, spec: UseCase) -> DataFrame:
    """Classified rows of one use case with its typed ``event`` (Spark types from the spec)."""
    return rows.withColumn("event", F.from_json("event_json", spark_schema(spec.event)))


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
    :func:`~streaming.lakehouse.schema.spark_schema`, then the provenance columns and
    ``event_date``), for writers that need no Spark: tests and benchmarks that put a lake of known
    content in place quickly."""
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


def quarantine_columns() -> list[Column]:
    return [
        F.col("usecase"),
        F.col("reason"),
        F.col("value"),
        *_provenance_columns(),
    ]


def ensure_tables(spark: SparkSession, settings: Settings, specs: Sequence[UseCase]) -> None:
    """Create the bronze and quarantine tables up front, so readers see them (empty) at once, and
    give them (new or not) the log checkpoint interval of :data:`CHECKPOINT_INTERVAL`."""
    from delta.tables import DeltaTable

    frame = _empty_kafka_frame(spark)
    for spec in specs:
        empty = typed(classify(frame, [spec]), spec)
        (
            DeltaTable.createIfNotExists(spark)
            .location(spark_uri(table_uri(settings, spec.name)))
            .addColumns(empty.select(bronze_columns(spec)).schema)
            .partitionedBy("event_date")
            .execute()
        )
    empty = classify(frame, specs).select(quarantine_columns())
    (
        DeltaTable.createIfNotExists(spark)
        .location(spark_uri(table_uri(settings, QUARANTINE)))
        .addColumns(empty.schema)
        .partitionedBy("usecase")
        .execute()
    )
    for name in [*(spec.name for spec in specs), QUARANTINE]:
        uri = spark_uri(table_uri(settings, name))
        detail = DeltaTable.forPath(spark, uri).detail().first()
        properties = (detail["properties"] if detail else None) or {}
        if properties.get("delta.checkpointInterval") != str(CHECKPOINT_INTERVAL):
            spark.sql(
                f"ALTER TABLE delta.`{uri}` SET TBLPROPERTIES "
                f"('delta.checkpointInterval' = '{CHECKPOINT_INTERVAL}')"
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
