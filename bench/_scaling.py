"""The arithmetic of bench/scale.py, apart from the stack so that it can be tested alone: whether
a part held a step (its lag did not grow), the highest rate it held, and what the measured costs
project to at rates this machine cannot offer."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: A part holds a step when its lag grows by at most this share of the events offered over it:
#: it kept up with at least 95 % of the rate (a minute's step: 3 s of events).
HOLD_TOLERANCE = 0.05


def slope(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares growth per second of ``(time, value)`` samples. A fit, not end minus start:
    a learner's lag saws with its batches and the lakehouse's with its triggers, and two points
    would read a tooth as a trend."""
    n = len(samples)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    return sum((t - mt) * (v - mv) for t, v in samples) / var


def holds(
    samples: Sequence[tuple[float, float]],
    offered_per_s: float,
    tolerance: float = HOLD_TOLERANCE,
    min_samples: int = 3,
) -> bool:
    """Whether a lag series (events behind, over a step) stayed bounded at that offered rate.

    Fewer than ``min_samples`` samples is "did not hold": nothing shows it did (a lakehouse
    whose micro-batch outlasts the step reports no lag in it at all).
    """
    if len(samples) < max(2, min_samples):
        return False
    return slope(samples) <= tolerance * max(offered_per_s, 0.0)


def highest_held(steps: Sequence[Mapping[str, Any]], part: str) -> float | None:
    """The highest offered rate (events/s, all use cases) at which ``part`` held, or None."""
    rates = [s["offered_per_s"] for s in steps if s["holds"].get(part)]
    return max(rates) if rates else None


def saturation_index(steps: Sequence[Mapping[str, Any]], parts: Sequence[str]) -> int:
    """The step the efficiency is read at: the highest where every part held; else the highest
    where the first part (the learners) held; else the first step."""
    for wanted in (tuple(parts), tuple(parts[:1])):
        held = [i for i, s in enumerate(steps) if all(s["holds"].get(p) for p in wanted)]
        if held:
            return max(held, key=lambda i: steps[i]["offered_per_s"])
    return 0


def cpu_per_1000(cpu_s: float, events: int) -> float | None:
    return 1000.0 * cpu_s / events if events > 0 else None


def marginal_cpu_per_1000(low: Mapping[str, Any], high: Mapping[str, Any]) -> dict[str, float]:
    """Each part's CPU-s per 1 000 *more* events between two steps (their cores' difference over
    their rates' difference): what a part's fixed cost at rest does not inflate. A part that
    costs less at the higher rate (noise, or a cost that does not grow) counts as 0."""
    d_rate = high["offered_per_s"] - low["offered_per_s"]
    if d_rate <= 0:
        return {}
    parts = set(low["cores"]) | set(high["cores"])
    return {
        p: round(
            max(0.0, 1000.0 * (high["cores"].get(p, 0.0) - low["cores"].get(p, 0.0)) / d_rate), 3
        )
        for p in sorted(parts)
    }


def project(
    cpu_s_per_1000: Mapping[str, float],
    rates: Sequence[float],
    usecases: int,
    pod_cpus: int = 4,
    headroom: float = 0.7,
) -> list[dict[str, Any]]:
    """Cores and KubeRay values at each rate (events/s, all use cases), from CPU-s per 1 000
    events per part measured at one rate, on paper: costs taken as linear in the rate, every
    part run at ``headroom`` of its cores (a part run at 100 % has no margin for a burst).

    A learner shard is one thread: it holds at most one core's worth, so the shards per use case
    are what its share of the learners' cores needs, at ``headroom`` each; a topic needs at least
    as many partitions as shards.
    """
    out = []
    for rate in rates:
        cores = {part: cost * rate / 1000.0 / headroom for part, cost in cpu_s_per_1000.items()}
        learner_cores = cores.get("learners", 0.0)
        shards = max(1, math.ceil(learner_cores / usecases))
        learner_pods = math.ceil(shards * usecases / pod_cpus)
        out.append(
            {
                "rate": rate,
                "cores": {p: round(c, 1) for p, c in cores.items()},
                "cores_total": round(sum(cores.values()), 1),
                "shards_per_usecase": shards,
                "partitions_per_topic": shards,
                "learner_pods": learner_pods,
                "pod_cpus": pod_cpus,
            }
        )
    return out
