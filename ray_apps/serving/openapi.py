"""Print the API's OpenAPI document, as the running app serves it at ``/openapi.json``.

    python -m ray_apps.serving.openapi > frontend/src/lib/api/openapi.json

The document comes from :func:`~ray_apps.serving.routes.make_app` itself, built over a stand-in
service that holds only what building the routes reads (settings and metrics): no Redis, Kafka,
MLflow or Ray is needed. The UI's typed client is generated from this file
(``npm run gen:api`` in ``frontend/``), and ``tests/unit/test_ui.py`` checks that the
committed copy still matches the app.
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace
from typing import Any

from rtml.settings import Settings, load_settings


def document(settings: Settings | None = None) -> dict[str, Any]:
    """The OpenAPI document of the API built with ``settings`` (the environment's otherwise)."""
    from ray_apps.serving.routes import make_app

    # Building the routes reads the service's settings and keeps a reference to its metrics;
    # only a request touches anything else.
    service: Any = SimpleNamespace(settings=settings or load_settings(), metrics=None)
    return make_app(service).openapi()


def main() -> None:
    json.dump(document(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
