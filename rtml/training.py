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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from rtml import registry
from rtml.features import feature_sql
from rtml.lake import Lake
from rtml.settings import Settings
from rtml.usecases import UseCase, get

#: Columns beside the features in the training frame.
TIME = "event_time"
LABEL = "label"  # supervised: the spec's target
SEGMENT = "segment"  # clustering: the true segment, from the truth header (evaluation only)
TRUTH = "truth"  # the raw truth record (JSON): the oracle's prediction comes from it

VALID_SHARE = 0.15
HOLDOUT_SHARE = 0.15
#: A trial's boosting rounds; early stopping ends most well before. With learning rates from
#: 0.05, 300 rounds reach the validation optimum (the slow corner, lr 0.03 x 400 rounds, cost a
#: 16-trial sweep on 100k rows a third of its time for no better holdout score).
MAX_ITERATIONS = 300
EARLY_STOPPING_ROUNDS = 30
#: KMeans is fitted on at most this many rows: Lloyd's iterations are linear in rows and the
#: centres of four segments settle long before 50k points.
KMEANS_MAX_ROWS = 50_000


def truth_column(spec: UseCase) -> str:
    return SEGMENT if spec.task == "clustering" else LABEL


def training_sql(spec: UseCase, since: str | None = None, max_rows: int | None = None) -> str:
    """The spec's feature SQL plus event time, label or segment and the truth record, oldest first
    (the newest ``max_rows`` rows when given)."""
    extra = [f"timestamp AS {TIME}", f"{TRUTH}"]
    if spec.target is not None:
        extra.append(f"{spec.target} AS {LABEL}")
    else:
        extra.append(f"{TRUTH}->>'segment' AS {SEGMENT}")
    sql = feature_sql(spec.features, spec.name, extra)
    if since:
        sql += f" WHERE timestamp >= CAST('{_date(since)}' AS TIMESTAMPTZ)"
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
    features = registry.frame_of(spec, frame)
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


# -- models --------------------------------------------------------------------------------------


def catboost_model(
    spec: UseCase,
    params: Mapping[str, Any],
    iterations: int = MAX_ITERATIONS,
    thread_count: int = 1,
    seed: int = 0,
) -> Any:
    """A CatBoost classifier (``tfd``) or regressor (``eta``) with the swept parameters.

    The loss is the one the use case is judged by where CatBoost has it: MAE for travel time;
    log loss for fraud (F-beta at a fixed threshold needs calibrated probabilities, which log
    loss rewards). ``class_weights`` ``SqrtBalanced`` trades calibration for recall.
    """
    from catboost import CatBoostClassifier, CatBoostRegressor

    common: dict[str, Any] = {
        "iterations": iterations,
        "depth": int(params.get("depth", 6)),
        "learning_rate": float(params.get("learning_rate", 0.1)),
        "l2_leaf_reg": float(params.get("l2_leaf_reg", 3.0)),
        "border_count": int(params.get("border_count", 254)),
        "cat_features": registry.categorical_names(spec),
        "thread_count": thread_count,
        "random_seed": seed,
        "allow_writing_files": False,  # no catboost_info/ in the working folder
        "verbose": False,
    }
    if spec.task == "classification":
        weights = params.get("class_weights") or None
        return CatBoostClassifier(loss_function="Logloss", auto_class_weights=weights, **common)
    return CatBoostRegressor(loss_function="MAE", **common)


def fit_catboost(
    spec: UseCase,
    params: Mapping[str, Any],
    train: pd.DataFrame,
    valid: pd.DataFrame | None = None,
    iterations: int = MAX_ITERATIONS,
    on_round: Callable[[int, float], bool] | None = None,
    round_every: int = 10,
    thread_count: int = 1,
) -> Any:
    """Fit on ``train``; with ``valid``, stop early on its loss and call ``on_round(iteration,
    valid_loss)`` every ``round_every`` iterations (return False to stop)."""
    model = catboost_model(spec, params, iterations, thread_count)
    x, y = registry.frame_of(spec, train), train[LABEL].to_numpy()
    if valid is None:
        model.fit(x, y)
        return model
    model_loss = "Logloss" if spec.task == "classification" else "MAE"

    class Rounds:  # CatBoost's callback protocol
        def after_iteration(self, info: Any) -> bool:
            if on_round is None or (info.iteration + 1) % round_every:
                return True
            (loss,) = (v[-1] for k, v in info.metrics["validation"].items() if k == model_loss)
            return on_round(info.iteration + 1, float(loss))

    model.fit(
        x,
        y,
        eval_set=(registry.frame_of(spec, valid), valid[LABEL].to_numpy()),
        early_stopping_rounds=EARLY_STOPPING_ROUNDS,
        use_best_model=True,
        callbacks=[Rounds()],
    )
    return model


