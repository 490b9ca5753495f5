"""Everything one API replica holds: per use case its incremental and batch sides, the prediction
cache, the feedback producer, the background threads that keep models fresh, and the dynamic
batching of concurrent predict requests.

Dynamic batching (``@serve.batch``) with no wait: a request never waits for others to arrive,
but while one learner call or one CatBoost call is in flight the requests that arrive meanwhile
queue up and go together in the next call. A request that finds nothing of its kind in flight
skips the queue altogether. So a lone client pays nothing, and many concurrent single-event
clients share one actor call (or one model call) per batch.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import ray
import redis
import redis.asyncio as aioredis
from confluent_kafka import KafkaError, Message, Producer
from ray import serve

from ray_apps.learning import actor as learner
from ray_apps.serving.batch import INLINE_ROWS, Batch
from ray_apps.serving.cache import PredictionCache
from ray_apps.serving.entities import EntityReader
from ray_apps.serving.incremental import Incremental, watch_checkpoints
from ray_apps.serving.metrics import serve_metrics
from ray_apps.serving.schemas import Feedback, Health, Placed
from rtml.checkpoint import RedisCheckpoints, forget
from rtml.kafka import broker_ready, producer_config
from rtml.settings import Settings
from rtml.usecases import USECASES, get
from rtml.usecases.base import EventModel

T = TypeVar("T")

#: How often the served-version gauges are set again (Ray drops a gauge not set for a while).
GAUGE_REFRESH_S = 5.0
#: Requests merged into one model call at most. A lone request is never held back (no wait).
MAX_BATCH = 32


class LearnerRunning(Exception):
    """A learner must be stopped first (reset): 409."""


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = serve_metrics()
        self.redis = redis.Redis.from_url(settings.redis, socket_timeout=5)
        self.aioredis = aioredis.Redis.from_url(settings.redis, socket_timeout=5)
        self.store = RedisCheckpoints(self.redis, settings.signing_key)
        self.cache = PredictionCache(self.aioredis, settings.serve_cache_ttl_s)
        self.incremental = {n: Incremental(s, settings, self.store) for n, s in USECASES.items()}
        self.batch = {n: Batch(s, settings, self.cache, self.metrics) for n, s in USECASES.items()}
        self.entities = {n: EntityReader(self.aioredis, s) for n, s in USECASES.items()}
        self._producer: Producer | None = None
        self._samples: dict[str, Any] = {}
        self._sample_lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._in_flight = {"incremental": 0, "batch": 0}
        self.stop = threading.Event()
        threads: list[tuple[str, Callable[..., object], tuple[Any, ...]]] = [
            (
                "checkpoint-announcements",
                watch_checkpoints,
                (self.redis, self.incremental, self.stop),
            ),
            ("gauges", self._export_versions_forever, (self.stop,)),
        ]
        for name in USECASES:
            threads.append(
                (f"fallback-{name}", self.incremental[name].refresh_forever, (self.stop,))
            )
            threads.append((f"champion-{name}", self.batch[name].poll_forever, (self.stop,)))
        for name, target, args in threads:
            threading.Thread(target=target, args=args, name=name, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        if self._producer is not None:
            self._producer.flush(5)

    # -- predictions, batched across concurrent requests --------------------------------------
    async def predict_incremental(self, usecase: str, xs: list[dict[str, Any]]) -> dict[str, Any]:
        if not self._busy("incremental"):
            return await self._alone("incremental", self.incremental[usecase].predict(xs))
        return _raise_if_error(await self._incremental_batched((usecase, xs)))

    async def predict_batch(
        self,
        usecase: str,
        rows: list[dict[str, Any]],
        use_cache: bool,
        entities: list[str] | None = None,
    ) -> dict[str, Any]:
        """``entities``: each row's entity-memory version, for the cache key."""
        versions = entities or [""] * len(rows)
        # A list is a batch already: merged with others it would only wait for them, while alone
        # it runs in a worker thread beside the other lists (measured: +5 % events/s with lists).
        if len(rows) > INLINE_ROWS or not self._busy("batch"):
            call = self.batch[usecase].predict(rows, use_cache, versions)
            return await self._alone("batch", call)
        pairs = list(zip(rows, versions, strict=True))
        return _raise_if_error(await self._batch_batched((usecase, use_cache, pairs)))

    def _busy(self, kind: str) -> bool:
        """Another request of this kind is in flight: join the dynamic batch. A lone request goes
        straight to the model and skips the batch queue's few event-loop rounds."""
        return self._in_flight[kind] > 0

    async def _alone(self, kind: str, call: Awaitable[T]) -> T:
        self._in_flight[kind] += 1
        try:
            return await call
        finally:
            self._in_flight[kind] -= 1

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=0.0, max_concurrent_batches=2)
    async def _incremental_batched(
        self, items: list[tuple[str, list[dict[str, Any]]]]
    ) -> list[Any]:
        return await self._alone(
            "incremental", _grouped(items, lambda key, xs: self.incremental[key[0]].predict(xs))
        )

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=0.0, max_concurrent_batches=2)
    async def _batch_batched(
        self, items: list[tuple[str, bool, list[tuple[dict[str, Any], str]]]]
    ) -> list[Any]:
        def call(key: tuple[Any, ...], pairs: list[tuple[dict[str, Any], str]]) -> Any:
            rows, versions = [r for r, _ in pairs], [v for _, v in pairs]
            return self.batch[key[0]].predict(rows, key[1], versions)

        return await self._alone("batch", _grouped(items, call))

    def note_version(self, usecase: str, kind: str, version: int) -> None:
        """Keep the served-version gauge current (set only when it changes: a set is not free)."""
        if self._versions.get(f"{usecase}/{kind}") != version:
            self._versions[f"{usecase}/{kind}"] = version
            self.metrics.model_version.set(version, tags={"usecase": usecase, "kind": kind})

    def _export_versions_forever(self, stop: threading.Event) -> None:
        """Set the incremental versions served again every few seconds: Ray exports a gauge only
        for a short while after its last set (the batch side re-sets its own at each poll)."""
        while not stop.wait(GAUGE_REFRESH_S):
            for key, version in list(self._versions.items()):
                usecase, kind = key.split("/")
                if kind == "incremental":
                    self.metrics.model_version.set(version, tags={"usecase": usecase, "kind": kind})

    # -- feedback: labelled events into the use case's topic ---------------------------------
    async def feedback(self, usecase: str, events: list[EventModel]) -> Feedback:
        """Produce the events to the use case's topic and wait for the broker's acknowledgement.

        The learner then learns them like any event, exactly once: its checkpoint holds the next
        offset of every partition, so a restart neither skips nor repeats them; the idempotent
        producer (acks=all) writes a retried send once.
        """
        spec = get(usecase)
        if self._producer is None:
            self._producer = Producer(producer_config(self.settings, **{"linger.ms": 0}))
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[tuple[int, int]]] = []

        def delivered(
            future: asyncio.Future[tuple[int, int]],
        ) -> Callable[[KafkaError | None, Message], None]:
            def report(err: KafkaError | None, msg: Message) -> None:
                if err is not None:
                    loop.call_soon_threadsafe(future.set_exception, RuntimeError(str(err)))
                else:
                    where = (msg.partition() or 0, msg.offset() or 0)  # set on a delivered one
                    loop.call_soon_threadsafe(future.set_result, where)

            return report

        for event in events:
            future: asyncio.Future[tuple[int, int]] = loop.create_future()
            futures.append(future)
            self._producer.produce(
                spec.topic,
                event.model_dump_json().encode(),
                spec.key_of(event).encode(),
                on_delivery=delivered(future),
            )
        await asyncio.to_thread(self._producer.flush, 30)
        placed = await asyncio.gather(*futures)
        return Feedback(
            usecase=usecase,
            accepted=len(placed),
            topic=spec.topic,
            offsets=[Placed(partition=p, offset=o) for p, o in placed],
        )

    # -- learner control ------------------------------------------------------------------------
    async def start_learners(self, usecase: str) -> list[dict[str, Any]]:
        shards = self.settings.learner_shards
        addresses = learner.service_addresses(self.settings)
        handles = [learner.start(usecase, s, shards, settings=addresses) for s in range(shards)]
        for shard in range(shards):
            self.incremental[usecase].forget(shard)
        return list(
            await asyncio.wait_for(asyncio.gather(*(h.status.remote() for h in handles)), 120)
        )

    async def stop_learners(self, usecase: str) -> list[dict[str, Any]]:
        out = []
        for shard in range(self.settings.learner_shards):
            handle = learner.find(usecase, shard)
            if handle is None:
                out.append({"usecase": usecase, "shard": shard, "running": False, "stopped": False})
                continue
            status = await asyncio.wait_for(handle.stop.remote(), 180)
            ray.kill(handle, no_restart=True)
            self.incremental[usecase].forget(shard)
            out.append({**status, "running": False, "stopped": True})
        return out

    async def reset_learners(self, usecase: str) -> list[dict[str, Any]]:
        shards = range(self.settings.learner_shards)
        running = [s for s in shards if learner.find(usecase, s) is not None]
        if running:
            raise LearnerRunning(f"{usecase} learner shard(s) {running} still run: stop them first")
        # As `rtml learn reset`: the Redis checkpoint and the MLflow snapshots (the learner's
        # fallback when Redis has none) both go, or the learner would restore the snapshot.
        for shard in shards:
            await asyncio.to_thread(forget, self.settings, usecase, shard)
            self.incremental[usecase].fallback.pop(shard, None)
            self.incremental[usecase].latest.pop(shard, None)
        return [
            {"usecase": usecase, "shard": s, "checkpoint": "deleted", "snapshots": "retired"}
            for s in shards
        ]

    # -- the rest ---------------------------------------------------------------------------------
    def sample(self, usecase: str) -> dict[str, Any]:
        """A fresh generated event, stamped now (the generator's own clock drifts otherwise)."""
        from rtml.usecases.generators import generator_for

        with self._sample_lock:
            gen = self._samples.get(usecase)
            if gen is None:
                gen = self._samples[usecase] = generator_for(usecase, seed=random.randrange(2**31))
            event = dict(next(gen).event)
        spec = get(usecase)
        if "timestamp" in spec.event.model_fields:
            event["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return event

    async def health(self) -> Health:
        s = self.settings

        async def check(probe: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
            t0 = time.perf_counter()
            try:
                ok = bool(await asyncio.wait_for(probe(), 3))
                detail = "" if ok else "not ready"
            except Exception as exc:  # noqa: BLE001 - a dependency's failure is the answer
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            return {"ok": ok, "ms": round((time.perf_counter() - t0) * 1000, 1)} | (
                {"detail": detail} if detail else {}
            )

        async def mlflow() -> bool:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"{s.mlflow_uri}/health")).status_code == 200

        deps = dict(
            zip(
                ("redis", "kafka", "mlflow"),
                await asyncio.gather(
                    check(lambda: self.aioredis.ping()),
                    check(lambda: asyncio.to_thread(broker_ready, s, 2.0)),
                    check(mlflow),
                ),
                strict=True,
            )
        )
        deps["ray"] = {"ok": ray.is_initialized()}
        usecases = {}
        for name in USECASES:
            found = [learner.find(name, shard) is not None for shard in range(s.learner_shards)]
            inc = self.incremental[name]
            usecases[name] = {
                "incremental": {
                    "learners_running": sum(found),
                    "shards": len(found),
                    "fallback_versions": {sh: f.version for sh, f in inc.fallback.items()},
                    "serving": bool(sum(found) or inc.fallback),
                },
                "batch": {
                    "version": getattr(self.batch[name].model, "version", None),
                    **({} if self.batch[name].model else {"reason": self.batch[name].reason}),
                },
            }
        ok = all(d["ok"] for d in deps.values())
        return Health.model_validate(
            {"status": "ok" if ok else "degraded", "dependencies": deps, "usecases": usecases}
        )


async def _grouped(
    items: list[tuple[Any, ...]],
    call: Callable[[tuple[Any, ...], list[Any]], Awaitable[dict[str, Any]]],
) -> list[Any]:
    """Answer a batch of ``(*key, rows)`` items with one ``call`` per distinct key; each item gets
    its own slice of the answer's per-row lists, or the exception its call raised (it never
    fails the others)."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(item[:-1], []).append(i)
    out: list[Any] = [None] * len(items)

    async def one(key: tuple[Any, ...], members: list[int]) -> None:
        rows = [row for i in members for row in items[i][-1]]
        try:
            answer = await call(key, rows)
        except Exception as exc:  # noqa: BLE001 - handed to each request of the group
            for i in members:
                out[i] = exc
            return
        start = 0
        for i in members:
            n = len(items[i][-1])
            out[i] = {
                k: v[start : start + n] if isinstance(v, list) and len(v) == len(rows) else v
                for k, v in answer.items()
            }
            start += n

    await asyncio.gather(*(one(key, members) for key, members in groups.items()))
    return out


def _raise_if_error(result: Any) -> dict[str, Any]:
    if isinstance(result, Exception):
        raise result
    return result
