"""Deploy ``ray_apps/serve_config.yaml`` on the local stack's Ray, as ``serve deploy`` would.

The config is sent to the Ray dashboard's Serve REST API (what ``serve deploy`` does), with the
local stack's values filled in: HTTP on 127.0.0.1 at ``serve_port``, and as the application's
``args`` the service addresses and folders of these settings (secrets stay in the environment
the Ray head inherited). The config file itself is never rewritten: it stays the one source that
the RayService embeds.
"""

from __future__ import annotations

import time
from importlib.resources import files
from typing import Any

import httpx
import yaml

from rtml.settings import LOOPBACK, Settings

#: Package data of ``ray_apps`` (pyproject's ``[tool.setuptools.package-data]``).
CONFIG = files("ray_apps") / "serve_config.yaml"
APP = "rtml"


def load_config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())


def serve_overrides(settings: Settings) -> dict[str, Any]:
    """Settings a replica must share with the stack whatever its own environment says."""
    return {
        "kafka_bootstrap": settings.kafka_servers,
        "redis_url": settings.redis,
        "mlflow_tracking_uri": settings.mlflow_uri,
        "state_dir": str(settings.state_dir.resolve()),
        "checkout_dir": str(settings.checkout_dir.resolve()),  # the UI's build, sweeps' jobs/
        "lake_dir": str(settings.lake_local_dir),
        "learner_shards": settings.learner_shards,
        "serve_port": settings.serve_port,
        # the Jobs API (sweeps from the UI) and the links the UI shows
        "ray_dashboard_address": settings.ray_dashboard_url,
        "prometheus_port": settings.prometheus_port,
    }


def local_config(
    settings: Settings,
    extra: dict[str, Any] | None = None,
    deployment: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The config file with the local stack's values; ``extra`` adds setting overrides and
    ``deployment`` options of the ``Api`` deployment (e.g. ``num_replicas``)."""
    config = load_config()
    config["http_options"] = {
        **config.get("http_options", {}),
        "host": LOOPBACK,
        "port": settings.serve_port,
    }
    # Every local Ray node shares 127.0.0.1: a proxy per node could not bind the port twice.
    config["proxy_location"] = "HeadOnly"
    overrides = {**serve_overrides(settings), **(extra or {})}
    for app in config["applications"]:
        app["args"] = {**(app.get("args") or {}), "settings": overrides}
        for options in app.get("deployments", []):
            options.update(deployment or {})
            if "num_replicas" in (deployment or {}):
                options.pop("autoscaling_config", None)  # Serve takes one or the other
    return config


def app_status(settings: Settings) -> dict[str, Any] | None:
    """The application's status as Serve reports it, or None when Serve runs no such app."""
    try:
        answer = httpx.get(f"{settings.ray_dashboard_url}/api/serve/applications/", timeout=5)
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return None
    return (answer.json().get("applications") or {}).get(APP)


def api_ready(settings: Settings, timeout: float = 2.0) -> bool:
    try:
        return (
            httpx.get(f"{settings.serve_url}/api/v1/usecases", timeout=timeout).status_code == 200
        )
    except httpx.HTTPError:
        return False


def deploy(
    settings: Settings,
    timeout_s: float = 180.0,
    extra: dict[str, Any] | None = None,
    deployment: dict[str, Any] | None = None,
) -> str:
    """Deploy (or update in place) and wait until the API answers; return a one-line outcome."""
    config = local_config(settings, extra, deployment)
    answer = httpx.put(
        f"{settings.ray_dashboard_url}/api/serve/applications/", json=config, timeout=60
    )
    if answer.status_code != 200:
        raise RuntimeError(f"Serve refused the config ({answer.status_code}): {answer.text[:500]}")
    deadline = time.monotonic() + timeout_s
    status: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        status = app_status(settings)
        state = (status or {}).get("status")
        if state == "DEPLOY_FAILED":
            raise RuntimeError(
                f"Serve could not deploy {APP}: {(status or {}).get('message', '')[:2000]}"
            )
        if state == "RUNNING" and api_ready(settings):
            return f"API at {settings.serve_url}/api/v1 (docs at {settings.serve_url}/docs)"
        time.sleep(1.0)
    raise TimeoutError(f"Serve app {APP} not running after {timeout_s:.0f}s: {status}")


def undeploy(settings: Settings) -> None:
    httpx.delete(f"{settings.ray_dashboard_url}/api/serve/applications/", timeout=60)
