"""The API's contract without services: every route declares the schema of its answer in the
OpenAPI document (the one the UI's types are generated from), and the app answers as it declares.

The answers come from a stand-in service that holds the real parts wherever they need no service:
a lake of generated events (the SQL and evaluation routes read it), a champion fitted in seconds,
a learner's checkpoint copy answering while no learner runs, a sweep's log as the job writes it.
What needs Kafka, Redis or Ray (feedback, learner control, a running learner's status) is held to
the same contract by the serving integration test.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from ray_apps.learning import actor as learner
from ray_apps.serving import batch_routes, service
from ray_apps.serving.batch import Batch
from ray_apps.serving.entities import EntityReader
from ray_apps.serving.incremental import Fallback, Incremental
from ray_apps.serving.routes import make_app
from rtml import ray_jobs
from rtml.batch import training
from rtml.batch.model import BatchModel
from rtml.entity_store import EntityStore
from rtml.online import build_model, predict_then_learn
from rtml.settings import Settings, load_settings
from rtml.store.gate import GateResult
from rtml.store.registry import VersionInfo
from rtml.tasks.base import Fit
from rtml.usecases import USECASES, get
from rtml.usecases.generators import generator_for
from streaming.sample_lake import write_bronze
from tests.contract import Contract
from tests.unit.test_serving import Memories, _Sync, learned
from tests.unit.test_ui import _NoMetrics

#: Events in each use case's lake, and learned by each checkpoint copy: enough to fit and score.
ROWS = 300


def _document(settings: Settings) -> dict[str, Any]:
    stand_in: Any = SimpleNamespace(settings=settings, metrics=_NoMetrics())
    return make_app(stand_in).openapi()


def _objects(document: dict[str, Any], schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The object schemas an answer may be: references followed, each option of a union."""
    ref = schema.get("$ref")
    if ref:
        yield from _objects(document, document["components"]["schemas"][ref.split("/")[-1]])
    elif "anyOf" in schema or "oneOf" in schema:
        for option in schema.get("anyOf", schema.get("oneOf")):
            yield from _objects(document, option)
    else:
        yield schema


def test_every_route_declares_the_schema_of_its_answer() -> None:
    settings = Settings()
    stand_in: Any = SimpleNamespace(settings=settings, metrics=_NoMetrics())
    app = make_app(stand_in)
    contract = Contract(app.openapi())
    routes = [r for r in app.routes if isinstance(r, APIRoute) and r.include_in_schema]
    assert len(routes) > 5 * len(USECASES)
    for route in routes:
        status = route.status_code or 200
        for method in route.methods:
            schema = contract.schema(method, route.path, status)
            assert schema, f"{method} {route.path} declares no schema for its {status} answer"
            for shape in _objects(contract.document, schema):
                assert shape.get("properties"), f"{method} {route.path}: {status} is {shape}"


def test_each_use_case_has_its_own_prediction_schema() -> None:
    schemas = _document(Settings())["components"]["schemas"]
    for name, spec in USECASES.items():
        prediction = schemas[f"{name.capitalize()}Prediction"]
        assert set(prediction["properties"]) == set(spec.task.answer_fields(spec))


# -- the answers over the stand-in service ------------------------------------------------------


class _Checkpoints:
    """The checkpoint store as the replica asks it (no Redis): one checkpoint per shard."""

    def info(self, usecase: str, shard: int) -> dict[str, float]:
        return {"version": 3, "age_s": 5.0}


def _online_copy(usecase: str) -> Fallback:
    """A checkpoint copy of a model that learned ``ROWS`` events, as the replica loads it."""
    spec = get(usecase)
    model = build_model(spec)
    events = generator_for(usecase, seed=2)
    for _ in range(ROWS):
        event = spec.parse(next(events).event)
        label = spec.label_of(event) if spec.task.supervised else None
        predict_then_learn(spec, model, spec.features_of(event), label)
    return Fallback(3, time.time() - 5, ROWS, model, time.time())


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = load_settings(state_dir=tmp_path_factory.mktemp("contract"))
    for i, name in enumerate(USECASES):
        write_bronze(settings, name, ROWS, seed=30 + i)
    return settings


