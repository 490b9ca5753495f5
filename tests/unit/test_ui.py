"""The UI's side of the API: the committed OpenAPI copy that the UI's typed client is generated
from matches the app, and the ingress serves the UI's static build at / without shadowing the API.

(That the generated TypeScript matches the committed OpenAPI copy is checked by the UI's own
unit tests, ``frontend/src/lib/api/schema.test.ts``.)"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ray_apps.serving import openapi, ui
from ray_apps.serving.routes import make_app
from rtml.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "frontend" / "src" / "lib" / "api" / "openapi.json"


def test_the_ui_client_is_generated_from_the_apps_current_schema() -> None:
    current = openapi.document(Settings())
    committed = json.loads(COMMITTED.read_text())
    assert committed == json.loads(json.dumps(current)), (
        "the API changed: regenerate the UI's client with "
        "`python -m ray_apps.serving.openapi > frontend/src/lib/api/openapi.json` "
        "and `npm run gen:api` in frontend/"
    )


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    build = ui.build_dir(tmp_path)
    (build / "_app").mkdir(parents=True)
    (build / "index.html").write_text("<html>rtml ui</html>")
    (build / "_app" / "app.js").write_text("console.log(1)")
    service: Any = SimpleNamespace(settings=Settings(checkout_dir=tmp_path), metrics=_NoMetrics())
    return TestClient(make_app(service))


class _NoMetrics:
    def __getattr__(self, _: str) -> Any:
        def nothing(*_: Any, **__: Any) -> None:
            return None

        return SimpleNamespace(inc=nothing, observe=nothing, set=nothing)


def test_the_ingress_serves_the_ui_and_the_api_wins(client: TestClient) -> None:
    for path in ("/", "/tfd", "/eta?tab=sql", "/no/such/page"):
        r = client.get(path)
        assert r.status_code == 200 and "rtml ui" in r.text, path
    assert client.get("/_app/app.js").text == "console.log(1)"
    r = client.get("/api/v1/usecases")
    assert r.status_code == 200
    assert {u["name"] for u in r.json()["usecases"]} == {"tfd", "eta", "ecci"}
    assert client.get("/openapi.json").json()["info"]["title"] == "rtml"
    assert "swagger" in client.get("/docs").text.lower()
    # An API path never falls back to the UI's page: an API client gets JSON with the reason.
    for path in ("/api/v1/nope", "/api/v1/nope/predict", "/api/v2/x", "/api"):
        r = client.get(path)
        assert r.status_code == 404, (path, r.text[:80])
        assert r.headers["content-type"] == "application/json", (path, r.text[:80])


def test_without_a_build_the_root_says_how_to_build_it(tmp_path: Path) -> None:
    from fastapi import FastAPI

    app = FastAPI()
    ui.mount_ui(app, tmp_path / "missing")
    r = TestClient(app).get("/")
    assert r.status_code == 404 and "make ui" in r.text
