"""The Serve API on the real stack (Ray Serve, Redis, Kafka, MLflow), over real HTTP.

The application is deployed from ``ray_apps/serve_config.yaml`` as `rtml up` deploys it, with a
few settings made quick for a test: a bearer token, a 1 s champion poll, a 1 s fallback refresh
and 3 s learner checkpoints.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import ray

from ray_apps.learning import actor as learner
from ray_apps.serving import deploy
from rtml.checkpoint import forget
from rtml.settings import Settings
from rtml.usecases import USECASES, get
from rtml.usecases.generators import generator_for
from streaming.producer import produce
from streaming.topics import ensure_topics
from tests.contract import Contract

TOKEN = "serving-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUICK = {
    "api_token": TOKEN,
    "serve_champion_poll_s": 1.0,
    "serve_fallback_refresh_s": 1.0,
    "checkpoint_every_s": 3.0,
}


@pytest.fixture(scope="module")
def api(stack: Settings) -> Iterator[httpx.Client]:
    ensure_topics(stack)
    learner.connect(stack)
    # No learner, no learner state and no batch model, whatever earlier modules left: "no model
    # yet" means it.
    for name in USECASES:
        _kill_learner(name)
        forget(stack, name, 0)
        _forget_batch_model(stack, name)
    deploy.deploy(stack, extra=QUICK)
    contract = Contract(httpx.get(f"{stack.serve_url}/openapi.json", timeout=60).json())

    def as_declared(response: httpx.Response) -> None:
        """Every answer is what the API's own document declares for it."""
        response.read()
        if response.headers.get("content-type") == "application/json":
            request = response.request
            status = response.status_code
            contract.check(request.method, request.url.path, status, response.json())

    with httpx.Client(
        base_url=f"{stack.serve_url}/api/v1",
        timeout=60,
        event_hooks={"response": [as_declared]},
    ) as client:
        yield client
    for name in USECASES:
        _kill_learner(name)
    from ray import serve

    serve.shutdown()  # later modules see the stack as `rtml up -p ...` left it: no Serve
    ray.shutdown()


def _forget_batch_model(stack: Settings, usecase: str) -> None:
    import mlflow

    from rtml.store import registry

    try:
        registry.client(stack).delete_registered_model(registry.model_name(usecase))
    except mlflow.exceptions.MlflowException:
        pass  # none registered


def _kill_learner(usecase: str) -> None:
    handle = learner.find(usecase, 0)
    if handle is not None:
        ray.kill(handle, no_restart=True)


def _wait(what: str, check: Any, timeout: float, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout}s")


def _event(usecase: str, seed: int, **changes: Any) -> dict[str, Any]:
    return {**next(generator_for(usecase, seed=seed)).event, **changes}


# -- the service-wide endpoints -------------------------------------------------------------------


def test_meta_endpoints(api: httpx.Client, stack: Settings) -> None:
    assert {u["name"] for u in api.get("/usecases").json()["usecases"]} == set(USECASES)
    health = api.get("/health").json()
    assert health["status"] == "ok", health
    assert all(dep["ok"] for dep in health["dependencies"].values())
    for name in USECASES:
        sample = api.get(f"/{name}/sample").json()
        get(name).parse(sample)  # a valid event of the use case's schema
    schema = httpx.get(f"{stack.serve_url}/openapi.json").json()
    assert "/api/v1/tfd/batch/predict" in schema["paths"]
    assert "TransactionRequest" in schema["components"]["schemas"]
    assert httpx.get(f"{stack.serve_url}/docs").status_code == 200


