"""The HTTP API, ``/api/v1``: one FastAPI app over a :class:`~ray_apps.serving.service.Service`.

Routes are registered per use case with literal paths (``/api/v1/tfd/batch/predict``), so the
OpenAPI document at ``/openapi.json`` (and ``/docs``) shows each use case's own event schema and
its own answers (every route declares its answer, a model of :mod:`ray_apps.serving.schemas`); an
unknown use case falls through to one catch-all that answers 404 with the known ones.

Errors are the client's when they are 4xx, with a message that says what is wrong: 422 with one
entry per bad field, 413 for a body over ``serve_max_body_bytes`` or a list over
``serve_max_events``, 401 without the bearer token on control routes (when ``RTML_API_TOKEN`` is
set), 404 for an unknown use case, 409 to reset a running learner, 503 with the reason when a
model does not exist yet. Every error answered is counted in ``rtml_serve_errors``.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any

from confluent_kafka import KafkaException
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from ray.exceptions import RayError
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from ray_apps.serving.batch_routes import batch_routes
from ray_apps.serving.entities import Featured, as_of, memory, version_of
from ray_apps.serving.incremental import NoModel
from ray_apps.serving.requests import (
    BadRequest,
    body_schema,
    parse_events,
    predict_model,
    read_json,
)
from ray_apps.serving.schemas import (
    Column,
    EntityLookup,
    Feature,
    Feedback,
    Health,
    LakeTable,
    LakeTables,
    Learners,
    LearnersReset,
    Links,
    ModelInfo,
    Problem,
    SqlResult,
    UseCaseInfo,
    UseCases,
    prediction_answers,
)
from ray_apps.serving.service import LearnerRunning, Service
from ray_apps.serving.ui import build_dir, mount_ui
from rtml import sql
from rtml.entity import micros
from rtml.online import build_model
from rtml.usecases import USECASES
from rtml.usecases.base import UseCase

API = "/api/v1"
#: A dependency that does not answer: 503 with the reason.
UNAVAILABLE: tuple[type[Exception], ...] = (
    TimeoutError,
    ConnectionError,
    RayError,
    KafkaException,
    RedisError,
)


#: What each error status means here; a route declares the ones it can answer, so clients (and
#: the schema fuzzer of `rtml verify`) know every answer they may get.
ERRORS = {
    400: "the body is not JSON (or, for SQL, the statement is refused)",
    401: "a control route without the bearer token (when RTML_API_TOKEN is set)",
    404: "no such version, job, use case or entity",
    409: "reset while the learner runs",
    413: "the body or the list is over the limit",
    422: "invalid events: one entry per bad field",
    503: "no model to answer yet, with the reason",
}
EVENT_ERRORS = (400, 413, 422, 503)
#: An entity lookup's ``at``.
AT = (
    "the next event's time (default: now, or the learner's newest event time when the stream "
    "runs ahead of the clock)"
)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem, "description": ERRORS[code]} for code in codes}


class SqlRequest(BaseModel):
    sql: str = Field(
        min_length=1, max_length=20_000, description="one read-only SELECT over the lake"
    )
    limit: int | None = Field(None, ge=1, description="most rows back (at most RTML_SQL_ROW_LIMIT)")


class BodyLimit:
    """413 before reading a body whose declared length is over the limit (pure ASGI: no cost to
    other requests). Chunked bodies without a length are bounded while read (``read_json``)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                    detail = (
                        f"request body of {int(value)} bytes is over the "
                        f"{self.max_bytes} byte limit"
                    )
                    await JSONResponse({"detail": detail}, 413)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _labels(path: str) -> tuple[str, str]:
    """(usecase, kind) of a path, for metrics: ``/api/v1/tfd/batch/predict`` → (tfd, batch)."""
    parts = path.split("/")
    usecase = parts[3] if len(parts) > 3 and parts[3] in USECASES else ""
    kind = parts[4] if usecase and len(parts) > 4 and parts[4] in ("incremental", "batch") else ""
    return usecase, kind


