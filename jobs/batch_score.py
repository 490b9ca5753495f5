"""Batch scoring on Ray Data: a bronze table's rows → the champion → ``<usecase>_predictions``.

The rows come from the lake through DuckDB (the spec's batch feature SQL, so the features are
the ones the model was trained on) as one Arrow table, become a Ray Dataset
(``ray.data.from_arrow``), and are scored in ``map_batches`` by a small pool of actors, each of
which loads the model version once from MLflow. The predictions, with the model's version and run,
are appended to the Delta table ``<usecase>_predictions`` (partitioned by event date), next to
bronze, where ``rtml sql`` and the UI read them.

The version is pinned before scoring starts: a promotion during the run cannot mix two models in
one batch of predictions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import ray
from deltalake import write_deltalake

from jobs.cluster import connect
from rtml.batch import training
from rtml.entity import features_sql
from rtml.lake import Lake, predictions_table, storage_options, table_uri
from rtml.settings import Settings, load_settings
from rtml.store import registry
from rtml.usecases import UseCase, get

#: Scoring actors; each holds one copy of the model. Two keep both cores busy here.
SCORERS = 2
CPU_PER_SCORER = 0.5
BATCH_ROWS = 4096
#: Bronze columns kept beside each prediction: where the row is (its Kafka position is unique in
#: bronze), whose it is, when it happened.
ID_COLUMNS = ("kafka_partition", "kafka_offset")


def scoring_sql(spec: UseCase, since: str | None = None) -> str:
    # supervised: the label; otherwise the truth record, whose oracle answer the scorer reads
    truth = spec.target or "truth"
    extra = [
        *ID_COLUMNS,
        f"CAST({spec.key} AS VARCHAR) AS entity",
        f"timestamp AS {training.TIME}",
        "event_date",
        f"{truth} AS truth",
    ]
    where = (
        f"timestamp >= CAST('{pd.Timestamp(since).isoformat()}' AS TIMESTAMPTZ)" if since else ""
    )
    return features_sql(spec, spec.name, extra, where)


class Scorer:
    """A Ray Data actor: loads one model version, scores pandas batches of feature rows."""

    def __init__(self, mlflow_uri: str, usecase: str, version: int) -> None:
        settings = load_settings(mlflow_tracking_uri=mlflow_uri)
        self.model = registry.load(settings, usecase, version)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        spec = self.model.spec
        predictions = self.model.predict(batch)
        out = batch[[*ID_COLUMNS, "entity", training.TIME, "event_date", "truth"]].copy()
        if not spec.task.supervised:  # the answer to judge a clustering by: the oracle's
            out["truth"] = [spec.oracle_of(t) for t in batch["truth"]]
        out["prediction"] = predictions
        out["model_version"] = self.model.version
        out["model_run_id"] = self.model.run_id
        return out


@dataclass
class ScoreResult:
    usecase: str
    table: str
    rows: int
    version: int
    seconds: float
    rows_per_s: float


def score(
    settings: Settings, usecase: str, since: str | None = None, version: int | None = None
) -> ScoreResult:
    """Score the use case's bronze rows (since a date) with the champion (or ``version``)."""
    t0 = time.monotonic()
    spec = get(usecase)
    if version is None:
        info = registry.champion(settings, usecase)
        if info is None:
            raise RuntimeError(
                f"{registry.model_name(usecase)} has no champion yet: `rtml train {usecase}` first"
            )
        version = info.version
    rows = Lake(settings, [usecase]).query(scoring_sql(spec, since))
    name = predictions_table(usecase)
    if rows.num_rows == 0:
        return ScoreResult(usecase, name, 0, version, time.monotonic() - t0, 0.0)
    connect(settings)
    # Blocks of a few batches each, so that every scoring actor gets a share of the rows.
    step = max(BATCH_ROWS, -(-rows.num_rows // (SCORERS * 4)))
    blocks = [rows.slice(start, step) for start in range(0, rows.num_rows, step)]
    dataset = ray.data.from_arrow(blocks).map_batches(
        Scorer,
        fn_constructor_kwargs={
            "mlflow_uri": settings.mlflow_uri,
            "usecase": usecase,
            "version": version,
        },
        batch_format="pandas",
        batch_size=BATCH_ROWS,
        concurrency=min(SCORERS, len(blocks)),
        num_cpus=CPU_PER_SCORER,
    )
    scored = pa.concat_tables(ray.get(dataset.to_arrow_refs()))
    scored = scored.append_column(
        "scored_at", pa.array([datetime.now(UTC)] * scored.num_rows, pa.timestamp("us", tz="UTC"))
    )
    write_deltalake(
        table_uri(settings, name),
        _typed(spec, scored),
        mode="append",
        partition_by=["event_date"],
        storage_options=storage_options(settings) or None,
    )
    seconds = time.monotonic() - t0
    return ScoreResult(usecase, name, scored.num_rows, version, seconds, scored.num_rows / seconds)


def _typed(spec: UseCase, table: pa.Table) -> pa.Table:
    """One schema per table whatever pandas inferred: a predictions table is appended to by many
    runs, and Delta refuses a batch whose types differ."""
    prediction, truth = spec.task.prediction_type(), spec.task.truth_type()
    stamp = pa.timestamp("us", tz="UTC")
    schema = pa.schema(
        [
            ("kafka_partition", pa.int32()),
            ("kafka_offset", pa.int64()),
            ("entity", pa.string()),
            (training.TIME, stamp),
            ("event_date", pa.date32()),
            ("truth", truth),
            ("prediction", prediction),
            ("model_version", pa.int64()),
            ("model_run_id", pa.string()),
            ("scored_at", stamp),
        ]
    )
    return table.select(schema.names).cast(schema)
