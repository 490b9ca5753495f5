"""The lake as the core reads it: where the Delta tables live, and DuckDB over them.

Spark writes the tables (``streaming/lakehouse/``); everything that reads them comes through
here. The ``deltalake`` package opens a table's current snapshot as an Arrow dataset and DuckDB
queries that dataset in place, pushing projections and filters into the Parquet scan. DuckDB
needs no extension for this (no ``delta`` or ``httpfs`` download at run time): it only sees Arrow.

Layout under the lake's root (a local folder, or ``s3://bucket/prefix``)::

    bronze/<usecase>/      one Delta table per use case, partitioned by event_date
    quarantine/            events that failed their schema, with the reason, by usecase
    predictions/<usecase>/ the champion's batch scores (``jobs/score.py``): <usecase>_predictions
    _checkpoints/<usecase> Spark's streaming checkpoints (offsets + commits)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from rtml.entity import features_sql
from rtml.settings import Settings
from rtml.usecases import USECASES, get

BRONZE = "bronze"
QUARANTINE = "quarantine"
PREDICTIONS = "predictions"
CHECKPOINTS = "_checkpoints"

#: A DuckDB connection's configuration, as ``duckdb.connect(config=...)`` types it.
DuckDBConfig = dict[str, str | bool | int | float | list[str]]

#: DuckDB never fetches or loads an extension behind our back, and never reads a Python
#: variable of the caller's frame as a table (its "replacement scan" of Python objects).
BASE_DUCKDB_CONFIG: DuckDBConfig = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "python_enable_replacements": False,
}


def predictions_table(usecase: str) -> str:
    """The name of a use case's batch predictions table (``tfd_predictions``)."""
    return f"{usecase}_{PREDICTIONS}"


def table_names() -> list[str]:
    """Every table the lake can hold: one bronze table per use case, the quarantine, and the
    batch predictions of each use case."""
    return [*USECASES, QUARANTINE, *(predictions_table(u) for u in USECASES)]


def lake_uri(settings: Settings) -> str:
    """The lake's root: ``s3://bucket/prefix`` when a bucket is set, else the local folder."""
    if settings.lake_s3_bucket:
        prefix = settings.lake_s3_prefix.strip("/")
        return f"s3://{settings.lake_s3_bucket}" + (f"/{prefix}" if prefix else "")
    return str(settings.lake_local_dir)


def table_uri(settings: Settings, name: str) -> str:
    """Where table ``name`` (a use case, ``quarantine``, or ``<usecase>_predictions``) lives."""
    if name == QUARANTINE:
        return f"{lake_uri(settings)}/{QUARANTINE}"
    if name.endswith(f"_{PREDICTIONS}"):
        usecase = name.removesuffix(f"_{PREDICTIONS}")
        get(usecase)
        return f"{lake_uri(settings)}/{PREDICTIONS}/{usecase}"
    get(name)  # a clear error for an unknown use case
    return f"{lake_uri(settings)}/{BRONZE}/{name}"


def checkpoint_uri(settings: Settings, usecase: str) -> str:
    """The streaming checkpoint of a use case's Kafka → Delta query."""
    return f"{lake_uri(settings)}/{CHECKPOINTS}/{usecase}"


def storage_options(settings: Settings) -> dict[str, str]:
    """``deltalake`` options for S3-compatible storage ({} for a local lake).

    Keys come from settings when given; otherwise ``deltalake`` reads the standard ``AWS_*``
    variables and credential chain itself. ``etag`` conditional puts make concurrent commits safe
    on MinIO/R2 without a DynamoDB lock (AWS S3 has them natively).
    """
    if not settings.lake_s3_bucket:
        return {}
    options = {"AWS_REGION": settings.lake_s3_region}
    if settings.lake_s3_endpoint:
        options["AWS_ENDPOINT_URL"] = settings.lake_s3_endpoint
        options["aws_conditional_put"] = "etag"
        if settings.lake_s3_endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    if settings.lake_s3_access_key_id:
        options["AWS_ACCESS_KEY_ID"] = settings.lake_s3_access_key_id.get_secret_value()
    if settings.lake_s3_secret_access_key:
        options["AWS_SECRET_ACCESS_KEY"] = settings.lake_s3_secret_access_key.get_secret_value()
    return options


def open_table(settings: Settings, name: str) -> DeltaTable | None:
    """The table's latest snapshot, or None while the lakehouse has not created it yet."""
    try:
        return DeltaTable(table_uri(settings, name), storage_options=storage_options(settings))
    except TableNotFoundError:
        return None


