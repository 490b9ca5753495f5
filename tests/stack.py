"""A stack of real services for a test package, started by the project's own `rtml up` and
stopped by `rtml down`, from empty state. A part that does not come up fails loudly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence

import pytest

from rtml.settings import Settings, load_settings


def rtml(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 400
) -> subprocess.CompletedProcess[str]:
    """Run the rtml CLI as a person would, in a child process (that nobody answers: no stdin)."""
    return subprocess.run(
        [sys.executable, "-m", "rtml.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def status_of(*parts: str) -> dict[str, dict]:
    args = [a for p in parts for a in ("-p", p)]
    result = rtml("status", "--json", *args)
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)}


def run_stack(
    parts: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 400
) -> Iterator[Settings]:
    """Body of a fixture: stop leftovers of an aborted run, drop their data, start ``parts``,
    yield the settings, stop everything and check that nothing is left running."""
    rtml("down", env=env)
    shutil.rmtree(load_settings().state_dir, ignore_errors=True)
    started = rtml("up", *[a for p in parts for a in ("-p", p)], env=env, timeout=timeout)
    if started.returncode != 0 or "FAILED" in started.stdout or "not started" in started.stdout:
        rtml("down", env=env)
        pytest.fail(f"`rtml up` failed:\n{started.stdout}\n{started.stderr}", pytrace=False)
    try:
        yield load_settings(**{k.removeprefix("RTML_").lower(): v for k, v in (env or {}).items()})
    finally:
        stopped = rtml("down", env=env)
        assert stopped.returncode == 0, stopped.stderr
        left = {name: row for name, row in status_of().items() if row["state"] != "stopped"}
        assert not left, f"still running after `rtml down`: {left}"
