"""Batch training without the engine: the training table, the time split, the models, their
scores, and the final fit that is registered and gated.

``jobs/sweep.py`` runs the search on Ray Tune; everything it fits and scores comes from here, so
the sweep, the final model, the gate and the tests agree on what "a model" and "its score" are.

The split is by event time, never random: a model is judged on events newer than any it learned
from, as it will be in production. ``train`` is the oldest share, ``valid`` (early stopping, trial
selection) the next, ``holdout`` (the promotion gate, never seen by the search) the newest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from rtml.batch.frames import frame_of
from rtml.batch.model import BatchModel, evaluate
from rtml.entity import features_sql
from rtml.lake import Lake
from rtml.settings import Settings
from rtml.store import registry
from rtml.store.gate import GateResult, gate
from rtml.tasks import LABEL, SEGMENT
from rtml.tasks.base import Fit
from rtml.usecases import UseCase, get

#: Columns beside the features in the training frame (and :data:`LABEL` or :data:`SEGMENT`).
TIME = "event_time"
TRUTH = "truth"  # the raw truth record (JSON): the oracle's prediction comes from it

VALID_SHARE = 0.15
HOLDOUT_SHARE = 0.15


def training_sql(spec: UseCase, since: str | None = None, max_rows: int | None = None) -> str:
    """The spec's feature SQL plus event time, label or segment and the truth record, oldest first
    (the newest ``max_rows`` rows when given)."""
    extra = [f"timestamp AS {TIME}", f"{TRUTH}"]
    if spec.target is not None:
        extra.append(f"{spec.target} AS {LABEL}")
    where = f"timestamp >= CAST('{_date(since)}' AS TIMESTAMPTZ)" if since else ""
    sql = features_sql(spec, spec.name, extra, where)
    if max_rows:
        sql = f"SELECT * FROM ({sql} ORDER BY {TIME} DESC LIMIT {int(max_rows)})"
    return f"{sql} ORDER BY {TIME}"


def _date(value: str) -> str:
    """A date or timestamp given on the command line, checked (it goes into SQL)."""
    return pd.Timestamp(value).isoformat()


def load_frame(
    settings: Settings, usecase: str, since: str | None = None, max_rows: int | None = None
) -> pd.DataFrame:
    """The use case's training table from the lake (DuckDB over Delta), oldest event first."""
    spec = get(usecase)
    frame = Lake(settings, [usecase]).query(training_sql(spec, since, max_rows)).to_pandas()
    if frame.empty:
        raise ValueError(f"no {usecase} rows in the lake yet: produce events and let them land")
    if not spec.task.supervised:  # judged against the oracle's answer: the true segment
        frame[SEGMENT] = [spec.oracle_of(t) for t in frame[TRUTH]]
    features = frame_of(spec, frame)
    return pd.concat([features, frame.drop(columns=spec.feature_names)], axis=1)


@dataclass
class Split:
    train: pd.DataFrame
    valid: pd.DataFrame
    holdout: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "holdout": len(self.holdout)}


def time_split(
    frame: pd.DataFrame, valid: float = VALID_SHARE, holdout: float = HOLDOUT_SHARE
) -> Split:
    """Oldest rows train, the next validate, the newest are held out (``frame`` is time-sorted)."""
    frame = frame.sort_values(TIME, kind="stable").reset_index(drop=True)
    n = len(frame)
    n_holdout, n_valid = max(1, round(n * holdout)), max(1, round(n * valid))
    if n - n_holdout - n_valid < 2:
        raise ValueError(f"{n} rows are too few to split into train, valid and holdout")
    cut1, cut2 = n - n_holdout - n_valid, n - n_holdout
    return Split(frame.iloc[:cut1], frame.iloc[cut1:cut2], frame.iloc[cut2:])


def fit(spec: UseCase, params: Mapping[str, Any], train: pd.DataFrame) -> Any:
    """The final fit of a chosen configuration (no validation set: it was spent on the search).
    The sweep is over: the final fit may use every core of the machine it runs on."""
    return spec.task.fit(spec, params, train, Fit(thread_count=os.cpu_count() or 1))


