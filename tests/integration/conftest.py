"""The real services for integration tests, started by the project's own `rtml up` and stopped by
`rtml down` after the session. A service that does not come up fails the session loudly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from rtml.settings import Settings, load_settings

SERVICES = ["kafka", "redis", "mlflow", "ray"]


def rtml(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the rtml CLI as a person would, in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "rtml.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def status_of(*parts: str) -> dict[str, dict]:
    args = [a for p in parts for a in ("-p", p)]
    result = rtml("status", "--json", *args)
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)}


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    # Every session starts from empty services: stop leftovers of an aborted run, drop their data.
    rtml("down")
    shutil.rmtree(load_settings().state_dir, ignore_errors=True)
    args = [a for p in SERVICES for a in ("-p", p)]
    started = rtml("up", *args)
    if started.returncode != 0:
        rtml("down")
        pytest.fail(f"`rtml up` failed:\n{started.stdout}\n{started.stderr}", pytrace=False)
    yield load_settings()
    stopped = rtml("down")
    assert stopped.returncode == 0, stopped.stderr
    left = {name: row for name, row in status_of().items() if row["state"] != "stopped"}
    assert not left, f"still running after `rtml down`: {left}"
