"""bench/scale.py's arithmetic: when a lag series counts as held, which step is the saturation,
and what the measured costs project to (the bench itself needs a stack and is not a test)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import _scaling


def series(values: list[float], every: float = 5.0) -> list[tuple[float, float]]:
    return [(i * every, v) for i, v in enumerate(values)]


def test_slope_of_a_line_is_its_growth_per_second() -> None:
    assert _scaling.slope(series([0, 50, 100, 150])) == pytest.approx(10.0)
    assert _scaling.slope(series([7, 7, 7])) == 0.0
    assert _scaling.slope([(1.0, 3.0)]) == 0.0


def test_a_sawtooth_that_does_not_grow_holds() -> None:
    # a lakehouse landing every 15 s: 0 → 300 behind, then back, three times over a minute
    saw = [0, 100, 200, 300, 0, 100, 200, 300, 0, 100, 200, 300, 0]
    assert _scaling.holds(series(saw), offered_per_s=60.0)


def test_lag_growing_faster_than_the_tolerance_does_not_hold() -> None:
    # offered 100/s, processed 90/s: 10/s more behind each second, over 5 % of the rate
    assert not _scaling.holds(series([i * 50 for i in range(13)]), offered_per_s=100.0)
    # processed 97/s: 3/s, within 5 %
    assert _scaling.holds(series([i * 15 for i in range(13)]), offered_per_s=100.0)


def test_a_catching_up_part_holds_and_too_few_samples_do_not() -> None:
    assert _scaling.holds(series([900, 600, 300, 0]), offered_per_s=10.0)
    assert not _scaling.holds(series([0, 0]), offered_per_s=10.0)


def steps(*held: tuple[float, bool, bool]) -> list[dict]:
    return [{"offered_per_s": r, "holds": {"learners": a, "lakehouse": b}} for r, a, b in held]


def test_highest_held_and_saturation() -> None:
    s = steps((30, True, True), (120, True, False), (360, False, False))
    assert _scaling.highest_held(s, "learners") == 120
    assert _scaling.highest_held(s, "lakehouse") == 30
    assert _scaling.saturation_index(s, ("learners", "lakehouse")) == 0
    only_learners = steps((30, True, False), (120, True, False))
    assert _scaling.saturation_index(only_learners, ("learners", "lakehouse")) == 1
    nothing = steps((30, False, False))
    assert _scaling.highest_held(nothing, "learners") is None
    assert _scaling.saturation_index(nothing, ("learners", "lakehouse")) == 0


def test_cpu_per_1000_and_projection() -> None:
    assert _scaling.cpu_per_1000(2.0, 4000) == 0.5
    assert _scaling.cpu_per_1000(2.0, 0) is None
    # learners 0.7 CPU-s per 1000 events: 7 cores at 10 000/s, at 70 % headroom 10 cores
    (p,) = _scaling.project({"learners": 0.7, "kafka": 0.07}, [10_000], usecases=3, pod_cpus=4)
    assert p["cores"] == {"learners": 10.0, "kafka": 1.0}
    assert p["shards_per_usecase"] == 4  # 10 cores over 3 use cases, one core a shard
    assert p["learner_pods"] == 3  # 12 shards, 4 a pod
    assert p["cores_total"] == 11.0


def test_marginal_cost_leaves_the_fixed_cost_out() -> None:
    low = {"offered_per_s": 30.0, "cores": {"learners": 0.1, "ray": 0.2}}
    high = {"offered_per_s": 230.0, "cores": {"learners": 0.5, "ray": 0.19, "kafka": 0.1}}
    assert _scaling.marginal_cpu_per_1000(low, high) == {
        "kafka": 0.5,
        "learners": 2.0,
        "ray": 0.0,
    }
    assert _scaling.marginal_cpu_per_1000(high, low) == {}
