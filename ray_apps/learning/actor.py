"""``OnlineLearner``: a Ray actor that learns one use case from Kafka, test-then-train.

Resume contract. All of a learner's state — model, metrics, count learned, and for every
partition it owns the *next offset to read* — comes from its latest checkpoint (see
``rtml.checkpoint``). On start it restores that checkpoint and seeks each partition to its next
offset, so it resumes *after the last event the restored model learned*: a crash between
checkpoints replays exactly the events after the checkpoint, none lost, none learned twice.
Offsets are committed to Kafka only after the checkpoint is durable in Redis, and only so that
Kafka tools show consumer lag; the learner never reads them back.

An event that fails its schema, or makes the model raise, is dead-lettered to ``<topic>.dlq``
with the reason and its source offset, counted, and skipped; the learner never stops for it. The
dead-letter producer is flushed before every checkpoint, so a checkpointed offset never covers a
dead letter that was not written. When a checkpoint is due and its steps in order:
``ray_apps.learning.checkpointer``.

Entity features. The entity memory (``rtml.entity.EntityState``) is part of the checkpoint, so it
rolls back with the model and the offsets: an event is read for its features before it is learned
and recorded after, and a replay after a crash records nothing twice. A dead-lettered event is
never recorded. After every micro-batch the memories it touched are written to the online store
(``rtml.entity_store``) for the serving side; that write is not part of the checkpoint (a replay
writes the same records again) and a failed one is counted and retried with the next batch, never
allowed to stop learning.

Shards and entities that span partitions. A spec's key keeps each entity on one partition, so a
shard's own partitions hold all of its key entities' events; an entity named by another field
(tfd's merchant) has events on every partition. So, when there are several shards and such
fields, a shard also reads the partitions it does not own, from offsets of their own in the
checkpoint (``foreign_offsets``), and records their valid events into those fields' memories
only: it learns, scores, traces and dead-letters only its own partitions' events.
"""

from __future__ import annotations

import json
import pickle
import threading
import time
import traceback
from collections import deque
from typing import Any

import ray
import redis
import river
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

import rtml
from ray_apps.learning.checkpointer import Checkpointer
from ray_apps.learning.metrics import LearnerMetrics
from rtml.checkpoint import Checkpoint, CheckpointRefused, MlflowSnapshots, RedisCheckpoints
from rtml.entity_store import EntityStore
from rtml.kafka import consumer_config, producer_config
from rtml.online import build_model, predict_many, predict_then_learn, prequential
from rtml.settings import Settings, load_settings
from rtml.usecases import USECASES, InvalidEvent, get
from rtml.usecases.base import TRUTH_HEADER

NAMESPACE = "rtml"
#: Idle entities are forgotten every this many events learned: counted in the checkpoint, so a
#: restored learner forgets at the same events as one that never stopped.
FORGET_EVERY = 10_000
#: The entity memory's size per entity is measured (pickled) at a checkpoint at most this often.
ENTITY_SIZE_EVERY_S = 60.0


def actor_name(usecase: str, shard: int) -> str:
    return f"learner-{usecase}-{shard}"


def owned_partitions(partitions: int, shard: int, shards: int) -> list[int]:
    """Explicit assignment: shard i owns the partitions p with p % shards == i."""
    return [p for p in range(partitions) if p % shards == shard]