def scores(spec: UseCase, model: Any, rows: pd.DataFrame) -> dict[str, float]:
    """The task's scores of a fitted model on ``rows`` (which carry the label or segment)."""
    predictions = BatchModel(spec.name, 0, {}, model).predict(rows)
    return evaluate(spec, predictions, rows[spec.task.truth_column].tolist(), rows)


def oracle_scores(spec: UseCase, rows: pd.DataFrame) -> dict[str, float] | None:
    """The oracle's scores on the same rows: the best reachable, from the truth records;
    ``None`` for a use case without an oracle."""
    if spec.oracle is None:
        return None
    oracle = [spec.oracle_of(t) for t in rows[TRUTH]]
    return evaluate(spec, oracle, rows[spec.task.truth_column].tolist(), rows)


def ceiling_scores(spec: UseCase, rows: pd.DataFrame) -> dict[str, float] | None:
    """The reachable ceiling's scores on the same rows (the oracle's where the spec names no
    other ceiling); ``None`` for a use case without an oracle."""
    if spec.oracle is None:
        return None
    ceiling = [spec.ceiling_of(t) for t in rows[TRUTH]]
    return evaluate(spec, ceiling, rows[spec.task.truth_column].tolist(), rows)


@dataclass
class Trained:
    version: int
    holdout: dict[str, float]
    oracle: dict[str, float] | None
    gate: GateResult
    ceiling: dict[str, float] | None = None


def train_register_gate(
    settings: Settings,
    usecase: str,
    params: Mapping[str, Any],
    split: Split,
    tags: Mapping[str, str] | None = None,
    run_name: str | None = None,
) -> Trained:
    """Refit ``params`` on train + valid, score it on the holdout beside the oracle, log and
    register it in an MLflow run of experiment ``rtml-<usecase>-batch``, then apply the gate."""
    import mlflow

    spec = get(usecase)
    experiment = registry.experiment_id(settings, registry.model_name(usecase))
    learn = pd.concat([split.train, split.valid])
    model = fit(spec, params, learn)
    holdout = scores(spec, model, split.holdout)
    oracle = oracle_scores(spec, split.holdout)
    ceiling = ceiling_scores(spec, split.holdout)
    primary = spec.primary_metric
    version_tags = {
        **(tags or {}),
        "params": ",".join(f"{k}={v}" for k, v in params.items()),
    }
    with mlflow.start_run(experiment_id=experiment, run_name=run_name or f"{usecase}-final"):
        mlflow.log_params({k: v for k, v in params.items()})
        mlflow.log_params({f"rows_{k}": v for k, v in split.sizes().items()})
        mlflow.log_metrics({f"holdout_{k}": v for k, v in holdout.items()})
        if oracle is not None:
            share = spec.task.share(primary, holdout[primary], oracle[primary])
            mlflow.log_metrics({f"oracle_{k}": v for k, v in oracle.items()})
            mlflow.log_metric(f"share_of_oracle_{primary}", share)
            version_tags.update({f"oracle.{k}": repr(float(v)) for k, v in oracle.items()})
            version_tags["share_of_oracle"] = repr(float(share))
        if ceiling is not None:
            share = spec.task.share(primary, holdout[primary], ceiling[primary])
            mlflow.log_metrics({f"ceiling_{k}": v for k, v in ceiling.items()})
            mlflow.log_metric(f"share_of_ceiling_{primary}", share)
            version_tags["share_of_ceiling"] = repr(float(share))
        mlflow.set_tags(dict(tags or {}))
        version = registry.log_and_register(
            settings, usecase, model, frame_of(spec, learn.head(50)), holdout, tags=version_tags
        )
    truth = split.holdout[spec.task.truth_column].tolist()
    result = gate(settings, usecase, version, split.holdout, truth)
    return Trained(version, holdout, oracle, result, ceiling)
