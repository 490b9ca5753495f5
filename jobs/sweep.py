"""A Ray Tune sweep of a use case's batch model, then the final fit, registration and the gate.

The Ray adapter of :mod:`rtml.batch.training`: the table is read from the lake once (DuckDB over
Delta), split by event time, and put in the object store once (``tune.with_parameters``); each
trial fetches it from there. CatBoost trials report the validation loss to Tune every
``ROUND_EVERY`` boosting iterations, so the ASHA scheduler stops the hopeless ones early, and stop
themselves early on it too; KMeans trials report once. Every trial is an MLflow run (Tune's
``MLflowLoggerCallback``, experiment ``rtml-<usecase>-tune``); the best configuration — best
primary metric on the validation split — is refitted on train + valid, registered and gated on
the holdout (:func:`rtml.batch.training.train_register_gate`).

Progress goes to stdout as lines ``PROGRESS {json}`` and a final ``RESULT {json}``, which
``rtml train`` reads from the job's log.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ray import tune
from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.tune.schedulers import ASHAScheduler

from jobs.cluster import connect
from rtml.batch import training
from rtml.settings import Settings
from rtml.tasks.base import Fit
from rtml.tasks.boosting import MAX_ITERATIONS
from rtml.usecases import get

#: Boosting iterations per reported round. Every report is also an MLflow REST call (Tune's
#: MLflow callback, ~0.1-0.6 s on this busy box, blocking Tune's loop): every 10 iterations made
#: result handling the bottleneck of a 16-trial sweep.
ROUND_EVERY = 25
#: Trials that run at once. Ray advertises 8 logical CPUs on 2 physical cores here; two
#: single-threaded CatBoost trials keep both cores busy without thrashing.
DEFAULT_CONCURRENCY = 2
#: Logical CPUs a trial reserves: fractional, so a sweep fits beside Serve and the learners.
CPU_PER_TRIAL = 0.5

Say = Callable[[str], None]


def trial(config: dict[str, Any], usecase: str, split: training.Split) -> None:
    """One configuration: fit on train, judge on valid, report to Tune (iterative models report
    their validation loss every ``ROUND_EVERY`` rounds too, for ASHA)."""
    spec = get(usecase)
    task = spec.task

    def on_round(iteration: int, loss: float) -> bool:
        tune.report({"valid_loss": loss, "iterations": iteration})
        return True

    run = Fit(valid=split.valid, on_round=on_round, round_every=ROUND_EVERY)
    model = task.fit(spec, config, split.train, run)
    valid = training.scores(spec, model, split.valid)
    loss = task.trial_loss(model, valid)
    tune.report({**valid, "valid_loss": loss, **task.trial_report(model), "finished": 1})


class Progress(tune.Callback):
    """One ``PROGRESS`` line per finished trial, for people and for ``rtml train``."""

    def __init__(self, total: int, metric: str, say: Say) -> None:
        self.total, self.metric, self.say, self.done = total, metric, say, 0

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.done += 1
        last = trial.last_result or {}
        self.say(
            "PROGRESS "
            + json.dumps(
                {
                    "done": self.done,
                    "total": self.total,
                    "trial": trial.trial_id,
                    self.metric: last.get(self.metric),
                    "valid_loss": last.get("valid_loss"),
                    "rounds": last.get("training_iteration"),
                    "stopped_early": "finished" not in last,
                },
                default=str,
            )
        )


@dataclass
class SweepResult:
    usecase: str
    trials: int
    rows: dict[str, int]
    best_config: dict[str, Any]
    best_valid: dict[str, float]
    version: int
    holdout: dict[str, float]
    oracle: dict[str, float] | None  # None for a use case without an oracle
    gate: dict[str, Any]
    seconds: float
    #: the reachable ceiling's holdout scores (the oracle's where the spec names no other)
    ceiling: dict[str, float] | None = None


def run_sweep(
    settings: Settings,
    usecase: str,
    trials: int,
    max_rows: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    say: Say | None = None,
) -> SweepResult:
    say = say or _say
    t0 = time.monotonic()
    spec = get(usecase)
    connect(settings)
    frame = training.load_frame(settings, usecase, max_rows=max_rows)
    split = training.time_split(frame)
    say(f"{usecase}: {len(frame)} rows from the lake, split by time {split.sizes()}")
    sweep_id = time.strftime("%Y%m%dT%H%M%S")
    say("SWEEP " + json.dumps({"id": sweep_id}))  # its trials carry the tag sweep=<id> in MLflow
    primary, higher = spec.primary_metric, spec.higher_is_better
    scheduler = (
        ASHAScheduler(
            time_attr="training_iteration",
            metric="valid_loss",
            mode="min",
            max_t=MAX_ITERATIONS // ROUND_EVERY + 1,
            grace_period=2,
            reduction_factor=3,
        )
        if spec.task.early_stopping
        else None
    )
    trainable = tune.with_resources(
        tune.with_parameters(trial, usecase=usecase, split=split), {"cpu": CPU_PER_TRIAL}
    )
    tuner = tune.Tuner(
        trainable,
        param_space=spec.task.search_space(),
        tune_config=tune.TuneConfig(
            num_samples=trials,
            scheduler=scheduler,
            max_concurrent_trials=concurrency,
            # A fresh actor per trial re-imports CatBoost, pandas and MLflow (~10 s each on this
            # busy box); reused ones only fetch the next configuration.
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=f"rtml-{usecase}-{sweep_id}",
            storage_path=str((settings.state_dir / "tune").resolve()),
            callbacks=[
                MLflowLoggerCallback(
                    tracking_uri=settings.mlflow_uri,
                    registry_uri=settings.mlflow_uri,
                    experiment_name=f"rtml-{usecase}-tune",
                    tags={"sweep": sweep_id},
                ),
                Progress(trials, primary, say),
            ],
            verbose=0,
        ),
    )
    grid = tuner.fit()
    results = [grid[i] for i in range(len(grid))]  # a ResultGrid is indexed (typed not iterable)
    # (config, metrics) of the trials that reported the primary metric
    finished = [
        (r.config or {}, r.metrics)
        for r in results
        if r.error is None and r.metrics and primary in r.metrics
    ]
    if not finished:
        errors = [str(r.error) for r in results if r.error is not None][:3]
        raise RuntimeError(f"no trial of the {usecase} sweep finished: {errors}")
    sign = 1 if higher else -1
    best_config, best_metrics = max(finished, key=lambda trial: _signed(sign, trial[1][primary]))
    config = spec.task.refit_params(best_config, best_metrics)
    best_valid = {
        k: float(best_metrics[k]) for k in spec.task.online_metrics() if k in best_metrics
    }
    say(f"best of {len(finished)} finished trials: {config} → valid {best_valid}")
    trained = training.train_register_gate(
        settings,
        usecase,
        config,
        split,
        tags={"sweep": sweep_id, "trials": str(trials)},
        run_name=f"{usecase}-{sweep_id}-final",
    )
    gate = trained.gate
    say(
        f"registered version {trained.version}: holdout {trained.holdout}; gate: {gate.decision} "
        f"({gate.metric} {gate.candidate_score:.4g} vs champion v{gate.champion_version} "
        f"{gate.champion_score})"
    )
    return SweepResult(
        usecase,
        trials,
        split.sizes(),
        config,
        best_valid,
        trained.version,
        trained.holdout,
        trained.oracle,
        asdict(gate),
        time.monotonic() - t0,
        trained.ceiling,
    )


def _say(line: str) -> None:
    # A job's log is read while it runs; `rtml train` shows the lines marked "rtml: ".
    marked = line if line.startswith(("SWEEP ", "PROGRESS ", "RESULT ")) else f"rtml: {line}"
    print(marked, flush=True)


def _signed(sign: int, value: Any) -> float:
    """A score to maximise: the metric, negated when lower is better; NaN loses."""
    number = float(value)
    return -math.inf if math.isnan(number) else sign * number
