"""The rtml Serve application: one FastAPI ingress deployment (``Api``) that serves every use case.

Deployment options (replicas, ``max_ongoing_requests``, autoscaling, CPUs) live in
``ray_apps/serve_config.yaml``, not here. ``build`` is the config's ``import_path``: Serve calls it
with the config's ``args``, whose ``settings`` (if any) override the replica's ``RTML_*``
environment — `rtml up` passes the local stack's addresses that way, a cluster sets variables.

Why one deployment and not one per use case and kind: each deployment-handle hop costs ~8 ms here
against ~11 ms for a whole trivial request, so the models live in the ingress replica; an
incremental prediction crosses one actor call (to the learner), a batch one none.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application

from ray_apps.serving.routes import make_app
from ray_apps.serving.service import Service
from rtml.settings import load_settings


@serve.deployment(name="Api")
@serve.ingress()
class Api:
    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        self.service = Service(load_settings(**(settings or {})))

    def __serve_build_asgi_app__(self) -> Any:
        return make_app(self.service)

    def __del__(self) -> None:
        self.service.close()


def build(args: dict[str, Any]) -> Application:
    """Application builder for ``import_path: ray_apps.serve_app:build``."""
    # @serve.deployment's typing returns the class unchanged, without the Deployment's .bind
    return Api.bind(settings=args.get("settings"))  # type: ignore[attr-defined]
