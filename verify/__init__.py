"""`rtml verify`: faults, bad input and overload on a real stack, each ending in an exact verdict.

A scenario makes trouble on purpose — SIGKILLs learners, restarts the broker, wipes Redis, kills
a Ray node, sends poison, fuzzes the API, overloads it, alters checkpoints and models — and then
counts: the verdict rests on what the broker, the learners and the API report afterwards
(``ledger``), never on a timing. Like the stack itself, this package is a composition root: it
starts and stops parts and reaches into the adapters (learners, Serve) to do it.

The quick variants run in `make test` (``tests/chaos/``); ``long`` ones are for a person.
"""

from __future__ import annotations

import importlib
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

from verify.context import Context
from verify.verdict import Verdict

#: In the order `rtml verify --all` runs them: the cheap and local first, the API ones last.
SCENARIO_MODULES = (
    "poison",
    "learner_kills",
    "broker_restart",
    "redis_loss",
    "tampering",
    "api_fuzz",
    "overload",
    "ray_node",
)


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    needs: tuple[str, ...]
    run: Callable[[Context], Verdict]


def _load(module: ModuleType) -> Scenario:
    return Scenario(module.NAME, module.SUMMARY, tuple(module.NEEDS), module.run)


def all_scenarios() -> dict[str, Scenario]:
    found = [_load(importlib.import_module(f"verify.scenarios.{m}")) for m in SCENARIO_MODULES]
    return {s.name: s for s in found}


def run_scenario(scenario: Scenario, ctx: Context) -> Verdict:
    """Run one scenario; an exception is a failed verdict that says where it broke."""
    t0 = time.monotonic()
    ctx.say(f"{scenario.name}: {scenario.summary}")
    try:
        verdict = scenario.run(ctx)
    except Exception as exc:  # noqa: BLE001 - a crash of the scenario is a verdict too
        verdict = Verdict(scenario.name)
        lines = traceback.format_exception(exc)
        verdict.problems.append(
            f"the scenario broke: {type(exc).__name__}: {exc} ({lines[-2].strip()[:200]})"
        )
    verdict.seconds = time.monotonic() - t0
    ctx.say(
        f"{scenario.name}: {'PASSED' if verdict.passed else 'FAILED'} in {verdict.seconds:.0f}s"
    )
    for problem in verdict.problems:
        ctx.say(f"  ! {problem}")
    return verdict


def needs(names: Sequence[str]) -> list[str]:
    """The stack parts the named scenarios need, in start order."""
    table = all_scenarios()
    wanted = {part for n in names for part in table[n].needs}
    order = ["kafka", "redis", "mlflow", "ray", "api"]
    return [p for p in order if p in wanted]
