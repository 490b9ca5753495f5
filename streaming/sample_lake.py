"""Generated events written straight into a bronze Delta table, without Kafka or Spark.

Tests and benchmarks of the batch path (training, scoring, DuckDB reads) need a lake of known
content in seconds; the real Kafka → Spark → Delta path is tested on its own
(``tests/integration/test_lakehouse.py``). The table has the schema the Spark job writes
(:func:`streaming.lakehouse.tables.bronze_arrow_schema`) and the same partitioning, so readers
cannot tell the difference; the Kafka columns carry a made-up but unique position (partition 0,
offset = row number from ``first_offset``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Literal

import pyarrow as pa
from deltalake import write_deltalake

from rtml.lake import storage_options, table_uri
from rtml.settings import Settings
from rtml.usecases import get
from rtml.usecases.generators import generator_for
from rtml.usecases.world import Generated
from streaming.lakehouse.tables import bronze_arrow_schema


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def bronze_table(usecase: str, records: Iterable[Generated], first_offset: int = 0) -> pa.Table:
    """Generated records as rows of the use case's bronze table."""
    spec = get(usecase)
    schema = bronze_arrow_schema(spec)
    stamps = {f.name for f in schema if pa.types.is_timestamp(f.type)}
    now = datetime.now(UTC)
    rows = []
    for i, record in enumerate(records):
        row = {k: _parse_time(v) if k in stamps else v for k, v in record.event.items()}
        event_time = row.get("timestamp") or now
        row.update(
            truth=json.dumps(record.truth, separators=(",", ":")),
            kafka_key=record.key,
            kafka_partition=0,
            kafka_offset=first_offset + i,
            kafka_timestamp=event_time,
            ingested_at=now,
            event_date=event_time.date() if isinstance(event_time, datetime) else date.today(),
        )
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema)


def write_bronze(
    settings: Settings,
    usecase: str,
    count: int,
    seed: int = 0,
    mode: Literal["append", "overwrite"] = "overwrite",
    **generator_options: object,
) -> pa.Table:
    """Generate ``count`` events and write them as the use case's bronze table; return them."""
    gen = generator_for(usecase, seed=seed, **generator_options)  # type: ignore[arg-type]
    table = bronze_table(usecase, (next(gen) for _ in range(count)))
    write_deltalake(
        table_uri(settings, usecase),
        table,
        mode=mode,
        partition_by=["event_date"],
        storage_options=storage_options(settings) or None,
    )
    return table