@dataclass(frozen=True)
class TableInfo:
    name: str
    uri: str
    version: int
    rows: int
    files: int
    columns: list[tuple[str, str]]  # (name, DuckDB type)
    partition_by: list[str]


class Lake:
    """A snapshot of the lake's tables, queryable with DuckDB.

    Opening reads each table's Delta log once; :meth:`refresh` moves to the newest versions. A
    table the lakehouse has not created yet is simply absent.
    """

    def __init__(self, settings: Settings, names: Sequence[str] | None = None) -> None:
        self.settings = settings
        self._names = list(names) if names is not None else table_names()
        self.tables: dict[str, DeltaTable] = {}
        self.refresh()

    def refresh(self) -> None:
        for name in self._names:
            table = self.tables.get(name)
            if table is not None:
                table.update_incremental()
            elif (table := open_table(self.settings, name)) is not None:
                self.tables[name] = table

    def dataset(self, name: str) -> pads.Dataset:
        try:
            table = self.tables[name]
        except KeyError:
            have = ", ".join(self.tables) or "none yet"
            raise KeyError(
                f"no table {name!r} in the lake at {lake_uri(self.settings)} (tables: {have})"
            ) from None
        return table.to_pyarrow_dataset()

    def connect(self, config: DuckDBConfig | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB with every table registered as a view of its Arrow dataset."""
        con = duckdb.connect(config={**BASE_DUCKDB_CONFIG, **(config or {})})
        for name in self.tables:
            con.register(name, self.dataset(name))
        return con

    def query(
        self, sql: str, params: Sequence[object] | dict[str, object] | None = None
    ) -> pa.Table:
        """Run rtml's own (trusted) SQL over the lake; user SQL goes through :mod:`rtml.sql`."""
        with self.connect() as con:
            return con.sql(sql, params=params).to_arrow_table()

    def features(
        self, usecase: str, extra_columns: Sequence[str] = (), where: str = ""
    ) -> pa.Table:
        """The use case's batch features (the spec's one feature definition), as an Arrow table."""
        spec = get(usecase)
        return self.query(features_sql(spec, usecase, extra_columns, where))

    def info(self) -> list[TableInfo]:
        """Schema, row count and size of every table, from Delta metadata and Parquet footers."""
        out = []
        with self.connect() as con:
            for name, table in self.tables.items():
                described = con.execute(f'DESCRIBE "{name}"').fetchall()
                out.append(
                    TableInfo(
                        name=name,
                        uri=table.table_uri,
                        version=table.version(),
                        rows=self.dataset(name).count_rows(),
                        files=len(table.file_uris()),
                        columns=[(str(row[0]), str(row[1])) for row in described],
                        partition_by=list(table.metadata().partition_columns),
                    )
                )
        return out


# -- maintenance: compaction and clean-up with deltalake (no Spark needed) ---------------------


@dataclass(frozen=True)
class Compaction:
    name: str
    files_removed: int
    files_added: int
    version: int


def optimize(settings: Settings, names: Sequence[str] | None = None) -> list[Compaction]:
    """Compact each table's small files (Delta OPTIMIZE; a streaming lake makes many of them).

    Safe while the lakehouse runs: compaction rewrites data without changing it
    (``dataChange=false``) and commits like any writer, so concurrent appends are not lost.
    """
    out = []
    for name in names or table_names():
        table = open_table(settings, name)
        if table is None:
            continue
        metrics = table.optimize.compact()
        out.append(
            Compaction(
                name,
                int(metrics.get("numFilesRemoved", 0)),
                int(metrics.get("numFilesAdded", 0)),
                table.version(),
            )
        )
    return out


def vacuum(
    settings: Settings,
    retention_hours: int = 168,
    dry_run: bool = False,
    force: bool = False,
    names: Sequence[str] | None = None,
) -> dict[str, list[str]]:
    """Delete files no longer referenced by a table and older than ``retention_hours``; return
    them per table.

    Below the table's retention (Delta's default: 7 days) a reader of an older version could lose
    its files, so deltalake refuses it unless ``force``.
    """
    out = {}
    for name in names or table_names():
        table = open_table(settings, name)
        if table is None:
            continue
        out[name] = table.vacuum(
            retention_hours=retention_hours,
            dry_run=dry_run,
            enforce_retention_duration=not force,
        )
    return out
