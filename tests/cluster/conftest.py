"""The cluster path on this machine with real servers (``RTML_PROFILE=cluster``, docs/cluster.md):
SeaweedFS's S3 gateway holding the lake and MLflow's artifacts, MLflow on PostgreSQL, a second
Ray node. One stack for the whole package, started by the project's own `rtml up` and stopped by
`rtml down` (``tests/stack.py``); a part that cannot start (no ``weed`` built, no PostgreSQL)
fails the package loudly, it is never faked or skipped.

Every test here is marked ``cluster`` (``pytestmark``): ``pytest -m cluster`` runs them alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from rtml.settings import Settings, get_settings
from tests.stack import run_stack

PARTS = [
    "postgres",
    "s3",
    "kafka",
    "redis",
    "mlflow",
    "ray",
    "ray-worker",
    "lakehouse",
    "learners",
    "api",
]
#: The profile, and what keeps the package short: a 1 s lake trigger, a champion looked for
#: every second.
ENV = {
    "RTML_PROFILE": "cluster",
    "RTML_LAKE_TRIGGER_S": "1",
    "RTML_SERVE_CHAMPION_POLL_S": "1",
}


@pytest.fixture(scope="package")
def cluster() -> Iterator[Settings]:
    """The cluster-profile stack; this process (a driver, a client) sees the same settings, and
    the packages after this one get the plain sandbox back."""
    saved = {name: os.environ.get(name) for name in ENV}
    os.environ.update(ENV)
    get_settings.cache_clear()
    try:
        yield from run_stack(PARTS, timeout=600)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()
