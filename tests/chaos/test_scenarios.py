"""Every `rtml verify` scenario, quick variant, on a real stack: each must end in a passed
verdict. The verdict is exact counts (see ``verify.ledger``), never a timing; a scenario
added to ``verify.SCENARIO_MODULES`` is run here without a line more."""

from __future__ import annotations

import json

import pytest

from verify import SCENARIO_MODULES, all_scenarios, run_scenario
from verify.context import Context

NAMES = list(all_scenarios())


def test_every_scenario_module_is_run() -> None:
    assert len(NAMES) == len(SCENARIO_MODULES) >= 8


@pytest.mark.parametrize("name", NAMES)
def test_scenario_verdict(ctx: Context, name: str) -> None:
    verdict = run_scenario(all_scenarios()[name], ctx)
    print(json.dumps(verdict.as_dict(), default=str))
    assert verdict.passed, "\n".join(verdict.problems)
    assert verdict.counts, "a verdict without counts proves nothing"
