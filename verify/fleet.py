"""The learners of a scenario: fresh topics, fresh traced learners, kills, the drain, the verdict.

Every scenario starts from empty topics and learners without state, so that the ledger of a topic
is exactly the stream the scenario sent, and a learner's trace covers all of it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import ray

from ray_apps.learning import actor as learner
from rtml.checkpoint import RedisCheckpoints, forget
from rtml.settings import Settings
from rtml.usecases import USECASES, get
from streaming.producer import ProduceReport, produce
from streaming.topics import recreate_topics
from verify.ledger import (
    TopicLedger,
    dead_letter_problems,
    entity_memory_problems,
    learner_problems,
    read_dead_letters,
    read_topic,
)
from verify.verdict import Verdict

Say = Callable[[str], None]

#: What the learners of a scenario checkpoint and snapshot at: often, so that kills land between
#: checkpoints (and replay) and a snapshot to fall back to exists within seconds.
QUICK_CADENCE = {"checkpoint_every_events": 500, "checkpoint_every_s": 2.0, "snapshot_every_s": 4.0}


class Fleet:
    """One traced learner per use case, started fresh on freshly created topics."""

    def __init__(
        self,
        settings: Settings,
        usecases: Sequence[str] = tuple(USECASES),
        say: Say = print,
        **cadence: float,
    ) -> None:
        self.settings = settings
        self.usecases = list(usecases)
        self.say = say
        self.cadence = {**QUICK_CADENCE, **cadence}
        self.node_id: str | None = None

    # -- set-up -------------------------------------------------------------------------------
    def reset(self) -> None:
        """No learner, no learner state, empty topics and dead-letter topics."""
        for name in self.usecases:
            handle = learner.find(name)
            if handle is not None:
                ray.kill(handle, no_restart=True)
            forget(self.settings, name, 0)
        recreate_topics(self.settings, [get(n) for n in self.usecases])

    def start(self, node_id: str | None = None) -> None:
        """Start the learners (on ``node_id`` when given, elsewhere when it is gone)."""
        addresses = {**learner.service_addresses(self.settings), **self.cadence}
        for name in self.usecases:
            learner.start(name, trace=True, settings=addresses, node_id=node_id)

    def begin(self, node_id: str | None = None) -> None:
        """Empty topics, fresh learners started, each answering before the scenario goes on."""
        self.reset()
        self.start(node_id)
        for name in self.usecases:
            self.pid(name)

    # -- chaos --------------------------------------------------------------------------------
    def pid(self, usecase: str, timeout: float = 120) -> int:
        """The worker process of a learner, once it answers (after a restart too)."""
        deadline = time.monotonic() + timeout
        while True:
            handle = learner.find(usecase)
            try:
                if handle is not None:
                    return int(ray.get(handle.pid.remote(), timeout=30))
            except (
                ray.exceptions.RayActorError,
                ray.exceptions.ActorUnavailableError,
                ray.exceptions.GetTimeoutError,
            ):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"learner {usecase} did not come back within {timeout:.0f}s")
            time.sleep(0.5)

    def sigkill(self, usecase: str) -> int:
        pid = self.pid(usecase)
        os.kill(pid, signal.SIGKILL)
        return pid

    def status(self, usecase: str) -> dict[str, Any] | None:
        handle = learner.find(usecase)
        if handle is None:
            return None
        try:
            return ray.get(handle.status.remote(), timeout=30)
        except (
            ray.exceptions.RayActorError,
            ray.exceptions.ActorUnavailableError,
            ray.exceptions.GetTimeoutError,
        ):
            return None

    # -- the end ------------------------------------------------------------------------------
    def wait_drained(self, timeout: float) -> dict[str, dict[str, Any]]:
        """Wait until every learner has read its topic to the end; the last statuses."""
        from verify.ledger import end_offsets

        ends = {n: end_offsets(self.settings, get(n).topic) for n in self.usecases}
        deadline = time.monotonic() + timeout
        last: dict[str, dict[str, Any]] = {}
        said = 0.0
        while True:
            for name in self.usecases:
                status = self.status(name)
                if status is not None:
                    last[name] = status
            done = [n for n in self.usecases if n in last and _at(last[n], ends[n])]
            failed = [n for n in self.usecases if n in last and last[n].get("error")]
            if len(done) == len(self.usecases) or failed:
                return last
            if time.monotonic() > deadline:
                return last
            if time.monotonic() - said > 10:
                said = time.monotonic()
                self.say(
                    "  draining: "
                    + ", ".join(
                        f"{n} {last.get(n, {}).get('learned', 0)}/{sum(ends[n].values())}"
                        for n in self.usecases
                    )
                )
            time.sleep(0.5)

    def check(self, verdict: Verdict, timeout: float, dead_letters_once: bool = False) -> None:
        """Drain, then compare every learner with its topic's ledger (and its dead letters)."""
        statuses = self.wait_drained(timeout)
        for name in self.usecases:
            spec = get(name)
            status = statuses.get(name)
            if not verdict.expect(status is not None, f"{name}: the learner never answered"):
                continue
            assert status is not None
            handle = learner.find(name)
            trace = ray.get(handle.trace.remote(), timeout=60) if handle is not None else None
            ledger = read_topic(self.settings, spec, keep_events=spec.entities is not None)
            counts, problems = learner_problems(name, ledger, status, trace)
            if spec.entities is not None:
                memory_counts, memory_problems = self._entity_memory(name, ledger)
                counts |= memory_counts
                problems += memory_problems
            letters = read_dead_letters(self.settings, spec)
            dl_counts, dl_problems = dead_letter_problems(name, ledger, letters, dead_letters_once)
            verdict.counts[name] = {
                **counts,
                **dl_counts,
                "restored_from": status.get("restored_from"),
                "checkpoint_failures": status.get("checkpoint_failures", 0),
            }
            verdict.problems.extend(problems + dl_problems)

    def _entity_memory(self, name: str, ledger: TopicLedger) -> tuple[dict[str, int], list[str]]:
        """The latest checkpoint's entity memory against a replay of the checkpoint's own trace
        (it may lag the live learner by a checkpoint; the pair inside it is consistent)."""
        stored = RedisCheckpoints.of(self.settings).load(name, 0)
        trace, memory = (stored[1].trace, stored[1].entities) if stored else (None, None)
        if trace is None or memory is None:
            return {}, [f"{name}: no checkpoint with an entity memory and a trace to compare"]
        return entity_memory_problems(name, get(name), ledger, trace, memory, learner.FORGET_EVERY)

    def stop(self) -> None:
        for name in self.usecases:
            handle = learner.find(name)
            if handle is not None:
                ray.kill(handle, no_restart=True)