def make_app(service: Service) -> FastAPI:
    settings = service.settings
    metrics = service.metrics
    app = FastAPI(
        title="rtml",
        version="1",
        description=(
            "Online (River, learning now) and batch (MLflow champion) models of each use case."
        ),
    )
    app.add_middleware(BodyLimit, max_bytes=settings.serve_max_body_bytes)
    components: dict[str, Any] = {}

    # -- errors: always a status that says whose fault, and a message ----------------------------
    def error(
        request: Request, status: int, detail: Any, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        usecase, kind = _labels(request.url.path)
        metrics.errors.inc(tags={"usecase": usecase, "kind": kind, "status": str(status)})
        return JSONResponse({"detail": detail}, status, headers=headers)

    async def on_bad_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BadRequest)
        return error(request, exc.status, exc.detail)

    async def on_no_model(request: Request, exc: Exception) -> JSONResponse:
        return error(request, 503, str(exc))

    async def on_conflict(request: Request, exc: Exception) -> JSONResponse:
        return error(request, 409, str(exc))

    async def on_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # A dependency (a learner, Kafka, Redis) that did not answer: not the client's mistake,
        # and not a bug of the API either.
        return error(
            request, 503, f"a dependency did not answer: {type(exc).__name__}: {exc}"[:500]
        )

    async def on_sql(request: Request, exc: Exception) -> JSONResponse:
        return error(request, 400, str(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return error(request, exc.status_code, exc.detail, getattr(exc, "headers", None))

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        detail = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p != "body") or "body",
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        return error(request, 422, detail)

    for exc_type, handler in (
        (BadRequest, on_bad_request),
        (NoModel, on_no_model),
        (LearnerRunning, on_conflict),
        (sql.SqlError, on_sql),
        (HTTPException, on_http),
        (RequestValidationError, on_validation),
        *((unavailable, on_unavailable) for unavailable in UNAVAILABLE),
    ):
        app.add_exception_handler(exc_type, handler)

    def authorize(request: Request) -> None:
        token = settings.api_token
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.get_secret_value().encode()
        ):
            raise HTTPException(
                401,
                "this route needs 'Authorization: Bearer <RTML_API_TOKEN>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    # -- service-wide routes ----------------------------------------------------------------------
    @app.get(f"{API}/usecases", tags=["meta"], response_model_exclude_unset=True)
    async def usecases() -> UseCases:
        """The use cases this API serves, with their task, target and features."""
        return UseCases(usecases=[_describe(spec) for spec in USECASES.values()])

    @app.get(f"{API}/health", tags=["meta"], response_model_exclude_unset=True)
    async def health() -> Health:
        """Each dependency's state (Redis, Kafka, MLflow, Ray) and what each use case serves."""
        return await service.health()

    @app.post(f"{API}/sql", tags=["lake"], responses=errors(400, 413, 422))
    async def run_sql(body: SqlRequest) -> SqlResult:
        """One read-only SELECT over the lake's Delta tables (row and time limited); anything
        else is refused with 400 and the reason."""
        limit = min(body.limit or settings.sql_row_limit, settings.sql_row_limit)
        result = await asyncio.to_thread(sql.run, body.sql, settings, None, limit)
        return SqlResult(
            columns=result.table.column_names,
            rows=result.rows(),
            row_count=result.table.num_rows,
            truncated=result.truncated,
            seconds=round(result.seconds, 4),
        )

    @app.get(f"{API}/sql/tables", tags=["lake"], responses=errors(503))
    async def sql_tables() -> LakeTables:
        """The lake's tables: columns with their types, rows, files, Delta version."""
        from rtml.lake import Lake

        infos = await asyncio.to_thread(lambda: Lake(settings).info())
        return LakeTables(
            tables=[
                LakeTable(
                    name=t.name,
                    rows=t.rows,
                    files=t.files,
                    version=t.version,
                    partition_by=t.partition_by,
                    columns=[Column(name=n, type=k) for n, k in t.columns],
                )
                for t in infos
            ]
        )

    @app.get(f"{API}/links", tags=["meta"])
    async def links() -> Links:
        """Where the stack's own consoles are: the Ray dashboard, MLflow, Prometheus."""
        return Links(
            ray_dashboard=settings.ray_dashboard_url,
            mlflow=settings.mlflow_uri,
            prometheus=settings.prometheus_url,
        )

    for spec in USECASES.values():
        _usecase_routes(app, service, spec, authorize, components)
        batch_routes(app, settings, spec, authorize, errors)

    @app.api_route(
        f"{API}/{{usecase}}/{{rest:path}}",
        methods=["GET", "POST", "PUT", "DELETE"],
        include_in_schema=False,
    )
    async def unknown(usecase: str, rest: str) -> None:
        if usecase in USECASES:
            raise HTTPException(404, f"no endpoint {rest!r} for {usecase}; see /docs")
        raise HTTPException(404, f"unknown use case {usecase!r}; known: {', '.join(USECASES)}")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(components)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    # the UI at /, after every API route (ray_apps/serving/ui.py)
    mount_ui(app, build_dir(service.settings.checkout_dir))
    return app


def _describe(spec: UseCase) -> UseCaseInfo:
    return UseCaseInfo.model_validate(
        {
            "name": spec.name,
            "title": spec.title,
            **spec.task.describe(),
            "target": spec.target,
            "key": spec.key,
            "topic": spec.topic,
            "features": _features(spec),
            "entity_fields": list(spec.entities.groups(spec.key)) if spec.entities else [],
        }
    )


def _features(spec: UseCase) -> list[Feature]:
    return [Feature(name=f.name, kind=f.kind, doc=f.doc) for f in spec.features]


def _usecase_routes(
    app: FastAPI,
    service: Service,
    spec: UseCase,
    authorize: Callable[[Request], None],
    components: dict[str, Any],
) -> None:
    settings, metrics, uc = service.settings, service.metrics, spec.name
    base = f"{API}/{uc}"
    request_model = predict_model(uc)
    one_or_many = body_schema(request_model, settings.serve_max_events, components)
    labelled = body_schema(spec.event, settings.serve_max_events, components)
    answers = prediction_answers(uc)
    tags: list[str | Enum] = [uc]
    online = build_model(spec)
    online_name = type(
        list(online.steps.values())[-1] if hasattr(online, "steps") else online
    ).__name__

    async def featured(request: Request) -> tuple[list[Featured], bool]:
        """The request's events with every feature of each, their entities as the learners
        stored them (one Redis round trip for the whole request)."""
        body = await read_json(request, settings.serve_max_body_bytes)
        parsed = parse_events(body, request_model, settings.serve_max_events)
        return await service.entities[uc].featured(parsed.events), parsed.many

    def shown(done: list[Featured], many: bool) -> dict[str, Any]:
        """``features`` and ``entities_as_of`` of the answer, when asked for."""
        xs = [f.features for f in done]
        used = [as_of(f.records) for f in done]
        return (
            {"features": xs, "entities_as_of": used}
            if many
            else {
                "features": xs[0],
                "entities_as_of": used[0],
            }
        )

    async def timed(
        kind: str,
        request: Request,
        answer: Callable[[list[Featured]], Awaitable[dict[str, Any]]],
        show: bool,
    ) -> JSONResponse:
        """The answer as a ``JSONResponse`` built here, not validated against the route's
        response model: predictions are the hot path (the model is there for the document)."""
        t0 = time.perf_counter()
        done, many = await featured(request)
        xs = [f.features for f in done]
        t1 = time.perf_counter()
        out = await answer(done)
        t2 = time.perf_counter()
        labels = {"usecase": uc, "kind": kind}
        metrics.latency.observe(t2 - t0, tags=labels)
        metrics.predictions.inc(len(xs), tags=labels)
        service.note_version(uc, kind, out["model_version"])
        if not many:
            out = {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in out.items()}
            out["prediction"] = out.pop("predictions")
        if show:
            out.update(shown(done, many))
        # Server-Timing: the replica's own share of the request (browsers' devtools show it).
        app_ms = (time.perf_counter() - t0) * 1000
        timing = (
            f"read;dur={(t1 - t0) * 1000:.2f}, model;dur={(t2 - t1) * 1000:.2f}, "
            f"app;dur={app_ms:.2f}"
        )
        return JSONResponse({"usecase": uc, "kind": kind, **out}, headers={"Server-Timing": timing})

    # The routes that read events: one or a list of them, and the errors that events can cause.
    predicting: dict[str, Any] = {
        "tags": tags,
        "openapi_extra": one_or_many,
        "responses": errors(*EVENT_ERRORS),
    }

    show_features = Query(
        False,
        description="also answer the features used (``features``, name → value) and how fresh "
        "their entity memories were (``entities_as_of``)",
    )

    @app.post(f"{base}/incremental/predict", response_model=answers.incremental, **predicting)
    async def incremental_predict(request: Request, features: bool = show_features) -> JSONResponse:
        """What the online model knows now: asked of the learner, or its last checkpoint while
        the learner restarts (``source``). One event, or a list (answered in order). Entity
        features come from the memories the learners stored."""

        def answer(done: list[Featured]) -> Awaitable[dict[str, Any]]:
            return service.predict_incremental(uc, [f.features for f in done])

        return await timed("incremental", request, answer, features)

    @app.post(f"{base}/batch/predict", response_model=answers.batch, **predicting)
    async def batch_predict(request: Request, features: bool = show_features) -> JSONResponse:
        """The registry champion's prediction, cached in Redis by model version, features and
        the version of the entity memories they were read from (``Cache-Control: no-cache``
        skips the cache)."""
        use_cache = "no-cache" not in request.headers.get("cache-control", "")

        def answer(done: list[Featured]) -> Awaitable[dict[str, Any]]:
            rows = [f.features for f in done]
            versions = [version_of(f.records) for f in done]
            return service.predict_batch(uc, rows, use_cache, versions)

        return await timed("batch", request, answer, features)

    @app.post(f"{base}/batch/explain", response_model=answers.explanation, **predicting)
    async def batch_explain(request: Request) -> dict[str, Any]:
        """Per-feature contributions of one event to the champion's prediction (its entity
        features too), with the features explained and their entity memories' freshness."""
        done, many = await featured(request)
        if many:
            raise BadRequest(422, "explain takes one event, not a list")
        x = done[0].features
        explained = await service.batch[uc].explain(x)
        return {"usecase": uc, "kind": "batch", **explained, **shown(done, False)}

    @app.get(f"{base}/incremental/metrics", tags=tags, response_model_exclude_unset=True)
    async def incremental_metrics() -> Learners:
        """Each learner shard's prequential metrics (beside the oracle's) and status."""
        learners = await service.incremental[uc].status()
        return Learners.model_validate({"usecase": uc, "learners": learners})

    @app.post(
        f"{base}/incremental/learn",
        tags=tags,
        status_code=202,
        openapi_extra=labelled,
        responses=errors(*EVENT_ERRORS),
    )
    async def incremental_learn(request: Request) -> Feedback:
        """Labelled feedback: the events go to the use case's topic, and its learner learns each
        exactly once (the answer lists where they were written)."""
        body = await read_json(request, settings.serve_max_body_bytes)
        parsed = parse_events(body, spec.event, settings.serve_max_events)
        return await service.feedback(uc, parsed.events)

    # The learner controls: the token where set, a learner's status with only what it reports.
    control: dict[str, Any] = {
        "tags": tags,
        "responses": errors(401, 503),
        "response_model_exclude_unset": True,
    }

    @app.post(f"{base}/incremental/start", **control)
    async def start(request: Request) -> Learners:
        """Start the learner(s); they resume from the latest checkpoint. Bearer token if set."""
        authorize(request)
        learners = await service.start_learners(uc)
        return Learners.model_validate({"usecase": uc, "learners": learners})

    @app.post(f"{base}/incremental/stop", **control)
    async def stop(request: Request) -> Learners:
        """Stop the learner(s) after a final checkpoint. Bearer token if set."""
        authorize(request)
        learners = await service.stop_learners(uc)
        return Learners.model_validate({"usecase": uc, "learners": learners})

    @app.post(f"{base}/incremental/reset", tags=tags, responses=errors(401, 409, 503))
    async def reset(request: Request) -> LearnersReset:
        """Forget the stopped learner's model and checkpoint (409 while it runs). Bearer token
        if set."""
        authorize(request)
        learners = await service.reset_learners(uc)
        return LearnersReset.model_validate({"usecase": uc, "learners": learners})

    @app.get(f"{base}/model", tags=tags, response_model_exclude_unset=True)
    async def model() -> ModelInfo:
        """Both models: the online one's checkpoints and the batch champion's version and
        metrics."""
        inc = service.incremental[uc]
        return ModelInfo.model_validate(
            {
                "usecase": uc,
                "features": _features(spec),
                "incremental": {
                    "model": online_name,
                    "params": dict(spec.online_model),
                    "checkpoints": {
                        s: {"version": v, "age_s": round(time.time() - saved_at, 3)}
                        for s, (v, saved_at) in inc.latest.items()
                    },
                    "fallback": {
                        s: {"version": f.version, "learned": f.learned}
                        for s, f in inc.fallback.items()
                    },
                },
                "batch": service.batch[uc].describe(),
            }
        )

    if spec.entities is not None:
        fields = list(spec.entities.groups(spec.key))

        @app.get(
            f"{base}/entities/{{field}}/{{value}}",
            tags=tags,
            responses=errors(404, 422, 503),
            response_model_exclude_unset=True,
        )
        async def entity(
            field: str,
            value: str,
            at: Annotated[datetime | None, Query(description=AT)] = None,
        ) -> EntityLookup:
            """One entity's memory as the learners stored it (events held, newest event, when
            written, labels known) and the entity features its next event would get."""
            if field not in fields:
                raise HTTPException(
                    404,
                    f"{uc} has no entity field {field!r}; its entity fields: {', '.join(fields)}",
                )
            reader = service.entities[uc]
            record = await reader.lookup(field, value)
            if record is None:
                raise HTTPException(
                    404,
                    f"no {field}={value!r} in {uc}'s entity store: never seen, forgotten after "
                    "its horizon, or no learner has written it yet (its next event gets the "
                    "features of an entity with no history)",
                )
            at_us = micros(at if at.tzinfo else at.replace(tzinfo=UTC)) if at else None
            return EntityLookup.model_validate(
                {"usecase": uc, "memory": memory(record), **reader.next_features(record, at_us)}
            )

    @app.get(f"{base}/sample", tags=tags, response_model=spec.event)
    async def sample() -> dict[str, Any]:
        """A fresh generated event, ready to send to predict (handy for the UI and curl)."""
        return service.sample(uc)