def test_bad_requests_are_4xx_with_a_message(api: httpx.Client) -> None:
    path = "/tfd/incremental/predict"
    bad = _event("tfd", 1, amount=-5)
    del bad["user_id"]
    r = api.post(path, json=bad)
    assert r.status_code == 422
    by_field = {e["field"]: e["message"] for e in r.json()["detail"]}
    assert "greater than 0" in by_field["amount"] and by_field["user_id"] == "Field required"

    r = api.post(path, json=[_event("tfd", 1), {**_event("tfd", 2), "currency": "XXX"}])
    assert r.status_code == 422 and [(e["index"], e["field"]) for e in r.json()["detail"]] == [
        (1, "currency")
    ]
    assert api.post(path, content=b"{not json").status_code == 400
    assert api.post(path, json=[]).status_code == 422
    assert api.post(path, json=[{}] * 1001).status_code == 413  # the list limit
    r = api.post(path, content=b"[" + b" " * 2_100_000 + b"]")
    assert r.status_code == 413 and "byte limit" in r.json()["detail"]
    r = api.post("/nope/incremental/predict", json=_event("tfd", 1))
    assert r.status_code == 404 and "tfd" in r.json()["detail"]
    assert api.get("/tfd/nothing").status_code == 404
    # Labelled feedback needs the label; explain takes one event.
    unlabelled = _event("tfd", 3)
    del unlabelled["is_fraud"]
    r = api.post("/tfd/incremental/learn", json=unlabelled)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "is_fraud"
    assert api.post("/tfd/batch/explain", json=[_event("tfd", 1)] * 2).status_code == 422
    # Control routes need the token; read routes do not.
    assert api.post("/ecci/incremental/start").status_code == 401
    assert (
        api.post("/ecci/incremental/stop", headers={"Authorization": "Bearer wrong"}).status_code
        == 401
    )
    # No model yet: 503 with the reason.
    r = api.post("/ecci/incremental/predict", json=_event("ecci", 1))
    assert r.status_code == 503 and "start it" in r.json()["detail"]
    r = api.post("/ecci/batch/predict", json=_event("ecci", 1))
    assert r.status_code == 503 and "no batch model" in r.json()["detail"]


def test_sql_runs_one_read_and_refuses_the_rest(api: httpx.Client) -> None:
    r = api.post("/sql", json={"sql": "SELECT 41 + 1 AS answer"})
    assert r.status_code == 200 and r.json()["rows"] == [{"answer": 42}]
    for attack in (
        "SELECT 1;\nDROP TABLE tfd",
        "SELECT 1;\tSELECT 2",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "ATTACH '/tmp/x.db'",
        "INSTALL httpfs",
        "SET threads=1",
        "CREATE TABLE t (x INT)",
    ):
        r = api.post("/sql", json={"sql": attack})
        assert r.status_code == 400, (attack, r.text)
        assert r.json()["detail"], attack
    assert api.post("/sql", json={"query": "SELECT 1"}).status_code == 422


# -- incremental: fresh, and answering through a restart ------------------------------------------


def _predict(api: httpx.Client, usecase: str, event: dict[str, Any]) -> dict[str, Any]:
    r = api.post(f"/{usecase}/incremental/predict", json=event)
    assert r.status_code == 200, r.text
    return r.json()


def _caught_up(api: httpx.Client, usecase: str, at_least: int) -> bool:
    status = api.get(f"/{usecase}/incremental/metrics").json()["learners"][0]
    lag = status.get("lag") or {}
    return status.get("learned", 0) >= at_least and bool(lag) and not any(lag.values())


def test_incremental_predictions_reflect_what_the_learner_just_learned(
    api: httpx.Client, stack: Settings
) -> None:
    r = api.post("/eta/incremental/start", headers=AUTH)
    assert r.status_code == 200 and r.json()["learners"][0]["running"], r.text
    produce(stack, ["eta"], rate=0, count=1000, seed=5)
    probe = _event("eta", 99)
    # The topic also holds earlier modules' events: wait until the learner has read all of them.
    _wait("learner caught up with the topic", lambda: _caught_up(api, "eta", at_least=1000), 120)
    before = _predict(api, "eta", probe)
    assert before["source"] == "learner"

    # Labelled feedback far above anything seen: the served model must move toward it.
    feedback = [
        {**probe, "trip_id": f"feedback-{i}", "travel_seconds": 80_000.0} for i in range(40)
    ]
    t0 = time.monotonic()
    r = api.post("/eta/incremental/learn", json=feedback)
    assert r.status_code == 202 and r.json()["accepted"] == 40, r.text
    after = _wait(
        "feedback served",
        lambda: (a := _predict(api, "eta", probe))["learned"] >= before["learned"] + 40 and a,
        timeout=10,
        every=0.05,
    )
    took = time.monotonic() - t0
    assert took < 5.0, f"fresh only after {took:.1f}s"
    assert after["learned"] == before["learned"] + 40  # exactly once: nothing else was produced
    assert after["prediction"]["travel_seconds"] > before["prediction"]["travel_seconds"] + 100, (
        before,
        after,
    )

    status = api.get("/eta/incremental/metrics").json()["learners"][0]
    assert status["running"] and status["learned"] == after["learned"]
    assert "mae" in status["metrics"]["overall"]
    assert api.post("/eta/incremental/reset", headers=AUTH).status_code == 409  # still running


