"""The learner's entity memory on fakes (no broker, no Redis): what it records of each event it
reads, and what it writes to the online store."""

from __future__ import annotations

import json
from typing import Any

import river

from ray_apps.learning.actor import OnlineLearner
from ray_apps.learning.metrics import LearnerMetrics
from rtml.checkpoint import Checkpoint
from rtml.online import build_model, prequential
from rtml.usecases import get
from rtml.usecases.generators import generator_for


class Message:
    def __init__(self, partition: int, offset: int, value: bytes) -> None:
        self._p, self._o, self._v = partition, offset, value

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def value(self) -> bytes:
        return self._v

    def key(self) -> bytes:
        return b"k"

    def topic(self) -> str:
        return "tfd.events"

    def headers(self) -> list[tuple[str, bytes]]:
        return []

    def error(self) -> None:
        return None


class Counts:
    def count(self, events: int = 1) -> None: ...


class DeadLetters:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def produce(self, topic: str, value: bytes, key: bytes, headers: Any) -> None:
        self.sent.append(value)

    def poll(self, timeout: float) -> int:
        return 0


class Store:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.written: list[tuple[str, str]] = []

    def write(self, state: Any, touched: Any) -> int:
        if self.fail:
            raise ConnectionError("redis away")
        self.written += sorted(touched)
        return len(touched)


def _learner(store: Store) -> OnlineLearner:
    """Shard 0 of two over two partitions: it owns partition 0 and reads partition 1 for the
    merchants' memories only."""
    learner = OnlineLearner.__new__(OnlineLearner)
    learner.spec = spec = get("tfd")
    learner.entity_fields = ["user_id", "merchant_id"]
    learner.foreign_fields = ["merchant_id"]
    learner._owned = {0}
    learner.touched = set()
    learner.entity_writes = learner.entity_write_failures = 0
    learner.entity_write_error = None
    learner.checkpointer = Counts()  # type: ignore[assignment]
    learner.dlq = DeadLetters()  # type: ignore[assignment]
    learner.entity_store = store  # type: ignore[assignment]
    learner.metrics = LearnerMetrics("tfd", 0)
    learner.state = Checkpoint(
        model=build_model(spec),
        metrics=prequential(spec),
        offsets={},
        learned=0,
        versions={"river": river.__version__},
        entities=spec.entity_state(),
        foreign_offsets={},
    )
    return learner


def test_owned_events_are_learned_and_recorded_foreign_ones_only_recorded_for_merchants() -> None:
    spec, gen = get("tfd"), generator_for("tfd", seed=4)
    raws = [next(gen).event for _ in range(400)]
    learner = _learner(Store())
    state = learner.state
    assert state is not None
    expected = spec.entity_state()
    assert expected is not None and state.entities is not None
    offsets = [0, 0]
    for i, raw in enumerate(raws):
        p = i % 2
        value = raw if isinstance(raw, bytes) else json.dumps(raw, default=str).encode()
        if i == 10:  # an owned event that fails its schema: dead-lettered, never recorded
            value = b'{"transaction_id": "x"}'
        learner._process(state, Message(p, offsets[p], value))
        offsets[p] += 1
        if i != 10:
            event = spec.parse(value).model_dump()
            expected.record(event, None if p == 0 else ["merchant_id"])
    assert state.learned == 199 and state.dead_lettered == 1
    assert state.offsets == {0: 200} and state.foreign_offsets == {1: 200}
    assert state.entities.memory == expected.memory
    users = {v for (f, v) in learner.touched if f == "user_id"}
    assert users == set(state.entities.memory["user_id"])


def test_a_failed_store_write_is_counted_and_retried_with_the_next_batch() -> None:
    learner = _learner(Store(fail=True))
    state = learner.state
    assert state is not None
    learner.touched = {("user_id", "u1"), ("merchant_id", "m1")}
    learner._write_entities(state)
    assert learner.entity_write_failures == 1 and "redis away" in str(learner.entity_write_error)
    assert learner.touched == {("user_id", "u1"), ("merchant_id", "m1")}  # kept for the retry
    learner.entity_store = ok = Store()  # type: ignore[assignment]
    learner._write_entities(state)
    assert ok.written == [("merchant_id", "m1"), ("user_id", "u1")]
    assert learner.touched == set() and learner.entity_write_error is None
