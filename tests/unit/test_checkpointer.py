"""The learner's checkpointer with fakes at its boundaries (dead-letter producer, consumer, stores)
and a clock of its own: when a checkpoint is due, and its steps in order."""

from __future__ import annotations

import time
from typing import Any, Literal

import pytest
from confluent_kafka import TopicPartition

from ray_apps.learning.checkpointer import CHECKPOINT_RETRY_S, Checkpointer
from ray_apps.learning.metrics import LearnerMetrics
from rtml.checkpoint import Checkpoint, dumps
from rtml.settings import load_settings

KEY = b"k" * 16
TOPIC = "eta.events"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Report:
    """A checkpoint's metrics, as far as a snapshot reads them."""

    def report(self) -> dict[str, Any]:
        return {"overall": {"mae": 3.0}}


class Boundaries:
    """The fakes, writing every step they see to one log; ``fail`` names the step that raises."""

    def __init__(self, clock: Clock, fail: str | None = None, save_seconds: float = 0.0) -> None:
        self.clock, self.fail, self.save_seconds = clock, fail, save_seconds
        self.log: list[str] = []
        self.stored: bytes | None = None
        self.version = 0
        self.committed: list[TopicPartition] = []
        self.snapshots: list[int] = []

    def _step(self, name: str) -> None:
        self.log.append(name)
        if self.fail == name:
            raise ConnectionError(f"{name} failed")

    # the dead-letter producer
    def flush(self, timeout: float) -> int:
        self.log.append("flush")
        return 1 if self.fail == "flush" else 0

    # the consumer
    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[True]) -> None:
        self._step("commit")
        self.committed = offsets

    # the checkpoint store
    def save(self, usecase: str, shard: int, checkpoint: Checkpoint) -> tuple[int, bytes]:
        self.clock.now += self.save_seconds
        self._step("save")
        checkpoint.saved_at = time.time()
        self.version += 1
        self.stored = dumps(checkpoint, KEY)
        return self.version, self.stored

    def announce(self, usecase: str, shard: int, version: int) -> None:
        self._step("announce")

    def blob(self, usecase: str, shard: int) -> bytes | None:
        return self.stored


class Snapshots:
    def __init__(self) -> None:
        self.versions: list[int] = []

    def save(self, usecase: str, shard: int, version: int, blob: bytes, metrics, step) -> None:
        self.versions.append(version)


def _state() -> Checkpoint:
    return Checkpoint(
        model={"w": 1.0}, metrics=Report(), offsets={0: 12, 2: 7}, learned=19, versions={}
    )


def _checkpointer(
    fakes: Boundaries, snapshots: Snapshots | None = None, **settings: Any
) -> Checkpointer:
    defaults = {"checkpoint_every_events": 1000, "checkpoint_every_s": 1000.0}
    checkpointer = Checkpointer(
        "eta",
        0,
        TOPIC,
        load_settings(checkpoint_key=KEY.decode(), **{**defaults, **settings}),
        store=fakes,
        snapshots=snapshots or Snapshots(),
        metrics=LearnerMetrics("eta", 0),
        clock=fakes.clock,
    )
    checkpointer.restored(0)
    return checkpointer


def test_due_by_count() -> None:
    c = _checkpointer(Boundaries(Clock()), checkpoint_every_events=3)
    assert not c.due()
    c.count(2)
    assert not c.due()
    c.count()
    assert c.due()


def test_due_by_time_and_only_with_something_to_save() -> None:
    clock = Clock()
    c = _checkpointer(Boundaries(clock), checkpoint_every_s=10.0)
    c.count()
    clock.now += 9.5
    assert not c.due()
    clock.now += 0.5
    assert c.due()
    idle = _checkpointer(Boundaries(clock), checkpoint_every_s=10.0)
    clock.now += 60
    assert not idle.due(), "nothing learned since: nothing to checkpoint"


def test_a_slow_checkpoint_spaces_the_next_by_the_max_share() -> None:
    """A checkpoint of 2 s at a 25 % share: the next waits 2 · 0.75 / 0.25 = 6 s, even when
    events and time alone would make it due."""
    clock = Clock()
    fakes = Boundaries(clock, save_seconds=2.0)
    c = _checkpointer(
        fakes, checkpoint_every_events=10, checkpoint_every_s=1.0, checkpoint_max_share=0.25
    )
    c.count(10)
    assert c.checkpoint(_state(), fakes, fakes)
    assert c.last_seconds == pytest.approx(2.0)
    c.count(100)
    clock.now = c.last_at + 5.5
    assert not c.due()
    clock.now = c.last_at + 6.0
    assert c.due()


