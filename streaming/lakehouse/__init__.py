"""Kafka → Delta with Spark Structured Streaming: the lake's bronze tables.

One streaming query reads every use case's topic, splits each micro-batch by use case, and lands
every record, exactly once, in one of two Delta tables (layout in :mod:`rtml.lake`). One query,
not one per topic: a micro-batch costs about the same whatever it carries (docs/footprint.md).

- ``bronze/<usecase>``: the event's fields with real Spark types (mapped from the spec's pydantic
  schema by :func:`~streaming.lakehouse.schema.spark_schema`), the ``rtml-truth`` header as
  ``truth``, the Kafka key, partition, offset and timestamp, and ``ingested_at``; partitioned by
  ``event_date`` (UTC).
- ``quarantine``: a record that fails its schema, with its raw value and the reason.

Validation is the spec's own (:meth:`UseCase.parse`, in an Arrow UDF), so the lake quarantines
exactly what a learner sends to the dead-letter topic, with the same reason. A valid event is
re-serialised by pydantic and typed by Spark's ``from_json``, so lax JSON (a number sent as a
string) lands typed rather than as a silent NULL.

Exactly once: Kafka offsets live in the query's checkpoint, and each micro-batch is written with
Delta's idempotent-write options (``txnAppId`` = the query's id, ``txnVersion`` = batch id), so a
batch replayed after a crash or a restart is skipped by Delta instead of appended twice. A lake of
an earlier version (a query per use case, each with its own checkpoint) is first caught up by those
queries (``availableNow``), and the shared query starts at the offsets where they stopped.

The Kafka source and Delta jars come from Maven Central through ``spark.jars.packages`` into an
Ivy cache under rtml's cache folder; later starts resolve from the cache, offline.

Run it with ``python -m streaming.lakehouse run`` (``rtml up`` / ``rtml lakehouse start`` do).

The modules, by concern:

- ``schema``: pydantic → Spark types
- ``validation``: the spec's verdict on each raw record, run in Spark's Python workers
- ``tables``: how a Kafka record becomes a bronze or quarantine row; creating the tables
- ``session``: the Spark session (jars through Ivy, S3, where Spark keeps its own files)
- ``query``: the one streaming query, its idempotent Delta writer, the catch-up of older lakes
- ``metrics``: the job's Prometheus series
- ``progress``: Kafka's end offsets, what is left to land, each use case's status
- ``job``: the job's life: start the query, report, stop on a signal or a failure
- ``__main__``: the command line

This file imports nothing on purpose: Spark's Python workers import ``validation`` through this
package, and must not load Spark's driver side, Kafka or Delta with it.
"""
