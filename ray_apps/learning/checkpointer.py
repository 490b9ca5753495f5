"""``Checkpointer``: when a learner checkpoints, and the steps of one checkpoint, in order.

When. A checkpoint is due after ``checkpoint_every_events`` events or ``checkpoint_every_s``
seconds, whichever comes first, but never sooner than a pacing gap: after a checkpoint that took
d seconds the next waits d · (1 − share) / share, so checkpoints take at most
``checkpoint_max_share`` of the learner's time however large the model grows (the replay window
after a crash grows instead). After a failed checkpoint the next try comes ``CHECKPOINT_RETRY_S``
later, whatever the pacing says: the state in memory is not durable until one succeeds.

How. One checkpoint is four steps, in this order; each runs only if the one before succeeded:

1. **Flush the dead letters.** The checkpoint's offsets move past every dead-lettered event, so the
   broker must hold those dead letters first: otherwise a crash after the checkpoint would lose
   them (the restored learner never reads those events again). Dead letters the broker has not
   acknowledged withhold the checkpoint.
2. **Store the signed checkpoint** (model, metrics and next offsets, one Redis write). This is the
   commit point: from here the learner resumes from this state, and not before.
3. **Commit the offsets to Kafka**, only now, so Kafka never claims more than is durable. Kafka's
   offsets are for lag tools alone; the learner never reads them back.
4. **Announce the new version** on pub/sub: serving replicas load it as their fallback copy. Last,
   so that an announcement always names a checkpoint that is complete.

A step that fails ends the checkpoint there; the learner keeps its state in memory, keeps
learning, and tries the whole checkpoint again. (Only a failed announcement leaves a stored
checkpoint behind: it is whole, and the retry stores and announces the next version.) Every
``snapshot_every_s`` a stored checkpoint is also uploaded to MLflow, in the background and one
upload at a time: the fallback when Redis loses the checkpoint.

The boundaries (dead-letter producer, offset committer, checkpoint and snapshot stores) are the
small Protocols below, so a unit test fakes them without a broker, Redis or MLflow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

from confluent_kafka import TopicPartition

from ray_apps.learning.metrics import LearnerMetrics
from rtml.checkpoint import Checkpoint, CheckpointRefused, verify
from rtml.settings import Settings

#: After a failed checkpoint, the next attempt waits this long (the store is likely restarting).
CHECKPOINT_RETRY_S = 1.0
#: How long a checkpoint waits for the broker to acknowledge the dead letters: long enough for a
#: broker that is restarting, short enough that a learner whose broker is gone says so.
DEAD_LETTER_FLUSH_S = 30.0


class DeadLetters(Protocol):
    """The dead-letter producer (``confluent_kafka.Producer``)."""

    def flush(self, timeout: float) -> int:
        """Wait for delivery; return how many messages are still not acknowledged."""
        ...


class OffsetCommitter(Protocol):
    """The learner's consumer (``confluent_kafka.Consumer``)."""

    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[True]) -> None: ...


class CheckpointStore(Protocol):
    """Where checkpoints are durable (``rtml.checkpoint.RedisCheckpoints``)."""

    def save(self, usecase: str, shard: int, checkpoint: Checkpoint) -> tuple[int, bytes]:
        """Store ``checkpoint`` (setting its ``saved_at``); its version and signed blob."""
        ...

    def announce(self, usecase: str, shard: int, version: int) -> None: ...

    def blob(self, usecase: str, shard: int) -> bytes | None: ...


class SnapshotStore(Protocol):
    """Where snapshots of checkpoints go (``rtml.checkpoint.MlflowSnapshots``)."""

    def save(
        self,
        usecase: str,
        shard: int,
        version: int,
        blob: bytes,
        metrics: dict[str, float],
        step: int,
    ) -> None: ...


class DeadLettersUnacknowledged(RuntimeError):
    """The broker has not acknowledged every dead letter: the checkpoint is withheld."""


