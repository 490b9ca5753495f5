"""Test-wide settings: the integration stack runs in a sandbox (its own ports and state folder,
``rtml.stack.sandbox``), so it never collides with a developer's `rtml up` on the default ones.

``RTML_TEST_SLOT`` (default: the sandbox's "test" slot) moves the test ports and names its own
state folder, so two test sessions can run side by side on one machine.
"""

from __future__ import annotations

import os
from pathlib import Path

from rtml.stack.sandbox import SLOTS, sandbox_env

ROOT = Path(__file__).resolve().parents[1]
SLOT = int(os.environ.get("RTML_TEST_SLOT", SLOTS["test"]))
STATE_DIR = ROOT / (".rtml-test" if SLOTS["test"] == SLOT else f".rtml-test-{SLOT}")
TEST_ENV = sandbox_env(SLOT, STATE_DIR)
# Services given as addresses stay external; unset ones are started by the tests.
for _name in (
    "RTML_KAFKA_BOOTSTRAP",
    "RTML_REDIS_URL",
    "RTML_MLFLOW_TRACKING_URI",
    "RTML_RAY_ADDRESS",
):
    TEST_ENV[_name] = os.environ.get(_name, "")
os.environ.update(TEST_ENV)
# A test process is a Ray driver too: configure it before any test module imports Ray.
from rtml.ray_env import apply_ray_env  # noqa: E402
from rtml.settings import get_settings  # noqa: E402

apply_ray_env(get_settings())
