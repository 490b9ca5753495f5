"""A use case rtml does not ship, brought the way a user brings theirs: a schema, a key, a label,
features — no generator, no oracle — defined here, outside the ``rtml`` package, and run
through every generic path. Nothing outside this module knows it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from pydantic import AwareDatetime, Field

from ray_apps.serving.routes import make_app
from rtml.batch import training
from rtml.batch.frames import feature_frame
from rtml.batch.model import BatchModel, evaluate
from rtml.entity import features_sql
from rtml.features import categorical, hour_of_day, log1p, numeric
from rtml.online import build_model, predict_then_learn, prequential
from rtml.settings import Settings
from rtml.tasks import LABEL, Regression
from rtml.tasks.base import Fit
from rtml.usecases import USECASES, InvalidEvent, get, load_spec
from rtml.usecases.base import EventModel, UseCase
from streaming.lakehouse.validation import verdicts
from tests.unit.test_ui import _NoMetrics

Appliance = Literal["heater", "washer", "oven", "fridge"]


class Reading(EventModel):
    """An hour of a household's electricity meter."""

    meter_id: str = Field(min_length=1, max_length=32)
    timestamp: AwareDatetime
    outside_c: float = Field(ge=-60, le=60)
    occupants: int = Field(ge=0, le=20)
    main_appliance: Appliance
    kwh: float = Field(ge=0, le=100)


SPEC = UseCase(
    name="energy",
    title="Household electricity use",
    task=Regression(),
    event=Reading,
    key="meter_id",
    target="kwh",
    features=(
        numeric("outside_c"),
        numeric("occupants"),
        log1p("occupants"),
        categorical("main_appliance"),
        hour_of_day(),
    ),
    online_model={"n_models": 3, "seed": 1},
    kafka_topic="household.meter-readings",
)


def readings(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """The user's own data: kWh rise with the cold, the occupants and the heater."""
    import random

    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        outside = rng.uniform(-10, 30)
        occupants = rng.randint(1, 6)
        appliance = rng.choice(["heater", "washer", "oven", "fridge"])
        kwh = 0.3 * occupants + max(0.0, 18 - outside) * (0.2 if appliance == "heater" else 0.03)
        out.append(
            {
                "meter_id": f"meter-{i % 40}",
                "timestamp": (start + timedelta(minutes=17 * i)).isoformat(),
                "outside_c": round(outside, 2),
                "occupants": occupants,
                "main_appliance": appliance,
                "kwh": round(kwh + rng.gauss(0, 0.2) ** 2, 4),
            }
        )
    return out


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[UseCase]:
    """The use case registered as a setting would name it (``module:NAME``), for this test only."""
    spec = load_spec(f"{__name__}:SPEC")
    monkeypatch.setattr(USECASES, "_specs", {**USECASES, spec.name: spec})
    yield spec


def test_a_reference_names_the_users_spec_and_nothing_else() -> None:
    assert load_spec(f"{__name__}:SPEC") is SPEC
    with pytest.raises(TypeError, match="not an rtml UseCase"):
        load_spec(f"{__name__}:Reading")
    with pytest.raises(ValueError, match="use-case reference"):
        load_spec("no_colon_here")


def test_events_parse_and_bad_ones_get_a_reason(registered: UseCase) -> None:
    good = readings(1)[0]
    assert get("energy").parse(json.dumps(good)).meter_id == good["meter_id"]
    with pytest.raises(InvalidEvent, match="outside_c"):
        SPEC.parse({**good, "outside_c": 99})
    # The lakehouse's verdict (quarantine) and a learner's dead letter carry the spec's reason.
    bad = json.dumps({**good, "main_appliance": "toaster"}).encode()
    found = verdicts("energy", pa.array([json.dumps(good).encode(), bad, None])).to_pylist()
    assert found[0]["reason"] is None and json.loads(found[0]["event"])["kwh"] == good["kwh"]
    assert "main_appliance" in found[1]["reason"] and found[2]["reason"]
    assert SPEC.topic == "household.meter-readings" and SPEC.dlq_topic.endswith(".dlq")


def test_features_are_the_same_online_and_in_sql() -> None:
    rows = readings(200)
    events = [SPEC.parse(r) for r in rows]
    online = feature_frame(SPEC, [SPEC.features_of(e) for e in events])
    table = pa.Table.from_pylist([e.model_dump() for e in events])
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("bronze", table)
    batch = feature_frame(SPEC, con.sql(features_sql(SPEC, "bronze")).to_arrow_table().to_pylist())
    pd.testing.assert_frame_equal(online, batch, check_exact=False, rtol=1e-12)


def test_the_online_step_scores_prequentially_without_an_oracle() -> None:
    model, metrics, rows = build_model(SPEC), prequential(SPEC), readings(600)
    for row in rows:
        event = SPEC.parse(row)
        x, y = SPEC.features_of(event), SPEC.label_of(event)
        metrics.observe(model, x, y, predict_then_learn(SPEC, model, x, y), None)
    report = metrics.report()
    assert report["events"] == 600 and report["primary"] == "mae"
    assert report["oracle"] is None and report["share_of_oracle"] == {}
    median = sorted(r["kwh"] for r in rows)[300]
    baseline = sum(abs(r["kwh"] - median) for r in rows) / 600
    assert report["overall"]["mae"] < baseline  # it learned something


def test_a_batch_frame_trains_and_scores_a_small_model(registered: UseCase) -> None:
    events = [SPEC.parse(r) for r in readings(400)]
    frame = feature_frame(SPEC, [SPEC.features_of(e) for e in events]).assign(
        **{LABEL: [SPEC.label_of(e) for e in events]}
    )
    train, holdout = frame.iloc[:300], frame.iloc[300:]
    model = SPEC.task.fit(SPEC, SPEC.task.quick_params, train, Fit())
    predictions = BatchModel("energy", 0, {}, model).predict(holdout)
    scores = evaluate(SPEC, predictions, holdout[LABEL].tolist(), holdout)
    assert set(scores) == {"mae", "rmse", "r2"} and scores["r2"] > 0.5
    assert training.oracle_scores(SPEC, holdout.assign(truth=None)) is None


def test_the_api_serves_it_with_its_own_schema(registered: UseCase) -> None:
    service: Any = SimpleService()
    client = TestClient(make_app(service))
    listed = {u["name"]: u for u in client.get("/api/v1/usecases").json()["usecases"]}
    assert listed["energy"]["task"] == SPEC.task.name and listed["energy"]["target"] == "kwh"
    document = client.get("/openapi.json").json()
    for route in ("incremental/predict", "batch/predict", "batch/explain", "incremental/learn"):
        assert f"/api/v1/energy/{route}" in document["paths"], route
    schemas = document["components"]["schemas"]
    events = [v for v in schemas.values() if "outside_c" in v.get("properties", {})]
    assert events, "the event's own schema is in the document"
    assert "kwh" in schemas["EnergyPrediction"]["properties"]  # the task's answer, its target
    r = client.post("/api/v1/energy/batch/predict", json={**readings(1)[0], "outside_c": "warm"})
    assert r.status_code == 422 and "outside_c" in json.dumps(r.json())


class SimpleService:
    """What building the routes reads: settings and metrics (a request touches nothing else
    before its events are parsed)."""

    settings = Settings()
    metrics = _NoMetrics()