@pytest.fixture
def client(lake: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app over a :class:`~ray_apps.serving.service.Service` without its connections and
    threads; every answer is checked against the app's own document as it arrives."""
    monkeypatch.setattr(learner, "find", lambda *_: None)  # no learner runs: the copy answers
    monkeypatch.setattr(service, "broker_ready", lambda *_: False)

    async def pong() -> bool:
        return True

    svc: Any = service.Service.__new__(service.Service)
    svc.settings, svc.metrics = lake, _NoMetrics()
    svc.aioredis = SimpleNamespace(ping=pong)
    svc._samples, svc._sample_lock, svc._versions = {}, threading.Lock(), {}
    svc._in_flight = {"incremental": 0, "batch": 0}
    svc.incremental, svc.batch, svc.entities = {}, {}, {}
    for name, spec in USECASES.items():
        memories = Memories()  # the entity store as a learner of ROWS events left it
        svc.memories = {**getattr(svc, "memories", {}), name: (memories, learned(name, memories))}
        svc.entities[name] = EntityReader(memories, spec)  # type: ignore[arg-type]
        svc.incremental[name] = Incremental(spec, lake, _Checkpoints())  # type: ignore[arg-type]
        svc.incremental[name].fallback[0] = _online_copy(name)
        svc.incremental[name].latest[0] = (3, time.time() - 5)
        cache: Any = SimpleNamespace(enabled=False)
        svc.batch[name] = Batch(spec, lake, cache, svc.metrics)
        frame = training.load_frame(lake, name)
        fitted = spec.task.fit(spec, dict(spec.task.quick_params), frame, Fit())
        svc.batch[name].model = BatchModel(name, 1, {spec.primary_metric: 0.5}, fitted, "run-1")
    monkeypatch.setattr(
        batch_routes.evaluation.registry,
        "load_champion",
        lambda _, usecase: svc.batch[usecase].model,
    )
    app = make_app(svc)
    contract = Contract(app.openapi())

    def check(response: Any) -> None:
        response.read()
        request = response.request
        body = json.loads(response.content) if response.content else None
        contract.check(request.method, request.url.path, response.status_code, body)

    with TestClient(app) as test_client:
        test_client.event_hooks = {"request": [], "response": [check]}
        test_client.memories = svc.memories  # type: ignore[attr-defined]
        yield test_client


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _sample(usecase: str, seed: int) -> dict[str, Any]:
    return dict(next(generator_for(usecase, seed=seed)).event)


def test_the_service_answers_as_it_declares(client: TestClient) -> None:
    _ok(client.get("/api/v1/usecases"))
    _ok(client.get("/api/v1/links"))
    health = _ok(client.get("/api/v1/health"))
    assert health["status"] == "degraded" and "detail" in health["dependencies"]["kafka"]
    assert "detail" not in health["dependencies"]["redis"]  # a key left out stays out
    assert _ok(client.post("/api/v1/sql", json={"sql": "SELECT 41 + 1 AS x"}))["rows"] == [
        {"x": 42}
    ]
    tables = _ok(client.get("/api/v1/sql/tables"))["tables"]
    assert {t["name"] for t in tables} >= set(USECASES)


@pytest.mark.parametrize("usecase", list(USECASES))
def test_a_use_case_answers_as_it_declares(client: TestClient, usecase: str) -> None:
    base = f"/api/v1/{usecase}"
    sample = _ok(client.get(f"{base}/sample"))
    assert get(usecase).parse(sample)
    events = [_sample(usecase, seed) for seed in (5, 6)]
    for kind in ("incremental", "batch"):
        one = _ok(client.post(f"{base}/{kind}/predict", json=events[0]))
        many = _ok(client.post(f"{base}/{kind}/predict", json=events))
        assert "prediction" in one and len(many["predictions"]) == 2
    _ok(client.post(f"{base}/batch/explain", json=events[0]))
    learners = _ok(client.get(f"{base}/incremental/metrics"))["learners"]
    assert learners[0]["running"] is False and learners[0]["checkpoint"]["version"] == 3
    described = _ok(client.get(f"{base}/model"))
    assert described["batch"]["version"] == 1 and "reason" not in described["batch"]
    evaluation = _ok(client.get(f"{base}/batch/evaluation", params={"rows": ROWS}))
    assert evaluation["task"] in evaluation


@pytest.mark.parametrize("usecase", [n for n, s in USECASES.items() if s.entities is not None])
def test_answers_show_the_features_used_and_the_entity_memory_they_came_from(
    client: TestClient, usecase: str
) -> None:
    spec = get(usecase)
    memories, seen = client.memories[usecase]  # type: ignore[attr-defined]
    store = EntityStore(_Sync(memories), spec)  # type: ignore[arg-type]
    event = seen[-1].model_dump(mode="json")  # an entity the store holds, asked again
    event[spec.entities.id_field] = "asked-again"  # type: ignore[union-attr]
    state, records = store.state_for(spec.parse(event).model_dump())
    offline = spec.features_of(spec.parse(event), state)
    base = f"/api/v1/{usecase}"
    for kind in ("incremental", "batch"):
        plain = _ok(client.post(f"{base}/{kind}/predict", json=event))
        assert "features" not in plain and "entities_as_of" not in plain
        one = _ok(client.post(f"{base}/{kind}/predict?features=true", json=event))
        assert one["features"] == pytest.approx(offline)
        assert {(m["field"], m["value"]) for m in one["entities_as_of"]} == {
            (r.field, r.value) for r in records
        }
        many = _ok(client.post(f"{base}/{kind}/predict?features=true", json=[event, event]))
        assert many["features"] == [pytest.approx(offline)] * 2
        assert len(many["entities_as_of"]) == 2
    explained = _ok(client.post(f"{base}/batch/explain", json=event))
    assert set(explained["contributions"]) == set(spec.feature_names)
    assert explained["features"] == pytest.approx(offline)
    assert set(spec.entity_feature_names) <= set(explained["contributions"])

    # an entity looked up: its memory and the features of its next event
    key = str(event[spec.key])
    looked = _ok(client.get(f"{base}/entities/{spec.key}/{key}"))
    held = store.lookup(spec.key, key)
    assert held is not None and looked["memory"]["events"] == len(held.observations)
    assert set(looked["features"]) == {
        f.name
        for f in spec.entities.features
        if (f.entity or spec.key) == spec.key  # type: ignore[union-attr]
    }
    assert looked["label_known"] <= looked["memory"]["events"]
    # at the newest event's own time, just after it, a next event sees exactly the learner's view
    at = client.get(f"{base}/entities/{spec.key}/{key}", params={"at": looked["at"]})
    assert _ok(at)["features"] == looked["features"]
    missing = client.get(f"{base}/entities/{spec.key}/no-such-entity")
    assert missing.status_code == 404 and "no-such-entity" in missing.json()["detail"]
    wrong = client.get(f"{base}/entities/no_such_field/{key}")
    assert wrong.status_code == 404 and spec.key in wrong.json()["detail"]


def test_the_batch_registry_answers_as_it_declares(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = [
        VersionInfo(2, "run-2", [], {"mae": 118.0}, "rejected", 1.0, {"share_of_oracle": "0.9"}),
        VersionInfo(1, "run-1", ["champion"], {"mae": 120.0}, "first", 0.5, {}),
    ]
    monkeypatch.setattr(batch_routes.registry, "versions", lambda *_: found)
    monkeypatch.setattr(batch_routes.registry, "promote", lambda *_: None)
    monkeypatch.setattr(batch_routes.registry, "rollback", lambda *_: 1)
    _ok(client.get("/api/v1/eta/batch/versions"))
    _ok(client.post("/api/v1/eta/batch/promote", json={"version": 2}))
    _ok(client.post("/api/v1/eta/batch/rollback"))
    run = SimpleNamespace(
        info=SimpleNamespace(run_id="r1", status="FINISHED", start_time=1_700_000_000_000),
        data=SimpleNamespace(
            tags={"sweep": "20261203T081500"},
            params={"depth": "6", "learning_rate": "0.1"},
            metrics={"mae": 120.5, "valid_loss": 130.0, "time_total_s": 3.0},
        ),
    )
    mlflow_client = SimpleNamespace(
        get_experiment_by_name=lambda _: SimpleNamespace(experiment_id="1"),
        search_runs=lambda *_, **__: [run],
    )
    monkeypatch.setattr(batch_routes.registry, "client", lambda _: mlflow_client)
    assert _ok(client.get("/api/v1/eta/batch/trials"))["trials"][0]["params"]["depth"] == "6"


def test_a_sweep_answers_as_it_declares(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep's status from the lines its job writes (``jobs.sweep``'s progress callback and
    ``jobs.tune``'s outcome), read back through the Jobs API."""
    from ray.job_submission import JobDetails, JobStatus

    from jobs.sweep import Progress, SweepResult

    lines = ['SWEEP {"id": "20261203T081500"}', "rtml: eta: 300 rows from the lake"]
    progress = Progress(2, "mae", lines.append)
    for i, last in enumerate(({"mae": 120.5, "valid_loss": 130.0, "finished": 1}, {})):
        progress.on_trial_complete(i, [], SimpleNamespace(trial_id=f"t{i}", last_result=last))
    gate = GateResult(3, "promoted", "mae", 118.0, 2, 120.0)
    result = SweepResult(
        usecase="eta",
        trials=2,
        rows={"train": 210, "valid": 45, "holdout": 45},
        best_config={"depth": 6, "border_count": 254},
        best_valid={"mae": 120.5},
        version=3,
        holdout={"mae": 118.0},
        oracle={"mae": 104.0},
        gate=asdict(gate),
        seconds=12.5,
    )
    lines.append("RESULT " + json.dumps(asdict(result), default=str))
    job = JobDetails(
        type="SUBMISSION",
        submission_id="raysubmit_1",
        status=JobStatus.SUCCEEDED,
        entrypoint="python -m jobs.tune --usecase eta --trials 2",
        message="Job finished successfully.",
        start_time=1_700_000_000_000,
        end_time=1_700_000_060_000,
        metadata={ray_jobs.KIND: "sweep", ray_jobs.USECASE: "eta"},
    )
    jobs = SimpleNamespace(
        list_jobs=lambda: [job],
        get_job_info=lambda _: job,
        get_job_logs=lambda _: "\n".join(lines),
    )
    monkeypatch.setattr(ray_jobs, "client", lambda _: jobs)
    monkeypatch.setattr(ray_jobs, "submit_sweep", lambda *_: "raysubmit_2")
    _ok(client.post("/api/v1/eta/batch/sweeps", json={"trials": 2}), 202)
    assert _ok(client.get("/api/v1/eta/batch/sweeps"))["sweeps"][0]["status"] == "SUCCEEDED"
    status = _ok(client.get("/api/v1/eta/batch/sweeps/raysubmit_1"))
    assert status["done"] == 2 and status["progress"][0]["mae"] == 120.5
    assert status["result"]["gate"]["decision"] == "promoted"


def test_an_answer_off_its_schema_is_caught(lake: Settings) -> None:
    """The check itself: a prediction answer without its prediction is refused."""
    contract = Contract(_document(lake))
    path = "/api/v1/eta/batch/predict"
    answer = {"usecase": "eta", "kind": "batch", "model_version": 1, "cached": False}
    contract.check("POST", path, 200, {**answer, "prediction": {"travel_seconds": 1.0}})
    with pytest.raises(AssertionError, match="off its schema"):
        contract.check("POST", path, 200, answer)
