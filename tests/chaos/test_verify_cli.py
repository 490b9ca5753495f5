"""`rtml verify` as a person runs it, against the chaos stack (``--here``): the verdict table as
JSON, the exit status, and a refusal without ``--yes`` when it cannot ask."""

from __future__ import annotations

import json

from rtml.settings import Settings
from tests.stack import rtml


def test_verify_here_prints_json_verdicts_and_exits_zero(stack: Settings) -> None:
    done = rtml("verify", "poison", "--here", "--yes", "--json", timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (verdict,) = json.loads(done.stdout)
    assert verdict["scenario"] == "poison" and verdict["passed"] is True
    assert verdict["counts"]["tfd"]["learned"] == verdict["counts"]["tfd"]["valid"] > 0


def test_verify_without_a_scenario_lists_them() -> None:
    done = rtml("verify")
    assert done.returncode == 2
    assert "learner-kills" in done.stderr and "--all" in done.stderr


def test_verify_here_asks_first() -> None:
    done = rtml("verify", "poison", "--here")  # stdin is not a terminal: the answer is no
    assert done.returncode == 1
    assert "Aborted" in done.stdout + done.stderr or "recreates topics" in done.stdout + done.stderr