def test_checkpoint_ages_are_the_latest_save_s_not_the_learner_s(
    api: httpx.Client, stack: Settings
) -> None:
    """A learner that keeps learning checkpoints every few seconds (3 s here, or later when its
    checkpoints are slow): its status, /model and every prediction report the age of the latest
    save, never the time since the learner started fresh."""
    first_event_at = api.get("/eta/incremental/metrics").json()["learners"][0]["first_event_at"]
    produce(stack, ["eta"], rate=25, count=750, seed=6)  # ~30 s of events, learned as they come
    learner_age = time.time() - first_event_at
    status = api.get("/eta/incremental/metrics").json()["learners"][0]
    ages = {
        "status": status["checkpoint"]["age_s"],
        "/model": api.get("/eta/model").json()["incremental"]["checkpoints"]["0"]["age_s"],
        "prediction": _predict(api, "eta", _event("eta", 96))["checkpoint_age_s"],
    }
    print(f"\nlearner learning for {learner_age:.0f}s; checkpoint ages {ages}")
    assert learner_age > 30, learner_age
    assert all(age < 12 for age in ages.values()), (learner_age, ages, status["checkpoint"])


def test_a_client_loop_runs_through_a_learner_restart(api: httpx.Client) -> None:
    probe = _event("eta", 98)
    # The replica holds a checkpoint copy to answer with while the learner restarts.
    _wait("fallback loaded", lambda: api.get("/eta/model").json()["incremental"]["fallback"], 30)
    outcomes: list[tuple[int, str]] = []
    done = threading.Event()

    def loop() -> None:
        with httpx.Client(base_url=api.base_url, timeout=30) as client:
            while not done.is_set():
                r = client.post("/eta/incremental/predict", json=probe)
                outcomes.append((r.status_code, r.json().get("source", r.text)))

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        time.sleep(1.0)
        ray.kill(learner.find("eta", 0), no_restart=False)  # Ray restarts it from its checkpoint
        killed_at = len(outcomes)
        _wait(
            "learner answers again",
            lambda: outcomes[-1][1] == "learner" and len(outcomes) > killed_at + 5,
            60,
            0.1,
        )
    finally:
        done.set()
        thread.join()
    failed = [o for o in outcomes if o[0] != 200]
    assert not failed, failed[:5]
    sources = [s for _, s in outcomes[killed_at:]]
    assert "checkpoint" in sources, "the checkpoint copy never answered during the restart"


def test_stop_then_reset_through_the_api(api: httpx.Client) -> None:
    r = api.post("/eta/incremental/stop", headers=AUTH)
    assert r.status_code == 200 and r.json()["learners"][0]["stopped"], r.text
    assert api.get("/eta/incremental/metrics").json()["learners"][0]["running"] is False
    # Stopped: the replica's checkpoint copy answers.
    assert _predict(api, "eta", _event("eta", 97))["source"] == "checkpoint"
    r = api.post("/eta/incremental/reset", headers=AUTH)
    assert r.status_code == 200 and r.json()["learners"][0]["checkpoint"] == "deleted", r.text
    # Nothing left to answer with, on any replica: the reset's announcement dropped every copy
    # (the API runs two replicas; HAProxy spreads these requests over both).
    answers = [api.post("/eta/incremental/predict", json=_event("eta", 97)) for _ in range(20)]
    assert [r.status_code for r in answers] == [503] * 20, [
        r.text for r in answers if r.status_code != 503
    ][:2]