class Checkpointer:
    """One learner's checkpoints: whether one is due, the ordered steps, and the snapshots.

    The learner calls :meth:`count` for every event its state moves past, asks :meth:`due` after
    each micro-batch, and calls :meth:`checkpoint` under its model lock (the model must not change
    while it is pickled). ``clock`` is monotonic seconds (a test passes its own).
    """

    def __init__(
        self,
        usecase: str,
        shard: int,
        topic: str,
        settings: Settings,
        store: CheckpointStore,
        snapshots: SnapshotStore,
        metrics: LearnerMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.usecase, self.shard, self.topic = usecase, shard, topic
        self.settings = settings
        self.store, self.snapshots, self.metrics = store, snapshots, metrics
        self.clock = clock
        #: the version of the state in memory: the latest stored, or the one restored
        self.version = 0
        #: events the state moved past since the latest checkpoint
        self.pending = 0
        self.last_at = self.last_attempt_at = self.last_snapshot_at = clock()
        #: version, bytes, seconds and saved_at of the latest checkpoint this learner stored
        self.last: dict[str, Any] = {}
        self.last_seconds = 0.0
        #: seconds spent checkpointing, in all
        self.seconds = 0.0
        #: the latest failed checkpoint's reason; cleared by the next one that succeeds
        self.error: str | None = None
        self.failures = 0
        self.last_snapshot: dict[str, Any] = {}
        self._uploading: threading.Thread | None = None

    def restored(self, version: int) -> None:
        """The learner restored ``version`` (0: it starts fresh); pacing starts from now."""
        self.version, self.pending = version, 0
        self.last_at = self.last_attempt_at = self.last_snapshot_at = self.clock()

    def count(self, events: int = 1) -> None:
        """The state moved past ``events`` more events (learned or dead-lettered)."""
        self.pending += events

    def due(self) -> bool:
        if not self.pending:
            return False
        now = self.clock()
        if self.error is not None:  # retry a failed one soon, but not in a tight loop
            return now - self.last_attempt_at >= CHECKPOINT_RETRY_S
        s = self.settings
        elapsed = now - self.last_at
        share = s.checkpoint_max_share
        gap = self.last_seconds * (1 - share) / share
        return elapsed >= gap and (
            self.pending >= s.checkpoint_every_events or elapsed >= s.checkpoint_every_s
        )

    def checkpoint(
        self, state: Checkpoint, dead_letters: DeadLetters, consumer: OffsetCommitter
    ) -> bool:
        """Checkpoint ``state`` now; ``False`` (with ``error`` set) when a step failed.

        Never raises: Redis or the broker away must not end the learner's loop.
        """
        self.last_attempt_at = self.clock()
        try:
            blob = self._commit(state, dead_letters, consumer)
        except Exception as exc:  # noqa: BLE001 - the stores come back; the loop must not end
            self.failures += 1
            self.error = f"{type(exc).__name__}: {exc}"
            self.metrics.checkpoint_failed()
            return False
        self.error = None
        if self.clock() - self.last_snapshot_at >= self.settings.snapshot_every_s:
            self._upload(state, blob, wait=False)
        return True

    def _commit(
        self, state: Checkpoint, dead_letters: DeadLetters, consumer: OffsetCommitter
    ) -> bytes:
        """The four steps of the module's docstring, in its order; the stored blob."""
        t0 = self.clock()
        if dead_letters.flush(DEAD_LETTER_FLUSH_S) != 0:
            raise DeadLettersUnacknowledged("dead letters not acknowledged: checkpoint withheld")
        version, blob = self.store.save(self.usecase, self.shard, state)
        consumer.commit(
            offsets=[TopicPartition(self.topic, p, o) for p, o in state.offsets.items()],
            asynchronous=True,
        )
        self.store.announce(self.usecase, self.shard, version)
        took = self.clock() - t0
        self.version, self.pending = version, 0
        self.seconds += took
        self.last_seconds = took
        saved_at = state.saved_at or time.time()  # set by the store
        self.last = {
            "version": version,
            "bytes": len(blob),
            "seconds": round(took, 4),
            "saved_at": saved_at,
        }
        self.metrics.checkpoint(took, len(blob), version, saved_at)
        self.last_at = self.clock()
        return blob

    # -- snapshots to MLflow ------------------------------------------------------------------
    def snapshot(self, state: Checkpoint) -> None:
        """At stop: upload the latest checkpoint, unless it is snapshotted already; waits.

        Only a checkpoint this learner stored, and only as it stored it: what Redis holds now may
        be another writer's, or altered, so its signature is verified first.
        """
        if self._uploading is not None:
            self._uploading.join()
        if self.last.get("version") != self.version or (
            self.last_snapshot.get("version") == self.version
        ):
            return
        blob = self.store.blob(self.usecase, self.shard)
        if blob is None:
            return
        try:
            verify(blob, self.settings.signing_key)
        except CheckpointRefused as exc:
            self.last_snapshot = {"error": f"not snapshotted: {exc}"}
            return
        self._upload(state, blob, wait=True)

    def _upload(self, state: Checkpoint, blob: bytes, wait: bool) -> None:
        """Upload ``blob`` in the background, one upload at a time (without ``wait``, a later
        checkpoint tries again while one is still uploading)."""
        if self._uploading is not None and self._uploading.is_alive():
            if not wait:
                return
            self._uploading.join()
        version, learned, report = self.version, state.learned, state.metrics.report()
        self.last_snapshot_at = self.clock()

        def upload() -> None:
            try:
                flat = {
                    f"{w}.{k}": v
                    for w in ("overall", "recent", "share_of_oracle", "share_of_ceiling")
                    for k, v in report.get(w, {}).items()
                }
                self.snapshots.save(self.usecase, self.shard, version, blob, flat, step=learned)
                self.last_snapshot = {"version": version, "bytes": len(blob), "at": time.time()}
                self.metrics.snapshot(time.time())
            except Exception as exc:  # noqa: BLE001 - Redis holds the state; say it in status
                self.last_snapshot = {"error": f"{type(exc).__name__}: {exc}"}

        self._uploading = threading.Thread(target=upload, name="snapshot", daemon=True)
        self._uploading.start()
        if wait:
            self._uploading.join()

    def status(self) -> dict[str, Any]:
        """The checkpoint fields of the learner's status; the age is the latest save's."""
        last = dict(self.last)
        if "saved_at" in last:
            last["age_s"] = time.time() - last["saved_at"]
        return {
            "checkpoint": last,
            "checkpoint_error": self.error,
            "checkpoint_failures": self.failures,
            "checkpoint_seconds": round(self.seconds, 4),
            "snapshot": dict(self.last_snapshot),
        }
