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
from streaming.lakehouse.validation import verdicts

#: The Spark side of :data:`streaming.lakehouse.validation.VERDICT`.
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


def quarantine_columns(spec: UseCase) -> list[Column]:
    return [
        F.lit(spec.name).alias("usecase"),
        F.col("reason"),
        F.col("value"),
        *_provenance_columns(),
    ]


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