# -- batch: the champion, offline-equal, cached, swapped ------------------------------------------


def _register_tfd(stack: Settings, depth: int, seed: int) -> int:
    import mlflow
    from catboost import CatBoostClassifier

    from rtml.batch import frames
    from rtml.store import registry

    spec = get("tfd")
    gen = generator_for("tfd", seed=seed)
    events = [spec.parse(next(gen).event) for _ in range(400)]
    frame = frames.feature_frame(spec, [spec.features_of(e) for e in events])
    labels = [bool(e.is_fraud) for e in events]
    labels[0], labels[1] = True, False  # both classes, whatever the draw
    model = CatBoostClassifier(
        iterations=20,
        depth=depth,
        random_seed=seed,
        verbose=False,
        thread_count=1,
        cat_features=spec.categorical_names,
    )
    model.fit(frame, labels)
    registry.client(stack)
    mlflow.set_experiment("rtml-serving-test")
    with mlflow.start_run():
        return registry.log_and_register(stack, "tfd", model, frame, {"fbeta": 0.1 * depth})


def _stored_state(stack: Settings, spec: Any, event: dict[str, Any]) -> Any:
    import redis

    from rtml.entity_store import EntityStore

    client = redis.Redis.from_url(stack.redis)
    return EntityStore(client, spec).state_for(spec.parse(event).model_dump())[0]


def _ray_metrics(stack: Settings) -> str:
    return httpx.get(f"http://127.0.0.1:{stack.ray_metrics_export_port}/metrics", timeout=10).text


def test_batch_serves_the_champion_equal_to_offline_cached_and_swapped(
    api: httpx.Client, stack: Settings
) -> None:
    from rtml.store import registry

    spec = get("tfd")
    v1 = _register_tfd(stack, depth=3, seed=1)
    registry.promote(stack, "tfd", v1)
    _wait(
        "champion served", lambda: api.get("/tfd/model").json()["batch"]["version"] == v1, 60, 0.5
    )

    event = _event("tfd", 7)
    # offline: the same entity memories the replica reads (whatever a learner has written)
    features = spec.features_of(spec.parse(event), _stored_state(stack, spec, event))
    offline_v1 = registry.load(stack, "tfd", v1).predict([features])[0]
    first = api.post("/tfd/batch/predict", json=event).json()
    assert first["model_version"] == v1 and first["cached"] is False
    assert first["prediction"]["probability"] == pytest.approx(offline_v1, abs=1e-12)
    second = api.post("/tfd/batch/predict", json=event).json()
    assert second["cached"] is True and second["prediction"] == first["prediction"]

    explained = api.post("/tfd/batch/explain", json=event).json()
    assert set(explained["contributions"]) == set(spec.feature_names)

    v2 = _register_tfd(stack, depth=5, seed=2)
    other = _event("tfd", 8)  # the loop asks another event: `event` stays uncached under v2
    outcomes: list[tuple[int, Any]] = []
    done = threading.Event()

    def loop() -> None:
        with httpx.Client(base_url=api.base_url, timeout=30) as client:
            while not done.is_set():
                r = client.post("/tfd/batch/predict", json=other)
                outcomes.append((r.status_code, r.json().get("model_version")))

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        time.sleep(0.5)
        registry.promote(stack, "tfd", v2)
        _wait("new champion served", lambda: outcomes and outcomes[-1][1] == v2, 60, 0.2)
    finally:
        done.set()
        thread.join()
    assert all(status == 200 for status, _ in outcomes), [o for o in outcomes if o[0] != 200][:5]
    assert {v for _, v in outcomes} == {v1, v2}

    fresh = api.post("/tfd/batch/predict", json=event).json()  # cached under v1 only: a miss
    offline_v2 = registry.load(stack, "tfd", v2).predict([features])[0]
    assert fresh["model_version"] == v2 and fresh["cached"] is False
    assert fresh["prediction"]["probability"] == pytest.approx(offline_v2, abs=1e-12)
    assert api.post("/tfd/batch/predict", json=event).json()["cached"] is True
    described = api.get("/tfd/model").json()["batch"]
    assert described["version"] == v2 and described["metrics"] == {"fbeta": pytest.approx(0.5)}

    # The custom metrics reach Ray's Prometheus endpoint (Ray reports them every few seconds).
    wanted = (
        "ray_rtml_serve_cache_requests_total{",
        'result="hit"',
        "ray_rtml_serve_model_swaps_total",
        "ray_rtml_serve_prediction_latency_s_bucket",
        "ray_rtml_serve_errors_total",
    )
    _wait("serve metrics exported", lambda: all(w in _ray_metrics(stack) for w in wanted), 40, 2)


