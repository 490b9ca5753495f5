"""Test-wide settings: the integration stack runs on its own ports and state folder, so it never
collides with a developer's `rtml up` on the default ones.

``RTML_TEST_PORT_OFFSET`` (default 0) shifts every test port and names its own state folder, so
two test sessions can run side by side on one machine.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OFFSET = int(os.environ.get("RTML_TEST_PORT_OFFSET", "0"))

TEST_PORTS = {
    "RTML_KAFKA_PORT": 19092,
    "RTML_KAFKA_CONTROLLER_PORT": 19093,
    "RTML_REDIS_PORT": 16379,
    "RTML_MLFLOW_PORT": 25000,
    "RTML_RAY_GCS_PORT": 26380,
    "RTML_RAY_DASHBOARD_PORT": 28265,
    "RTML_RAY_CLIENT_PORT": 20001,
    "RTML_RAY_DASHBOARD_AGENT_PORT": 28266,
    "RTML_RAY_METRICS_EXPORT_PORT": 28090,
    "RTML_RAY_MIN_WORKER_PORT": 21000,
    "RTML_RAY_MAX_WORKER_PORT": 21499,
    "RTML_SERVE_PORT": 18000,
    "RTML_PRODUCER_METRICS_PORT": 19101,
    "RTML_LAKE_METRICS_PORT": 19102,
    "RTML_PROMETHEUS_PORT": 19090,
}
TEST_ENV = {name: str(port + OFFSET) for name, port in TEST_PORTS.items()}
TEST_ENV["RTML_STATE_DIR"] = str(ROOT / (f".rtml-test-{OFFSET}" if OFFSET else ".rtml-test"))
# Services given as addresses stay external; unset ones are started by the tests.
for _name in ("RTML_KAFKA_BOOTSTRAP", "RTML_REDIS_URL", "RTML_MLFLOW_TRACKING_URI", "RTML_RAY_ADDRESS"):
    TEST_ENV[_name] = os.environ.get(_name, "")
os.environ.update(TEST_ENV)
# A test process is a Ray driver too: configure it before any test module imports Ray.
import ray_apps  # noqa: E402,F401