class OnlineLearner:
    """One use case, one shard: a consume → predict → score → learn loop in a background thread.

    The constructor returns at once; the thread restores the state (from Redis, else from the
    latest MLflow snapshot, else fresh) and then learns. Until it has restored, ``status`` says
    so and ``predict`` refuses (the serving side then answers from its own copy).
    """

    def __init__(
        self,
        usecase: str,
        shard: int = 0,
        shards: int = 1,
        model_overrides: dict[str, Any] | None = None,
        trace: bool = False,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.settings: Settings = load_settings(**(settings or {}))
        USECASES.include(self.settings.usecase_specs)  # a user's own, named by the driver
        self.spec = get(usecase)
        self.shard, self.shards = shard, shards
        # the spec's defaults < settings (RTML_LEARNER_PARAMS) < this learner's own (CLI, tests)
        self.overrides = {
            **self.settings.learner_params.get(usecase, {}),
            **(model_overrides or {}),
        }
        self.trace_enabled = trace
        key = self.settings.signing_key
        self.store = RedisCheckpoints(redis.Redis.from_url(self.settings.redis), key)
        self.snapshots = MlflowSnapshots(self.settings.mlflow_uri, key)
        self.metrics = LearnerMetrics(usecase, shard)
        self.checkpointer = Checkpointer(
            usecase, shard, self.spec.topic, self.settings, self.store, self.snapshots, self.metrics
        )
        ent = self.spec.entities
        #: every entity field, and those that are not the key (their entities span partitions)
        self.entity_fields = list(ent.groups(self.spec.key)) if ent is not None else []
        self.foreign_fields = [f for f in self.entity_fields if f != self.spec.key]
        self.entity_store = (
            EntityStore(
                redis.Redis.from_url(
                    self.settings.redis, socket_timeout=5, socket_connect_timeout=5
                ),
                self.spec,
            )
            if ent is not None
            else None
        )
        #: (field, value) recorded since the last successful write to the entity store
        self.touched: set[tuple[str, str]] = set()
        self.entity_writes = 0
        self.entity_write_failures = 0
        self.entity_write_error: str | None = None
        #: the entity memory's size as of the latest gauge refresh (for status, without the lock)
        self.entity_report: dict[str, Any] | None = None
        self.entity_bytes: float | None = None
        self.entity_sized_at = -ENTITY_SIZE_EVERY_S
        #: why the restored entity memory was not resumed, when it was not
        self.entities_note: str | None = None
        self.state: Checkpoint | None = None
        self.restored_from = "nothing yet"
        self.partitions: list[int] = []
        #: partitions read only for the memories of entities that span partitions
        self.foreign: list[int] = []
        self._owned: set[int] = set()
        self.lag: dict[int, int] = {}
        #: the metrics as of the latest gauge refresh (once a second): a status call or a scrape
        #: must not hold the model's lock for a report (an exact ROC AUC over its window is ms)
        self.report: dict[str, Any] | None = None
        self.rate: deque[tuple[float, int]] = deque(maxlen=11)  # (time, learned) once a second
        #: time spent learning and checkpointing (not waiting for events): the base of the share
        self.busy_seconds = 0.0
        self.first_event_at: float | None = None
        self.last_event_at: float | None = None
        self.started = time.monotonic()
        self.error: str | None = None
        #: why the learner is waiting for a store, while it is (shown in status)
        self.waiting_for: str | None = None
        #: a stored checkpoint that failed verification at restore (and was not loaded)
        self.refused: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="learn", daemon=True)
        self._thread.start()

    # -- state --------------------------------------------------------------------------------
    def _fresh(self) -> Checkpoint:
        return Checkpoint(
            model=build_model(self.spec, self.overrides),
            metrics=prequential(self.spec, self.settings.metrics_window),
            offsets={},
            learned=0,
            versions={"rtml": rtml.__version__, "river": river.__version__, "spec": self.spec.name},
            trace=[] if self.trace_enabled else None,
            entities=self.spec.entity_state(),
            foreign_offsets={},
        )

    def _restore(self) -> Checkpoint | None:
        """Load the latest state; ``None`` (with ``error`` set) when what is stored is refused."""
        name, shard = self.spec.name, self.shard
        refused = None
        try:
            restored = self._with_retries(lambda: self.store.load(name, shard), forever=True)
            self.restored_from = "redis"
        except CheckpointRefused as exc:
            restored, refused = None, f"Redis: {exc}"
        if restored is None:
            try:
                restored = self._with_retries(lambda: self.snapshots.load(name, shard))
                self.restored_from = "mlflow snapshot"
            except CheckpointRefused as exc:
                refused = f"{refused}; MLflow: {exc}" if refused else f"MLflow: {exc}"
            if restored is not None:
                self.store.restored_from_snapshot(name, shard, restored[0])
        self.refused = refused
        if restored is None and refused:
            self.error = (
                f"stored checkpoint refused ({refused}); not loading it. "
                f"`rtml learn reset {name}` starts over from the earliest event"
            )
            return None
        if restored is None:
            version, state, self.restored_from = 0, self._fresh(), "fresh"
        else:
            version, state = restored
            ent = self.spec.entities
            if state.entities is None or ent is None:  # stored before entity features
                state.entities = self.spec.entity_state()
            elif not state.entities.bind(ent):
                self.entities_note = "the stored entity memory had other inputs: it starts empty"
            if state.foreign_offsets is None:
                state.foreign_offsets = {}
        self.state = state
        self.checkpointer.restored(version)
        return state

    def _with_retries(self, call: Any, attempts: int = 30, forever: bool = False) -> Any:
        """A store may still be starting (``rtml up`` starts everything at once) or restarting.

        Redis holds the state to resume from, so without it the learner waits (``forever``) and
        says so in ``status``, rather than start over; MLflow is asked ``attempts`` times.
        """
        attempt = 0
        while True:
            try:
                result = call()
                self.waiting_for = None
                return result
            except CheckpointRefused:
                raise
            except Exception as exc:
                attempt += 1
                if (not forever and attempt >= attempts) or self._stop.is_set():
                    raise
                self.waiting_for = f"{type(exc).__name__}: {exc}"
                time.sleep(min(0.5 * attempt, 2.0))

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            state = self._restore()
            if state is not None:
                self._loop(state)
        except Exception:  # noqa: BLE001 - the loop's own failure (not an event's): in status
            self.error = traceback.format_exc()

    def _loop(self, state: Checkpoint) -> None:
        """Learn into ``state`` (the restored ``self.state``) until stopped. The loop's helpers
        take it as an argument, typed as set: it exists before they run and is never replaced."""
        s = self.settings
        consumer = Consumer(consumer_config(s, f"rtml-learner-{self.spec.name}"))
        self.dlq = Producer(producer_config(s))
        partitions = self._with_retries(lambda: self._partition_count(consumer), forever=True)
        self.partitions = owned_partitions(partitions, self.shard, self.shards)
        if self.foreign_fields:
            self.foreign = [p for p in range(partitions) if p not in self.partitions]
        foreign = state.foreign_offsets or {}
        consumer.assign(
            [
                TopicPartition(self.spec.topic, p, state.offsets.get(p, OFFSET_BEGINNING))
                for p in self.partitions
            ]
            + [
                TopicPartition(self.spec.topic, p, foreign.get(p, OFFSET_BEGINNING))
                for p in self.foreign
            ]
        )
        self._owned = set(self.partitions)
        self.consumer = consumer
        gauges_at = 0.0
        while not self._stop.is_set():
            batch = consumer.consume(num_messages=s.learner_batch, timeout=0.5)
            t0 = time.perf_counter()
            before = (state.learned, state.dead_lettered, state.model_errors)
            for msg in batch:
                if msg.error() is None:
                    # Locked per event, not per batch: a serving `predict` waits for one learn
                    # (~ms), never a whole micro-batch.
                    with self._lock:
                        self._process(state, msg)
            if batch:
                now = time.time()
                self.first_event_at = self.first_event_at or now
                self.last_event_at = now
                learned, dead, errors = (
                    a - b
                    for a, b in zip(
                        (state.learned, state.dead_lettered, state.model_errors),
                        before,
                        strict=True,
                    )
                )
                self.metrics.batch(
                    learned, dead - errors, errors, time.perf_counter() - t0, len(batch)
                )
                self._write_entities(state)
            if self.checkpointer.due():
                with self._lock:
                    stored = self.checkpointer.checkpoint(state, self.dlq, consumer)
                if stored:
                    self._size_entities(state)
            self.busy_seconds += time.perf_counter() - t0  # after the wait in consume()
            if time.monotonic() - gauges_at >= 1.0:
                gauges_at = time.monotonic()
                self._refresh_gauges(state)
        with self._lock:
            if self.checkpointer.pending:
                self.checkpointer.checkpoint(state, self.dlq, consumer)
            self.checkpointer.snapshot(state)
        self._refresh_gauges(state)  # the final status reports on every event learned
        consumer.close()

    def _partition_count(self, consumer: Consumer) -> int:
        """The topic's partitions; raises while the broker is away or the topic is not there."""
        topic = consumer.list_topics(self.spec.topic, timeout=10).topics.get(self.spec.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise LookupError(f"topic {self.spec.topic} not found (yet): `rtml topics` creates it")
        return len(topic.partitions)

    def _process(self, state: Checkpoint, msg: Any) -> None:
        partition, offset = msg.partition(), msg.offset()
        if partition not in self._owned:
            self._record_foreign(state, msg)
            return
        try:
            event = self.spec.parse(msg.value() or b"")
        except InvalidEvent as exc:
            self._dead_letter(state, msg, f"invalid event: {exc.reason}")
        else:
            try:
                self._learn(state, event, msg)
            except Exception as exc:  # noqa: BLE001 - one bad event never stops the learner
                state.model_errors += 1
                self._dead_letter(state, msg, f"model error: {type(exc).__name__}: {exc}")
            else:
                state.learned += 1
                if state.trace is not None:
                    state.trace.append((partition, offset))
                self._remember(state, event.model_dump(), self.entity_fields)
                if state.entities is not None and state.learned % FORGET_EVERY == 0:
                    state.entities.forget()
        state.offsets[partition] = offset + 1  # next to read
        self.checkpointer.count()

    def _record_foreign(self, state: Checkpoint, msg: Any) -> None:
        """An event of a partition another shard owns: into the memories of the entities that
        span partitions, and nothing else (its owner learns it, or dead-letters it)."""
        try:
            event = self.spec.parse(msg.value() or b"")
        except InvalidEvent:
            pass
        else:
            self._remember(state, event.model_dump(), self.foreign_fields)
        assert state.foreign_offsets is not None  # set at restore
        state.foreign_offsets[msg.partition()] = msg.offset() + 1
        self.checkpointer.count()

    def _remember(self, state: Checkpoint, record: dict[str, Any], fields: list[str]) -> None:
        if state.entities is None:
            return
        state.entities.record(record, fields)
        for name in fields:
            value = record.get(name)
            if value is not None:
                self.touched.add((name, str(value)))

    def _write_entities(self, state: Checkpoint) -> None:
        """The memories the batch touched, to the online store; a failure keeps them for the
        next batch. Outside the lock: only this thread changes the memory."""
        if self.entity_store is None or not self.touched or state.entities is None:
            return
        try:
            self.entity_store.write(state.entities, self.touched)
        except Exception as exc:  # noqa: BLE001 - serving reads stale features; learning goes on
            self.entity_write_failures += 1
            self.entity_write_error = f"{type(exc).__name__}: {exc}"
            self.metrics.entity_write_failed()
            return
        self.entity_writes += 1
        self.entity_write_error = None
        self.touched = set()

    def _size_entities(self, state: Checkpoint) -> None:
        """Bytes per entity of the memory as pickled (what it adds to a checkpoint), now and
        then: pickling it alone costs a share of a checkpoint."""
        if state.entities is None or time.monotonic() - self.entity_sized_at < ENTITY_SIZE_EVERY_S:
            return
        self.entity_sized_at = time.monotonic()
        held = sum(map(len, state.entities.memory.values()))
        if held:
            size = len(pickle.dumps(state.entities, protocol=pickle.HIGHEST_PROTOCOL))
            self.entity_bytes = size / held

    def _learn(self, state: Checkpoint, event: Any, msg: Any) -> None:
        spec = self.spec
        y = spec.label_of(event) if spec.target else None
        x = spec.features_of(event, state.entities)
        headers = dict(msg.headers() or [])
        # the truth is read before learning: a bad header must not leave a half-learned event
        truth = headers.get(TRUTH_HEADER)
        oracle, ceiling = spec.oracle_of(truth), spec.ceiling_of(truth)
        pred = predict_then_learn(spec, state.model, x, y)
        if spec.oracle is not None and oracle is None:
            return  # scored beside the oracle only: an event without truth (feedback) is learned
        state.metrics.observe(state.model, x, y, pred, oracle, ceiling)

    def _dead_letter(self, state: Checkpoint, msg: Any, reason: str) -> None:
        state.dead_lettered += 1
        headers: list[tuple[str, str | bytes | None]] = [
            ("rtml-reason", reason.encode()),
            ("rtml-source", f"{msg.topic()}/{msg.partition()}/{msg.offset()}".encode()),
        ]
        self.dlq.produce(self.spec.dlq_topic, msg.value(), msg.key(), headers=headers)
        self.dlq.poll(0)

    def _refresh_gauges(self, state: Checkpoint) -> None:
        lag = {}
        for p in self.partitions:
            low, high = self.consumer.get_watermark_offsets(
                TopicPartition(self.spec.topic, p), cached=True
            )
            if high >= 0:
                lag[p] = max(high - state.offsets.get(p, max(low, 0)), 0)
        self.lag = lag
        self.rate.append((time.monotonic(), state.learned))
        with self._lock:
            self.report = report = state.metrics.report()
        self.metrics.gauges(lag, report)
        if state.entities is not None:  # this thread alone changes the memory: no lock
            self.entity_report = {
                "held": state.entities.size(),
                "too_late": state.entities.too_late,
                "watermark_us": state.entities.watermark,
                "bytes_per_entity": self.entity_bytes,
            }
            self.metrics.entities(self.entity_report)

    # -- control ------------------------------------------------------------------------------
    def events_per_s(self) -> float:
        if len(self.rate) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self.rate[0], self.rate[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def status(self) -> dict[str, Any]:
        base = {
            "usecase": self.spec.name,
            "shard": self.shard,
            "running": self._thread.is_alive(),
            "error": self.error,
            "waiting_for": self.waiting_for,
            "refused": self.refused,
        }
        if self.state is None:
            return {**base, "restoring": self.error is None, "learned": 0, "dead_lettered": 0}
        try:
            info = self.store.info(self.spec.name, self.shard)
        except redis.RedisError:
            info = None  # Redis away: status still answers, from memory
        with self._lock:
            state = self.state
            report = self.report if self.report is not None else state.metrics.report()
            checkpoints = self.checkpointer.status()
            return {
                **base,
                "restored_from": self.restored_from,
                "learned": state.learned,
                "dead_lettered": state.dead_lettered,
                "model_errors": state.model_errors,
                "events_per_s": round(self.events_per_s(), 2),
                "offsets": dict(state.offsets),
                "foreign_offsets": dict(state.foreign_offsets or {}),
                "lag": dict(self.lag),
                "entities": self._entity_status(),
                **checkpoints,
                "checkpoint": {**checkpoints["checkpoint"], **(info or {})},
                "checkpoint_share": self.checkpointer.seconds / max(self.busy_seconds, 1e-9),
                "first_event_at": self.first_event_at,
                "last_event_at": self.last_event_at,
                "metrics": report,  # as of the latest refresh: its "events" says how many
            }

    def _entity_status(self) -> dict[str, Any] | None:
        if self.entity_store is None:
            return None
        return {
            **(self.entity_report or {}),
            "note": self.entities_note,
            "foreign_fields": self.foreign_fields,
            "foreign_partitions": self.foreign,
            "store_writes": self.entity_writes,
            "store_failures": self.entity_write_failures,
            "store_error": self.entity_write_error,
        }

    def predict(self, xs: list[dict[str, Any]]) -> dict[str, Any]:
        """Answer feature dicts with what the model knows now (between two events)."""
        if self.state is None:
            raise RuntimeError(f"learner {self.spec.name}[{self.shard}] is restoring its state")
        with self._lock:
            predictions = predict_many(self.spec, self.state.model, xs)
            return {
                "predictions": predictions,
                "checkpoint_version": self.checkpointer.version,
                "learned": self.state.learned,
                "shard": self.shard,
            }

    def pid(self) -> int:
        """The worker process's id (the kill tests SIGKILL it)."""
        import os

        return os.getpid()

    def trace(self) -> list[tuple[int, int]] | None:
        with self._lock:
            return list(self.state.trace) if self.state and self.state.trace is not None else None

    def stop(self) -> dict[str, Any]:
        """Stop the loop after a final checkpoint (and its snapshot)."""
        self._stop.set()
        self._thread.join(timeout=180)
        return self.status()


# Ray's typing of ``ray.remote(**options)`` lists task options only, not ``max_concurrency``.
RemoteLearner = ray.remote(  # type: ignore[call-overload]
    max_restarts=-1, max_task_retries=0, max_concurrency=4, num_cpus=1
)(OnlineLearner)


def connect(settings: Settings) -> None:
    """Join the stack's Ray cluster as a driver (idempotent)."""
    from ray._private import ray_constants

    from rtml.net import port_open

    if ray.is_initialized():
        return
    if settings.ray_address is None and ray_constants.ENABLE_RAY_CLUSTER:
        raise RuntimeError(
            "Ray was imported before rtml configured it for the loopback-only local stack; "
            "call rtml.ray_env.apply_ray_env(settings) before importing ray"
        )
    host, _, port = settings.ray.rpartition(":")
    # a Ray Client address (ray://host:port, e.g. a cluster's head service) is not probed
    probe = not settings.ray.startswith("ray://") and port.isdigit()
    if probe and not port_open(host, int(port), timeout=2.0):
        raise ConnectionError(f"no Ray cluster at {settings.ray}: start it with `rtml up -p ray`")
    ray.init(address=settings.ray, namespace=NAMESPACE, log_to_driver=False)


def service_addresses(settings: Settings) -> dict[str, Any]:
    """The driver's view of where services are, handed to actors so that they never depend on
    the environment the Ray head happened to start with."""
    return {
        "usecase_specs": settings.usecase_specs,
        "kafka_bootstrap": settings.kafka_servers,
        "redis_url": settings.redis,
        "mlflow_tracking_uri": settings.mlflow_uri,
        "checkpoint_key": settings.checkpoint_key.get_secret_value(),
        "checkpoint_every_events": settings.checkpoint_every_events,
        "metrics_window": settings.metrics_window,
        "checkpoint_every_s": settings.checkpoint_every_s,
        "checkpoint_max_share": settings.checkpoint_max_share,
        "snapshot_every_s": settings.snapshot_every_s,
        "learner_params": settings.learner_params,
        "learner_batch": settings.learner_batch,
        "kafka_session_timeout_ms": settings.kafka_session_timeout_ms,
    }


def start(
    usecase: str, shard: int = 0, shards: int = 1, node_id: str | None = None, **kwargs: Any
) -> Any:
    """Start (or find) the detached, named learner actor of a use case shard.

    ``node_id`` prefers a Ray node (soft affinity): when that node dies, Ray restarts the learner
    on another one.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    resource = load_settings().learner_resource  # e.g. the learner worker group's on KubeRay
    strategy = NodeAffinitySchedulingStrategy(node_id, soft=True) if node_id else None
    return RemoteLearner.options(
        name=actor_name(usecase, shard),
        namespace=NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
        resources={resource: 1} if resource else None,
        scheduling_strategy=strategy,
    ).remote(usecase, shard, shards, **kwargs)


def find(usecase: str, shard: int = 0) -> Any | None:
    try:
        return ray.get_actor(actor_name(usecase, shard), namespace=NAMESPACE)
    except ValueError:
        return None


def stop(usecase: str, shard: int = 0, timeout: float = 180) -> dict[str, Any] | None:
    """Stop a learner after its final checkpoint and snapshot, and remove its actor (so that a
    later ``start`` builds it anew from its checkpoint). ``None`` when none runs."""
    handle = find(usecase, shard)
    if handle is None:
        return None
    status = ray.get(handle.stop.remote(), timeout=timeout)
    ray.kill(handle, no_restart=True)
    return status


def json_status(handle: Any) -> str:
    return json.dumps(ray.get(handle.status.remote()), default=str)
