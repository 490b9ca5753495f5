"""Checkpoints that make a learner's model state exactly-once.

A checkpoint holds the model, its metrics, its entity memory, and **the next offset to read of
every partition the learner owns** — the offset of the first event the model has *not* learned.
Restoring a checkpoint and seeking each partition to its next offset replays exactly the events
after it: none lost, none learned twice. (The off-by-one to avoid: storing the last *learned*
offset and seeking to it would learn that event twice.)

The blob is pickled and signed with HMAC-SHA256 under a key from settings; a blob whose signature
does not verify is refused before anything is unpickled. Redis keeps the latest checkpoint per
learner with a version that only grows and the time it was saved (a checkpoint's age is the age of
that save, never of the learner); a pub/sub message announces each new version.
"""

from __future__ import annotations

import copyreg
import hashlib
import hmac
import io
import pickle
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import redis

from rtml.settings import Settings

if TYPE_CHECKING:
    from mlflow.entities import Run
    from river.proba.base import Distribution

SIGNATURE_BYTES = 32


class CheckpointRefused(RuntimeError):
    """A stored checkpoint failed verification and was not loaded."""


@dataclass
class Checkpoint:
    model: Any
    metrics: Any
    #: partition -> next offset to read (first event not yet learned)
    offsets: dict[int, int]
    learned: int
    versions: dict[str, str]
    dead_lettered: int = 0
    model_errors: int = 0
    #: when this learner's state began (Unix time): set at a fresh start, kept by every save
    created: float = field(default_factory=time.time)
    #: when this state was last stored (Unix time), set by the store; the age every reader reports
    saved_at: float | None = None
    #: (partition, offset) of every event learned, in order; only with the test-only trace option
    trace: list[tuple[int, int]] | None = None
    #: the entity memory (``rtml.entity.EntityState``) the features of the next event read: it
    #: rolls back with the offsets, or a replay would record its events twice. ``None`` in a
    #: checkpoint stored before entity features (a restore starts it empty) or without them.
    entities: Any = None
    #: partition -> next offset to read, of the partitions a shard reads but does not own: it
    #: records their events into the memories of entities that span partitions (a merchant), and
    #: learns nothing from them. Apart from ``offsets``, which Kafka's lag tools and the ledger
    #: read as the owned partitions'. ``None`` as ``entities``.
    foreign_offsets: dict[int, int] | None = None


