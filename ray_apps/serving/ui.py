"""The UI at ``/``: the static build of ``frontend/`` (SvelteKit, adapter-static), served by the
same ingress as the API, so `rtml up` gives one address for both.

Mounted after every API route, so ``/api/v1/...``, ``/docs`` and ``/openapi.json`` win. The UI is
a single-page app: a path that is not a file (``/tfd``, ``/eta?tab=sql``) gets ``index.html`` and
the browser routes it; a path under ``/api/`` never does (an API client gets the API's 404).
When the UI is not built, ``/`` says how to build it instead of a bare 404.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope


class SinglePageApp(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404 or path.startswith("api/") or path == "api":
                raise
            return await super().get_response("index.html", scope)


def build_dir(checkout: Path) -> Path:
    """Where ``npm run build`` in the checkout's frontend/ writes (`make ui`; `make up` and
    `make test` run it)."""
    return checkout / "frontend" / "build"


def mount_ui(app: FastAPI, build: Path) -> None:
    if (build / "index.html").is_file():
        app.mount("/", SinglePageApp(directory=build, html=True), name="ui")
        return

    @app.get("/", include_in_schema=False)
    async def no_ui() -> PlainTextResponse:
        return PlainTextResponse(
            f"The UI is not built ({build} has no index.html): run `make ui`. "
            "The API is at /api/v1, its docs at /docs.",
            404,
        )