def test_served_features_are_the_learners_and_the_lakes(api: httpx.Client, stack: Settings) -> None:
    """Entity memories written to the real Redis as a learner writes them (a state that recorded
    generated events): a served prediction's features (``?features=true``) are the learner's
    for that state and the lake's point-in-time SQL with the event as its partition's last."""
    import duckdb
    import pyarrow as pa
    import redis

    from rtml.entity import features_sql
    from rtml.entity_store import EntityStore, entity_key
    from rtml.store import registry

    spec = get("tfd")
    champion = api.get("/tfd/model").json()["batch"]["version"]
    assert champion, "the batch test leaves a champion"
    state = spec.entity_state()
    assert state is not None
    gen = generator_for("tfd", seed=41)
    recorded, touched = [], set()
    for _ in range(600):
        e = spec.parse(next(gen).event).model_dump()
        state.record(e)
        touched |= {(f, str(e[f])) for f in state.memory if e.get(f) is not None}
        recorded.append(e)
    client = redis.Redis.from_url(stack.redis)
    store = EntityStore(client, spec)
    try:
        store.write(state, sorted(touched))
        probe = next(  # the next event whose user the store holds
            e
            for e in (next(gen).event for _ in range(200))
            if state.entity(spec.key, str(e[spec.key]))
        )
        event = spec.parse(probe)
        stored_state, records = store.state_for(event.model_dump())
        online = spec.features_of(event, stored_state)
        assert online == spec.features_of(event, state)  # the store holds what the state did
        con = duckdb.connect()
        rows = [
            {**e, "kafka_partition": 0, "kafka_offset": i}
            for i, e in enumerate([*recorded, event.model_dump()])
        ]
        con.register("bronze", pa.Table.from_pylist(rows))
        id_field = spec.entities.id_field  # type: ignore[union-attr]
        where = f"CAST({id_field} AS VARCHAR) = '{probe[id_field]}'"
        (offline,) = con.execute(features_sql(spec, "bronze", where=where)).df().to_dict("records")

        served = api.post("/tfd/batch/predict?features=true", json=probe)
        assert served.status_code == 200, served.text
        answer = served.json()
        assert answer["features"].keys() == set(spec.feature_names)
        for name, value in online.items():
            assert answer["features"][name] == pytest.approx(value, abs=1e-9), name
            assert offline[name] == pytest.approx(value, abs=1e-9), name
        used = {(m["field"], m["value"]) for m in answer["entities_as_of"]}
        assert used == {(r.field, r.value) for r in records}
        assert (spec.key, str(probe[spec.key])) in used
        predicted = registry.load(stack, "tfd", champion).predict([online])[0]
        assert answer["prediction"]["probability"] == pytest.approx(predicted, abs=1e-12)

        # a rewritten memory is a new cache key: never an answer older than its features
        assert api.post("/tfd/batch/predict", json=probe).json()["cached"] is True
        store.write(state, [(spec.key, str(probe[spec.key]))])
        assert api.post("/tfd/batch/predict", json=probe).json()["cached"] is False

        looked = api.get(f"/tfd/entities/{spec.key}/{probe[spec.key]}")
        assert looked.status_code == 200, looked.text
        held = state.entity(spec.key, str(probe[spec.key]))
        assert looked.json()["memory"]["events"] == len(held)
        assert api.get(f"/tfd/entities/{spec.key}/nobody-at-all").status_code == 404
    finally:
        client.delete(*(entity_key("tfd", f, v) for f, v in touched))