def _at(status: dict[str, Any], ends: dict[int, int]) -> bool:
    if not status.get("running") or status.get("restoring"):
        return False
    offsets = {int(p): int(o) for p, o in (status.get("offsets") or {}).items()}
    return all(offsets.get(p, 0) >= end for p, end in ends.items())


class Stream:
    """Events of known count produced in the background while a scenario makes trouble."""

    def __init__(
        self, settings: Settings, usecases: Sequence[str], count: int, rate: float, seed: int
    ) -> None:
        self.count = count
        self.started = time.monotonic()
        self.report: ProduceReport | None = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.report = produce(settings, list(usecases), rate=rate, count=count, seed=seed)
            except BaseException as exc:  # noqa: BLE001 - reported by join()
                self.error = exc

        self._thread = threading.Thread(target=run, name="verify-stream", daemon=True)
        self._thread.start()

    def join(self, verdict: Verdict, timeout: float = 600) -> None:
        """Wait for the stream; every event must have been acknowledged by the broker."""
        self._thread.join(timeout)
        if not verdict.expect(
            not self._thread.is_alive(), f"the producer did not finish within {timeout:.0f}s"
        ):
            return
        if not verdict.expect(self.error is None, f"the producer failed: {self.error!r}"):
            return
        report = self.report
        assert report is not None
        verdict.counts["produced"] = report.delivered
        verdict.expect(report.failed == 0, f"{report.failed} events refused by the broker")
        verdict.expect(report.undelivered == 0, f"{report.undelivered} events never acknowledged")