def sign(payload: bytes, key: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest() + payload


def verify(blob: bytes, key: bytes) -> bytes:
    signature, payload = blob[:SIGNATURE_BYTES], blob[SIGNATURE_BYTES:]
    expected = hmac.new(key, payload, hashlib.sha256).digest()
    if len(blob) <= SIGNATURE_BYTES or not hmac.compare_digest(signature, expected):
        raise CheckpointRefused("checkpoint signature does not verify: refused, not unpickled")
    return payload


def dumps(checkpoint: Checkpoint, key: bytes) -> bytes:
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _dispatch_table()
    pickler.dump(checkpoint)
    return sign(buffer.getvalue(), key)


def _dispatch_table() -> dict[type, Any]:
    """Pickle River's probability distributions without their random generators.

    Every ``river.proba`` distribution carries its own ``random.Random`` (2.5 KB of Mersenne
    Twister state) for ``sample()``, and a Hoeffding tree keeps one per class and numeric feature
    in every leaf: after 6000 events they made 92 % of an ARFClassifier checkpoint (24 of 26 MB)
    and most of its pickling time. Trees and forests never sample from them, so a restored
    distribution gets a fresh generator from its seed instead: the model learns and predicts
    exactly as before (an unseeded one shares one generator).
    """
    from river.proba.base import Distribution

    table = copyreg.dispatch_table.copy()
    todo: list[type] = [Distribution]
    while todo:
        cls = todo.pop()
        table[cls] = _reduce_distribution
        todo.extend(cls.__subclasses__())
    return table


def _reduce_distribution(distribution: Any) -> tuple[Any, tuple[type, dict[str, Any]]]:
    state = {k: v for k, v in vars(distribution).items() if k != "_rng"}
    return _rebuild_distribution, (type(distribution), state)


def _rebuild_distribution(cls: type[Distribution], state: dict[str, Any]) -> Distribution:
    distribution = cls.__new__(cls)
    distribution.__dict__.update(state)
    seed = state.get("seed")
    distribution._rng = _UNSEEDED if seed is None else random.Random(seed)
    return distribution


#: what restored unseeded distributions sample from (seeding thousands of generators from the OS
#: would cost more than the rest of a restore)
_UNSEEDED = random.Random()


def loads(blob: bytes, key: bytes) -> Checkpoint:
    return pickle.loads(verify(blob, key))


class RedisCheckpoints:
    """The latest checkpoint of each learner in Redis, versioned, announced on pub/sub.

    The client does not decode responses: what it reads is the bytes stored (redis-py types a
    reply as ``bytes | str``, since ``decode_responses`` is known only at run time).
    """

    def __init__(self, client: redis.Redis, key: bytes) -> None:
        self.client = client
        self.key = key

    @classmethod
    def of(cls, settings: Settings) -> RedisCheckpoints:
        """The store of the settings' Redis, under the settings' checkpoint key."""
        return cls(redis.Redis.from_url(settings.redis), settings.signing_key)

    @staticmethod
    def _name(usecase: str, shard: int) -> str:
        return f"rtml:checkpoint:{usecase}:{shard}"

    @staticmethod
    def channel(usecase: str) -> str:
        return f"rtml:checkpoints:{usecase}"

    def save(self, usecase: str, shard: int, checkpoint: Checkpoint) -> tuple[int, bytes]:
        """Store atomically (blob, version and save time together); return the version and the
        signed blob. Sets ``checkpoint.saved_at``: the blob carries it, and it is stored beside
        the blob so that :meth:`info` reads it without unpickling.

        Not yet announced: :meth:`announce` does that, once the learner has done what must
        follow a durable checkpoint (``ray_apps.learning.checkpointer``).
        """
        checkpoint.saved_at = time.time()
        blob = dumps(checkpoint, self.key)
        name = self._name(usecase, shard)
        version = int(self.client.incr(f"{name}:version"))
        self.client.hset(
            name, mapping={"blob": blob, "version": version, "saved_at": checkpoint.saved_at}
        )
        return version, blob

    def announce(self, usecase: str, shard: int, version: int) -> None:
        """Tell every serving replica that a shard's new version is stored (pub/sub)."""
        self.client.publish(self.channel(usecase), f"{shard}:{version}")

    def restored_from_snapshot(self, usecase: str, shard: int, version: int) -> None:
        """After a fallback to a snapshot, versions keep growing from the snapshot's."""
        counter = f"{self._name(usecase, shard)}:version"
        if int(self.client.get(counter) or 0) < version:
            self.client.set(counter, version)

    def load(self, usecase: str, shard: int) -> tuple[int, Checkpoint] | None:
        stored = self.client.hgetall(self._name(usecase, shard))
        if not stored:
            return None
        return int(stored[b"version"]), loads(cast(bytes, stored[b"blob"]), self.key)

    def blob(self, usecase: str, shard: int) -> bytes | None:
        """The latest signed blob as stored (for a snapshot: no unpickle, no re-pickle)."""
        return cast("bytes | None", self.client.hget(self._name(usecase, shard), "blob"))

    def info(self, usecase: str, shard: int) -> dict[str, float] | None:
        """The latest checkpoint's version, when it was saved (Unix time) and its age (s)."""
        version, saved_at, created = self.client.hmget(
            self._name(usecase, shard), "version", "saved_at", "created"
        )
        # stored by an rtml that recorded no save time: its learner's start is all there is
        stamp = saved_at if saved_at is not None else created
        if version is None or stamp is None:
            return None
        when = float(stamp)
        return {"version": int(version), "saved_at": when, "age_s": time.time() - when}

    def delete(self, usecase: str, shard: int) -> None:
        """Delete, and announce it: every serving replica drops its copy (or it would answer
        with a model that was reset)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self._name(usecase, shard))
        pipe.publish(self.channel(usecase), f"{shard}:deleted")
        pipe.execute()


class MlflowSnapshots:
    """Snapshots of learners' checkpoints in MLflow: the fallback when Redis has lost them.

    One run per learner (tag ``rtml.learner = <usecase>-<shard>``) in the experiment
    :data:`EXPERIMENT` holds the learner's metrics over time and its latest signed checkpoint.
    Uploads alternate between two artifact slots, and the run's ``rtml.snapshot_slot`` tag moves
    to a slot only after its upload finished: a crash mid-upload leaves the previous snapshot
    intact, and disk use stays at two checkpoints per learner. The blob is the same signed blob
    as in Redis, verified before it is unpickled.
    """

    EXPERIMENT = "rtml-online-learners"
    SLOTS = ("a", "b")

    def __init__(self, tracking_uri: str, key: bytes) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri)
        self.key = key

    @classmethod
    def of(cls, settings: Settings) -> MlflowSnapshots:
        return cls(settings.mlflow_uri, settings.signing_key)

    def _experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(self.EXPERIMENT)
        if found is not None:
            return str(found.experiment_id)
        return str(self.client.create_experiment(self.EXPERIMENT))

    def _find_run(self, usecase: str, shard: int) -> Run | None:
        """The learner's active run, if it has one."""
        runs = self.client.search_runs(
            [self._experiment_id()],
            filter_string=(
                f"tags.`rtml.learner` = '{usecase}-{shard}' and tags.`rtml.active` = 'true'"
            ),
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return runs[0] if runs else None

    def _active_run(self, usecase: str, shard: int) -> Run:
        """The learner's active run, created by its first snapshot."""
        found = self._find_run(usecase, shard)
        if found is not None:
            return found
        return self.client.create_run(
            self._experiment_id(),
            run_name=f"learner-{usecase}-{shard}",
            tags={
                "rtml.learner": f"{usecase}-{shard}",
                "rtml.active": "true",
                "rtml.usecase": usecase,
            },
        )

    def save(
        self,
        usecase: str,
        shard: int,
        version: int,
        blob: bytes,
        metrics: dict[str, float],
        step: int,
    ) -> None:
        import tempfile
        from pathlib import Path

        run = self._active_run(usecase, shard)
        run_id = run.info.run_id
        current = run.data.tags.get("rtml.snapshot_slot") if run.data else None
        slot = self.SLOTS[1] if current == self.SLOTS[0] else self.SLOTS[0]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"checkpoint-{slot}.bin"
            path.write_bytes(blob)
            self.client.log_artifact(run_id, str(path), artifact_path="checkpoint")
        finite = {k: v for k, v in metrics.items() if v == v and abs(v) != float("inf")}
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, step) for k, v in finite.items()],
            tags=[
                RunTag("rtml.snapshot_slot", slot),
                RunTag("rtml.snapshot_version", str(version)),
                RunTag("rtml.snapshot_time", str(time.time())),
            ],
        )

    def load(self, usecase: str, shard: int) -> tuple[int, Checkpoint] | None:
        """The latest snapshot, verified; ``None`` when the learner has none."""
        import tempfile
        from pathlib import Path

        run = self._find_run(usecase, shard)
        if run is None or "rtml.snapshot_slot" not in run.data.tags:
            return None
        slot, version = (
            run.data.tags["rtml.snapshot_slot"],
            int(run.data.tags["rtml.snapshot_version"]),
        )
        with tempfile.TemporaryDirectory() as tmp:
            local = self.client.download_artifacts(
                run.info.run_id, f"checkpoint/checkpoint-{slot}.bin", tmp
            )
            return version, loads(Path(local).read_bytes(), self.key)

    def forget(self, usecase: str, shard: int) -> None:
        """A reset learner must not come back from an old snapshot; the run stays as history."""
        run = self._find_run(usecase, shard)
        if run is not None:
            self.client.set_tag(run.info.run_id, "rtml.active", "false")
            self.client.set_terminated(run.info.run_id)


def forget(settings: Settings, usecase: str, shard: int) -> None:
    """Delete a learner's Redis checkpoint and retire its MLflow snapshots, so that it starts
    over from the earliest event. Both go: with only the Redis copy gone, the learner would come
    back from its latest snapshot. The learner must not be running (it would checkpoint again)."""
    RedisCheckpoints.of(settings).delete(usecase, shard)
    MlflowSnapshots.of(settings).forget(usecase, shard)
