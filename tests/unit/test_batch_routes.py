"""The batch management routes over a stand-in service (no MLflow, no Ray): the token guards
what acts, the core's errors become the documented 4xx/503, answers carry what the UI reads."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ray_apps.serving import batch_routes
from ray_apps.serving.routes import make_app
from rtml.settings import Settings
from rtml.store.registry import VersionInfo
from tests.unit.test_ui import _NoMetrics

AUTH = {"Authorization": "Bearer s3cret-token"}


@pytest.fixture
def client() -> TestClient:
    service: Any = SimpleNamespace(
        settings=Settings(api_token="s3cret-token"), metrics=_NoMetrics()
    )
    return TestClient(make_app(service))


def test_acting_routes_need_the_token(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    acted = []
    monkeypatch.setattr(batch_routes.registry, "promote", lambda *a: acted.append(a))
    monkeypatch.setattr(
        batch_routes.ray_jobs, "submit_sweep", lambda *a: acted.append(a) or "raysubmit_1"
    )
    assert client.post("/api/v1/eta/batch/promote", json={"version": 2}).status_code == 401
    assert client.post("/api/v1/eta/batch/rollback").status_code == 401
    assert client.post("/api/v1/eta/batch/sweeps", json={"trials": 2}).status_code == 401
    assert acted == []
    assert (
        client.post("/api/v1/eta/batch/promote", json={"version": 2}, headers=AUTH).json()[
            "champion"
        ]
        == 2
    )
    r = client.post("/api/v1/eta/batch/sweeps", json={"trials": 2}, headers=AUTH)
    assert r.status_code == 202 and r.json()["job_id"] == "raysubmit_1"
    assert (
        client.post("/api/v1/eta/batch/sweeps", json={"trials": 0}, headers=AUTH).status_code == 422
    )


def test_core_errors_are_the_documented_answers(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_earlier(*_: Any) -> int:
        raise ValueError("rtml-eta-batch has no earlier champion to roll back to")

    def no_job(*_: Any) -> dict:
        raise LookupError("no job 'x'")

    def no_rows(*_: Any) -> dict:
        raise LookupError("no eta rows in the lake yet")

    def no_jobs_api(*_: Any) -> list:
        raise ConnectionError("no Ray job API at http://127.0.0.1:8265")

    monkeypatch.setattr(batch_routes.registry, "rollback", no_earlier)
    monkeypatch.setattr(batch_routes.ray_jobs, "sweep", no_job)
    monkeypatch.setattr(batch_routes.evaluation, "evaluate_champion", no_rows)
    monkeypatch.setattr(batch_routes.ray_jobs, "sweeps", no_jobs_api)
    r = client.post("/api/v1/eta/batch/rollback", headers=AUTH)
    assert r.status_code == 409 and "no earlier champion" in r.json()["detail"]
    assert client.get("/api/v1/eta/batch/sweeps/x").status_code == 404
    r = client.get("/api/v1/eta/batch/evaluation")
    assert r.status_code == 503 and "no eta rows" in r.json()["detail"]
    assert client.get("/api/v1/eta/batch/evaluation?rows=1").status_code == 422
    r = client.get("/api/v1/eta/batch/sweeps")
    assert r.status_code == 503 and "Ray job API" in r.json()["detail"]
    r = client.get("/api/v1/eta/batch/trials", params={"sweep": "1' OR '1'='1"})
    assert r.status_code == 422 and "not a sweep id" in r.json()["detail"]


def test_versions_carry_what_the_ui_reads(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = [
        VersionInfo(
            2,
            "run2",
            [],
            {"mae": 118.0},
            "rejected",
            1.0,
            {
                "share_of_oracle": "0.9",
                "gate.champion_version": "1",
                "gate.champion_score": "115.0",
            },
        ),
        VersionInfo(1, "run1", ["champion"], {"mae": 120.0}, "first", 0.5, {}),
    ]
    monkeypatch.setattr(batch_routes.registry, "versions", lambda *_: found)
    body = client.get("/api/v1/eta/batch/versions").json()
    assert body["primary_metric"] == "mae" and body["higher_is_better"] is False
    v2, v1 = body["versions"]
    assert (
        v2["gate"] == "rejected"
        and v2["share_of_oracle"] == 0.9
        and v2["gate_champion_version"] == 1
    )
    assert v1["aliases"] == ["champion"] and v1["share_of_oracle"] is None


def test_links_are_the_settings_addresses(client: TestClient) -> None:
    s = Settings()
    links = client.get("/api/v1/links").json()
    assert links == {
        "ray_dashboard": s.ray_dashboard_url,
        "mlflow": s.mlflow_uri,
        "prometheus": s.prometheus_url,
    }
