"""The batch models' management routes of a use case, under ``/api/v1/{usecase}/batch/``: the
registry's versions, promote and rollback, sweeps (Ray jobs) and their trials, and the champion's
evaluation on the newest events of the lake. What the UI's Batch tab shows and does.

Each route is a thin call into the core (``rtml.store.registry``, ``rtml.ray_jobs``,
``rtml.batch.evaluation``), in a thread: MLflow, the Jobs API and the lake are blocking clients.
Acting routes (promote, rollback, a sweep) need the bearer token when ``RTML_API_TOKEN`` is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import Enum
from typing import Any

from fastapi import FastAPI, Query, Request
from mlflow.exceptions import MlflowException
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from ray_apps.serving.incremental import NoModel
from ray_apps.serving.schemas import (
    ChampionMoved,
    Evaluation,
    SweepJobs,
    SweepStarted,
    SweepStatus,
    Trials,
    Version,
    Versions,
)
from rtml import ray_jobs
from rtml.batch import evaluation
from rtml.settings import Settings
from rtml.store import registry
from rtml.usecases.base import UseCase

Errors = Callable[..., dict[int | str, dict[str, Any]]]


class PromoteRequest(BaseModel):
    version: int = Field(ge=1, description="the registered version to make champion")


class SweepRequest(BaseModel):
    trials: int = Field(8, ge=1, le=64, description="configurations to try")
    max_rows: int | None = Field(None, ge=100, description="only the newest N rows of the lake")


def batch_routes(
    app: FastAPI,
    settings: Settings,
    spec: UseCase,
    authorize: Callable[[Request], None],
    errors: Errors,
) -> None:
    uc = spec.name
    base = f"/api/v1/{uc}/batch"
    tags: list[str | Enum] = [uc]

    @app.get(f"{base}/versions", tags=tags)
    async def versions() -> Versions:
        """Every registered version, newest first: holdout scores, share of the oracle, aliases,
        the promotion gate's decision and the champion it faced."""
        found = await asyncio.to_thread(registry.versions, settings, uc)
        return Versions(
            usecase=uc,
            model=registry.model_name(uc),
            primary_metric=spec.primary_metric,
            higher_is_better=spec.higher_is_better,
            versions=[
                Version(
                    version=v.version,
                    run_id=v.run_id,
                    aliases=v.aliases,
                    metrics=dict(v.metrics),
                    gate=v.gate or None,
                    created=v.created,
                    share_of_oracle=_float(v.tags.get("share_of_oracle")),
                    gate_champion_version=_int(v.tags.get("gate.champion_version")),
                    gate_champion_score=_float(v.tags.get("gate.champion_score")),
                    params=v.tags.get("params"),
                )
                for v in found
            ],
        )

    @app.post(f"{base}/promote", tags=tags, responses=errors(400, 401, 404, 422))
    async def promote(request: Request, body: PromoteRequest) -> ChampionMoved:
        """Make a version champion by hand (the gate is bypassed; the move is recorded on the
        version). Bearer token if set."""
        authorize(request)
        try:
            await asyncio.to_thread(registry.promote, settings, uc, body.version, "by hand (API)")
        except MlflowException as exc:
            raise HTTPException(
                404, f"{registry.model_name(uc)} has no version {body.version}: {exc.message}"
            ) from None
        return ChampionMoved(usecase=uc, champion=body.version)

    @app.post(f"{base}/rollback", tags=tags, responses=errors(401, 409))
    async def rollback(request: Request) -> ChampionMoved:
        """Move the champion alias back to the previous champion. Bearer token if set."""
        authorize(request)
        try:
            back = await asyncio.to_thread(registry.rollback, settings, uc)
        except (ValueError, MlflowException) as exc:
            raise HTTPException(409, str(exc)) from None
        return ChampionMoved(usecase=uc, champion=back)

    @app.post(f"{base}/sweeps", tags=tags, status_code=202, responses=errors(400, 401, 422, 503))
    async def start_sweep(request: Request, body: SweepRequest) -> SweepStarted:
        """Start a Ray Tune sweep of the batch model as a Ray job (``python -m jobs.tune``, what
        `rtml train` submits); follow it at ``.../sweeps/{job_id}``. Bearer token if set."""
        authorize(request)
        job_id = await asyncio.to_thread(
            ray_jobs.submit_sweep, settings, uc, body.trials, body.max_rows
        )
        return SweepStarted(usecase=uc, job_id=job_id, trials=body.trials)

    @app.get(f"{base}/sweeps", tags=tags, responses=errors(503))
    async def list_sweeps() -> SweepJobs:
        """The use case's sweep jobs, newest first, with their status."""
        found = await asyncio.to_thread(ray_jobs.sweeps, settings, uc)
        return SweepJobs.model_validate({"usecase": uc, "sweeps": found})

    @app.get(
        f"{base}/sweeps/{{job_id}}",
        tags=tags,
        responses=errors(404, 503),
        response_model_exclude_unset=True,
    )
    async def one_sweep(job_id: str) -> SweepStatus:
        """A sweep job: status, trials finished of those asked, each trial's score as it finished,
        the outcome (version, holdout scores, the gate's decision) once it ends."""
        try:
            found = await asyncio.to_thread(ray_jobs.sweep, settings, uc, job_id)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        return SweepStatus.model_validate({"usecase": uc, **found})

    @app.get(f"{base}/trials", tags=tags, responses=errors(422, 503))
    async def trials(
        sweep: str | None = Query(None, description="one sweep's id (its SWEEP line)"),
    ) -> Trials:
        """Every trial of the use case's sweeps (or of one), with its parameters and scores."""
        try:
            found = await asyncio.to_thread(registry.trials, settings, uc, sweep)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return Trials.model_validate(
            {"usecase": uc, "primary_metric": spec.primary_metric, "trials": found}
        )

    @app.get(
        f"{base}/evaluation",
        tags=tags,
        responses=errors(422, 503),
        response_model_exclude_unset=True,
    )
    async def evaluate(
        rows: int = Query(2000, ge=10, le=50_000, description="the newest N events"),
    ) -> Evaluation:
        """The champion on the newest events of the lake, beside the oracle: for classification the
        confusion matrix, ROC and precision-recall curves; for regression predicted vs actual and
        the residuals; for clustering the cluster sizes and a 2-D projection."""
        try:
            found = await asyncio.to_thread(evaluation.evaluate_champion, settings, uc, rows)
        except LookupError as exc:
            raise NoModel(str(exc)) from None
        return Evaluation.model_validate(found)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None