def test_after_a_failure_the_next_try_waits_the_retry_gap_only() -> None:
    clock = Clock()
    fakes = Boundaries(clock, fail="save")
    c = _checkpointer(fakes)
    c.count(5)
    assert not c.checkpoint(_state(), fakes, fakes)
    assert c.failures == 1 and "save failed" in (c.error or "")
    assert c.pending == 5 and c.version == 0, "nothing was checkpointed"
    clock.now += CHECKPOINT_RETRY_S / 2
    assert not c.due()
    clock.now += CHECKPOINT_RETRY_S / 2
    assert c.due(), "a failed checkpoint is retried long before the pacing would allow"
    fakes.fail = None
    assert c.checkpoint(_state(), fakes, fakes)
    assert c.error is None and c.failures == 1 and c.pending == 0 and c.version == 1


def test_the_steps_run_in_order_and_commit_the_next_offsets() -> None:
    fakes = Boundaries(Clock())
    c = _checkpointer(fakes)
    c.count(3)
    assert c.checkpoint(_state(), fakes, fakes)
    assert fakes.log == ["flush", "save", "commit", "announce"]
    assert {(tp.topic, tp.partition, tp.offset) for tp in fakes.committed} == {
        (TOPIC, 0, 12),
        (TOPIC, 2, 7),
    }
    assert c.version == 1 and c.pending == 0
    assert c.status()["checkpoint"]["version"] == 1


def test_the_status_reports_the_age_of_the_latest_save() -> None:
    fakes = Boundaries(Clock())
    c = _checkpointer(fakes)
    state = _state()
    state.created = time.time() - 22 * 60  # the learner started fresh 22 minutes ago
    c.count()
    c.checkpoint(state, fakes, fakes)
    assert c.status()["checkpoint"]["age_s"] < 60


@pytest.mark.parametrize(
    ("fail", "done"),
    [
        ("flush", ["flush"]),  # dead letters not acknowledged: nothing stored
        ("save", ["flush", "save"]),  # not durable: offsets not committed, nothing announced
        ("commit", ["flush", "save", "commit"]),
        ("announce", ["flush", "save", "commit", "announce"]),
    ],
)
def test_a_failed_step_ends_the_checkpoint_there(fail: str, done: list[str]) -> None:
    fakes = Boundaries(Clock(), fail=fail)
    c = _checkpointer(fakes)
    c.count(3)
    assert not c.checkpoint(_state(), fakes, fakes)
    assert fakes.log == done
    assert c.version == 0 and c.pending == 3 and c.error is not None
    if fail in ("flush", "save"):
        assert fakes.committed == []
    if fail == "flush":
        assert fakes.stored is None and "dead letters" in (c.error or "")


def test_snapshots_are_paced_and_the_final_one_is_the_latest_checkpoint() -> None:
    clock = Clock()
    fakes, snapshots = Boundaries(clock), Snapshots()
    c = _checkpointer(fakes, snapshots, snapshot_every_s=60.0)
    c.count()
    c.checkpoint(_state(), fakes, fakes)
    assert snapshots.versions == [], "not yet a minute since the start"
    clock.now += 60
    c.count()
    c.checkpoint(_state(), fakes, fakes)
    c.snapshot(_state())  # at stop: waits for the upload; version 2 is snapshotted already
    assert snapshots.versions == [2]
    c.count()
    c.checkpoint(_state(), fakes, fakes)
    c.snapshot(_state())
    assert snapshots.versions == [2, 3] and c.status()["snapshot"]["version"] == 3


def test_a_stored_blob_that_does_not_verify_is_not_snapshotted() -> None:
    fakes, snapshots = Boundaries(Clock()), Snapshots()
    c = _checkpointer(fakes, snapshots)
    c.count()
    c.checkpoint(_state(), fakes, fakes)
    fakes.stored = bytes([fakes.stored[0] ^ 1]) + fakes.stored[1:]  # type: ignore[index]
    c.snapshot(_state())
    assert snapshots.versions == [] and "not snapshotted" in c.status()["snapshot"]["error"]
