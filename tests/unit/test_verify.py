"""`rtml verify` without services: the ledger's exactness checks catch every kind of broken
promise, every poison kind is refused by every spec, vegeta's results are read right."""

from __future__ import annotations

import pytest

from rtml.entity import EntityState
from rtml.usecases import USECASES, InvalidEvent, get
from rtml.usecases.generators import generator_for
from verify.ledger import (
    DeadLetter,
    TopicLedger,
    dead_letter_problems,
    entity_memory_problems,
    learner_problems,
)
from verify.load import parse_csv
from verify.scenarios.poison import poison_of

VALID = {(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)}
LEDGER = TopicLedger("tfd.events", {0: 4, 1: 2}, set(VALID), {(0, 3): "not JSON: ..."})


def _status(learned: int, dead: int = 1, offsets: dict | None = None) -> dict:
    return {
        "learned": learned,
        "dead_lettered": dead,
        "offsets": offsets or {0: 4, 1: 2},
        "error": None,
    }


def test_an_exact_learner_has_no_problem() -> None:
    trace = [(0, 0), (1, 0), (0, 1), (0, 2), (1, 1)]  # partitions interleave; each in order
    counts, problems = learner_problems("tfd", LEDGER, _status(5), trace)
    assert problems == [] and counts["lost"] == counts["repeated"] == 0


@pytest.mark.parametrize(
    "trace, status, expected",
    [
        ([(0, 0), (0, 1), (1, 0), (1, 1)], _status(4), "never learned"),
        ([(0, 0), (0, 1), (0, 2), (0, 2), (1, 0), (1, 1)], _status(6), "learned twice"),
        ([(0, 1), (0, 0), (0, 2), (1, 0), (1, 1)], _status(5), "out of partition order"),
        ([(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)], _status(6), "not valid events"),
        ([(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)], _status(5, dead=0), "dead-lettered 0"),
        (
            [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)],
            _status(5, offsets={0: 3, 1: 2}),
            "not the topic's end",
        ),
        ([(0, 0), (0, 1), (0, 2), (1, 0)], _status(5), "the trace holds 4"),
    ],
)
def test_each_broken_promise_is_named(trace: list, status: dict, expected: str) -> None:
    _, problems = learner_problems("tfd", LEDGER, status, trace)
    assert any(expected in p for p in problems), problems


def test_dead_letters_one_for_one() -> None:
    once = [DeadLetter((0, 3), "not JSON: ...")]
    assert dead_letter_problems("tfd", LEDGER, once, exactly_once=True)[1] == []
    twice = once * 2
    assert (
        dead_letter_problems("tfd", LEDGER, twice, exactly_once=False)[1] == []
    )  # replayed by a crash
    assert "more than once" in dead_letter_problems("tfd", LEDGER, twice, exactly_once=True)[1][0]
    assert (
        "without a dead letter" in dead_letter_problems("tfd", LEDGER, [], exactly_once=True)[1][0]
    )
    stray = [*once, DeadLetter((1, 0), "?")]
    assert (
        "for no invalid event"
        in dead_letter_problems("tfd", LEDGER, stray, exactly_once=True)[1][0]
    )
    unexplained = [DeadLetter((0, 3), "")]
    assert (
        "without a reason"
        in dead_letter_problems("tfd", LEDGER, unexplained, exactly_once=True)[1][0]
    )


@pytest.mark.parametrize("usecase", list(USECASES))
def test_every_poison_kind_is_refused_by_the_spec(usecase: str) -> None:
    spec = get(usecase)
    for kind, value in poison_of(usecase, seed=3).items():
        with pytest.raises(InvalidEvent) as refused:
            spec.parse(value)
        assert refused.value.reason, kind


def test_vegeta_results_are_counted_by_status_and_time() -> None:
    # timestamp (ns), code, latency (ns), bytes out, bytes in, error, body, attack, seq, method,
    # url, headers
    rows = [
        "1000000000,200,5000000,10,20,,,,0,POST,http://x,",
        "1500000000,503,1000000,10,20,503 Service Unavailable,,,1,POST,http://x,",
        "2000000000,200,15000000,10,20,,,,2,POST,http://x,",
        "2500000000,0,30000000000,10,0,timeout,,,3,POST,http://x,",
    ]
    load = parse_csv("\n".join(rows))
    assert load.sent == 4 and load.ok == 2 and load.outcomes["503"] == 1 and load.outcomes["0"] == 1
    assert load.ok_latencies == [0.005, 0.015] and load.ok_sent_at == [0.0, 1.0]
    assert load.sending_seconds == pytest.approx(1.5) and load.seconds == pytest.approx(31.5)
    assert load.errors == {"503 Service Unavailable": 1, "timeout": 1}


def _learned(usecase: str, n: int) -> tuple[TopicLedger, list[tuple[int, int]]]:
    """A ledger holding ``n`` generated events on two partitions, and a trace learning them."""
    spec = get(usecase)
    g = generator_for(usecase, seed=7, events_per_second=1.0)
    events = [spec.parse(next(g).event).model_dump() for _ in range(n)]
    trace = [(i % 2, i // 2) for i in range(n)]
    ledger = TopicLedger(spec.topic, {0: (n + 1) // 2, 1: n // 2}, set(trace))
    ledger.events = dict(zip(trace, events, strict=True))
    return ledger, trace


def _replayed(usecase: str, ledger: TopicLedger, trace: list) -> EntityState:
    state = get(usecase).entity_state()
    assert state is not None
    for at in trace:
        state.record(ledger.events[at])
    return state


@pytest.mark.parametrize("usecase", ["tfd", "eta"])
def test_an_entity_memory_equal_to_its_replay_passes(usecase: str) -> None:
    ledger, trace = _learned(usecase, 300)
    held = _replayed(usecase, ledger, trace)
    counts, problems = entity_memory_problems(usecase, get(usecase), ledger, trace, held, 10**6)
    assert problems == [] and counts["entities"] > 0 and counts["entities_differ"] == 0


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda trace: trace[:-1], "differs from a clean replay"),  # one event never recorded
        (lambda trace: trace[:150] + trace[140:], "differs from a clean replay"),  # replayed twice
    ],
)
def test_an_entity_memory_that_lost_or_doubled_events_is_named(damage, expected: str) -> None:
    ledger, trace = _learned("tfd", 300)
    held = _replayed("tfd", ledger, damage(trace))
    _, problems = entity_memory_problems("tfd", get("tfd"), ledger, trace, held, 10**6)
    assert any(expected in p for p in problems), problems
