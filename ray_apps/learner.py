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
dead letter that was not written.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from typing import Any

import ray
import redis
import river
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

import rtml
from rtml.checkpoint import Checkpoint, RedisCheckpoints
from rtml.kafka import consumer_config, producer_config
from rtml.online import Prequential, build_model, predict_then_learn
from rtml.settings import Settings, load_settings
from rtml.usecases import InvalidEvent, get
from rtml.usecases.base import TRUTH_HEADER

NAMESPACE = "rtml"


def actor_name(usecase: str, shard: int) -> str:
    return f"learner-{usecase}-{shard}"


def owned_partitions(partitions: int, shard: int, shards: int) -> list[int]:
    """Explicit assignment: shard i owns the partitions p with p % shards == i."""
    return [p for p in range(partitions) if p % shards == shard]


class OnlineLearner:
    """One use case, one shard: a consume → predict → score → learn loop in a background thread."""

    def __init__(
        self, usecase: str, shard: int = 0, shards: int = 1,
        model_overrides: dict[str, Any] | None = None, trace: bool = False,
        settings: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        self.settings: Settings = load_settings(**(settings or {}))
        self.spec = get(usecase)
        self.shard, self.shards = shard, shards
        self.overrides = model_overrides or {}
        self.trace_enabled = trace
        self.store = RedisCheckpoints(
            redis.Redis.from_url(self.settings.redis),
            self.settings.checkpoint_key.get_secret_value().encode(),
        )
        self.last_checkpoint: dict[str, Any] = {}
        self.checkpoint_seconds = 0.0
        self.started = time.monotonic()
        self.error: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._restore()
        self._thread = threading.Thread(target=self._run, name="learn", daemon=True)
        self._thread.start()

    # -- state --------------------------------------------------------------------------------
    def _fresh(self) -> Checkpoint:
        return Checkpoint(
            model=build_model(self.spec, self.overrides),
            metrics=Prequential(self.spec),
            offsets={},
            learned=0,
            versions={"rtml": rtml.__version__, "river": river.__version__, "spec": self.spec.name},
            trace=[] if self.trace_enabled else None,
        )

    def _restore(self) -> None:
        restored = self.store.load(self.spec.name, self.shard)
        if restored is None:
            self.state, self.version = self._fresh(), 0
        else:
            self.version, self.state = restored
        self.since_checkpoint = 0
        self.last_checkpoint_at = time.monotonic()

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except Exception:  # the loop's own failure (not an event's): visible in status
            self.error = traceback.format_exc()

    def _loop(self) -> None:
        s = self.settings
        consumer = Consumer(consumer_config(s, f"rtml-learner-{self.spec.name}"))
        self.dlq = Producer(producer_config(s))
        meta = consumer.list_topics(self.spec.topic, timeout=30).topics[self.spec.topic]
        self.partitions = owned_partitions(len(meta.partitions), self.shard, self.shards)
        consumer.assign([
            TopicPartition(self.spec.topic, p, self.state.offsets.get(p, OFFSET_BEGINNING))
            for p in self.partitions
        ])  # fmt: skip
        self.consumer = consumer
        while not self._stop.is_set():
            batch = consumer.consume(num_messages=s.learner_batch, timeout=0.5)
            with self._lock:
                for msg in batch:
                    if msg.error() is None:
                        self._process(msg)
                due = self.since_checkpoint >= s.checkpoint_every_events or (
                    self.since_checkpoint and time.monotonic() - self.last_checkpoint_at >= s.checkpoint_every_s
                )  # fmt: skip
                if due:
                    self._checkpoint()
        with self._lock:
            if self.since_checkpoint:
                self._checkpoint()
        consumer.close()

    def _process(self, msg: Any) -> None:
        partition, offset = msg.partition(), msg.offset()
        state = self.state
        try:
            event = self.spec.parse(msg.value() or b"")
        except InvalidEvent as exc:
            self._dead_letter(msg, f"invalid event: {exc.reason}")
        else:
            try:
                self._learn(event, msg)
                state.learned += 1
                if state.trace is not None:
                    state.trace.append((partition, offset))
            except Exception as exc:  # noqa: BLE001 - one bad event never stops the learner
                state.model_errors += 1
                self._dead_letter(msg, f"model error: {type(exc).__name__}: {exc}")
        state.offsets[partition] = offset + 1  # next to read
        self.since_checkpoint += 1

    def _learn(self, event: Any, msg: Any) -> None:
        spec, state = self.spec, self.state
        y = spec.label_of(event) if spec.target else None
        x = spec.features_of(event)
        headers = dict(msg.headers() or [])
        # the truth is read before learning: a bad header must not leave a half-learned event
        truth = spec.parse_truth(headers[TRUTH_HEADER]) if TRUTH_HEADER in headers else None
        pred = predict_then_learn(spec, state.model, x, y)
        if truth is not None:
            oracle = spec.oracle(truth)
            # clustering is scored against the true segment, which the oracle predicts
            state.metrics.update(oracle if spec.task == "clustering" else y, pred, oracle)

    def _dead_letter(self, msg: Any, reason: str) -> None:
        self.state.dead_lettered += 1
        headers = [
            ("rtml-reason", reason.encode()),
            ("rtml-source", f"{msg.topic()}/{msg.partition()}/{msg.offset()}".encode()),
        ]
        self.dlq.produce(self.spec.dlq_topic, msg.value(), msg.key(), headers=headers)
        self.dlq.poll(0)

    def _checkpoint(self) -> None:
        t0 = time.perf_counter()
        if self.dlq.flush(30) != 0:
            raise RuntimeError("dead letters not acknowledged: checkpoint withheld")
        version, size = self.store.save(self.spec.name, self.shard, self.state)
        # Durable: now Kafka may know the offsets too (for lag; never read back).
        self.consumer.commit(
            offsets=[TopicPartition(self.spec.topic, p, o) for p, o in self.state.offsets.items()],
            asynchronous=True,
        )
        self.version = version
        took = time.perf_counter() - t0
        self.checkpoint_seconds += took
        self.last_checkpoint = {"version": version, "bytes": size, "seconds": round(took, 4)}
        self.since_checkpoint = 0
        self.last_checkpoint_at = time.monotonic()

    # -- control ------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._lock:
            state = self.state
            info = self.store.info(self.spec.name, self.shard)
            return {
                "usecase": self.spec.name,
                "shard": self.shard,
                "running": self._thread.is_alive(),
                "error": self.error,
                "learned": state.learned,
                "dead_lettered": state.dead_lettered,
                "model_errors": state.model_errors,
                "offsets": dict(state.offsets),
                "checkpoint": {**self.last_checkpoint, **(info or {})},
                "checkpoint_share": self.checkpoint_seconds / max(time.monotonic() - self.started, 1e-9),
                "metrics": state.metrics.report(),
            }

    def trace(self) -> list[tuple[int, int]] | None:
        with self._lock:
            return list(self.state.trace) if self.state.trace is not None else None

    def stop(self) -> dict[str, Any]:
        """Stop the loop after a final checkpoint."""
        self._stop.set()
        self._thread.join(timeout=120)
        return self.status()


RemoteLearner = ray.remote(max_restarts=-1, max_task_retries=0, max_concurrency=4, num_cpus=1)(
    OnlineLearner
)


def connect(settings: Settings) -> None:
    """Join the stack's Ray cluster as a driver (idempotent)."""
    from ray._private import ray_constants

    from rtml.stack.process import port_open

    if ray.is_initialized():
        return
    if settings.ray_address is None and ray_constants.ENABLE_RAY_CLUSTER:
        raise RuntimeError(
            "Ray was imported before rtml configured it for the loopback-only local stack; "
            "import ray_apps (or set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0) before importing ray"
        )
    host, _, port = settings.ray.rpartition(":")
    if port.isdigit() and not port_open(host, int(port), timeout=2.0):
        raise ConnectionError(f"no Ray cluster at {settings.ray}: start it with `rtml up -p ray`")
    ray.init(address=settings.ray, namespace=NAMESPACE, log_to_driver=False)


def service_addresses(settings: Settings) -> dict[str, Any]:
    """The driver's view of where services are, handed to actors so that they never depend on
    the environment the Ray head happened to start with."""
    return {
        "kafka_bootstrap": settings.kafka_servers,
        "redis_url": settings.redis,
        "mlflow_tracking_uri": settings.mlflow_uri,
        "checkpoint_key": settings.checkpoint_key.get_secret_value(),
        "checkpoint_every_events": settings.checkpoint_every_events,
        "checkpoint_every_s": settings.checkpoint_every_s,
        "learner_batch": settings.learner_batch,
        "kafka_session_timeout_ms": settings.kafka_session_timeout_ms,
    }


def start(usecase: str, shard: int = 0, shards: int = 1, **kwargs: Any) -> Any:
    """Start (or find) the detached, named learner actor of a use case shard."""
    return RemoteLearner.options(
        name=actor_name(usecase, shard), namespace=NAMESPACE, lifetime="detached",
        get_if_exists=True,
    ).remote(usecase, shard, shards, **kwargs)  # fmt: skip


def find(usecase: str, shard: int = 0) -> Any | None:
    try:
        return ray.get_actor(actor_name(usecase, shard), namespace=NAMESPACE)
    except ValueError:
        return None


def json_status(handle: Any) -> str:
    return json.dumps(ray.get(handle.status.remote()), default=str)