def kmeans_pipeline(spec: UseCase, k: int, scaling: str, seed: int = 0) -> Any:
    """One-hot categoricals, numerics scaled (``standard``, ``robust`` or ``none``), then KMeans."""
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, RobustScaler, StandardScaler

    scalers = {"standard": StandardScaler(), "robust": RobustScaler(), "none": "passthrough"}
    encode = ColumnTransformer(
        [
            ("num", scalers[scaling], registry.numeric_names(spec)),
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                registry.categorical_names(spec),
            ),
        ]
    )
    return Pipeline(
        [("encode", encode), ("kmeans", KMeans(n_clusters=k, n_init=3, random_state=seed))]
    )


def fit_kmeans(spec: UseCase, params: Mapping[str, Any], train: pd.DataFrame, seed: int = 0) -> Any:
    rows = (
        train if len(train) <= KMEANS_MAX_ROWS else train.sample(KMEANS_MAX_ROWS, random_state=seed)
    )
    model = kmeans_pipeline(spec, int(params["k"]), str(params["scaling"]), seed)
    return model.fit(registry.frame_of(spec, rows))


def fit(spec: UseCase, params: Mapping[str, Any], train: pd.DataFrame) -> Any:
    """The final fit of a chosen configuration (no validation set: it was spent on the search)."""
    if spec.task == "clustering":
        return fit_kmeans(spec, params, train)
    iterations = int(params.get("iterations", MAX_ITERATIONS))
    # The sweep is over: the final fit may use every core of the machine it runs on.
    return fit_catboost(
        spec, params, train, iterations=iterations, thread_count=os.cpu_count() or 1
    )


def scores(spec: UseCase, model: Any, rows: pd.DataFrame) -> dict[str, float]:
    """The spec's metrics of a fitted model on ``rows`` (which carry the label or segment)."""
    predictions = registry.BatchModel(spec.name, 0, {}, model).predict(rows)
    return registry.evaluate(spec, predictions, rows[truth_column(spec)].tolist(), rows)


def oracle_scores(spec: UseCase, rows: pd.DataFrame) -> dict[str, float]:
    """The oracle's metrics on the same rows: the best reachable, from the truth records."""
    oracle = [spec.oracle(spec.parse_truth(t)) for t in rows[TRUTH]]
    return registry.evaluate(spec, oracle, rows[truth_column(spec)].tolist(), rows)


def share_of_oracle(spec: UseCase, model: float, oracle: float) -> float:
    """How much of the reachable quality a model has: 1.0 is "as good as the oracle". For an error
    (lower is better) that is oracle / model, for a score model / oracle (as the learners report)."""
    if spec.higher_is_better:
        return model / oracle if oracle else float("nan")
    return oracle / model if model else float("nan")


@dataclass
class Trained:
    version: int
    holdout: dict[str, float]
    oracle: dict[str, float]
    gate: registry.GateResult


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
    primary = spec.primary_metric
    share = share_of_oracle(spec, holdout[primary], oracle[primary])
    with mlflow.start_run(experiment_id=experiment, run_name=run_name or f"{usecase}-final"):
        mlflow.log_params({k: v for k, v in params.items()})
        mlflow.log_params({f"rows_{k}": v for k, v in split.sizes().items()})
        mlflow.log_metrics({f"holdout_{k}": v for k, v in holdout.items()})
        mlflow.log_metrics({f"oracle_{k}": v for k, v in oracle.items()})
        mlflow.log_metric(f"share_of_oracle_{primary}", share)
        mlflow.set_tags(dict(tags or {}))
        version = registry.log_and_register(
            settings,
            usecase,
            model,
            registry.frame_of(spec, learn.head(50)),
            holdout,
            tags={
                **(tags or {}),
                **{f"oracle.{k}": repr(float(v)) for k, v in oracle.items()},
                "share_of_oracle": repr(float(share)),
                "params": ",".join(f"{k}={v}" for k, v in params.items()),
            },
        )
    result = registry.gate(
        settings, usecase, version, split.holdout, split.holdout[truth_column(spec)].tolist()
    )
    return Trained(version, holdout, oracle, result)
