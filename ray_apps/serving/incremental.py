"""The incremental side: serve what a use case's learner knows *now*.

Why the learner answers. An ARF pipeline pickles to ~93 MB after 20k events (~2 s to dump, ~2 s
to load), so shipping models to replicas on every update cannot be fresh; one ``predict_one``
costs ~0.15 ms. So a prediction is one actor call to the learner (``OnlineLearner.predict``),
which answers between two events with the model as it is at that moment.

Why there is a fallback. While a learner restarts (it reloads its checkpoint) or is stopped, the
replica answers from the last checkpoint *it* loaded from Redis. That copy is refreshed in a
background thread when the learner announces a new checkpoint on pub/sub (at most every
``serve_fallback_refresh_s``: a load holds the replica's GIL for ~2 s), so a prediction never
waits on a model load; the answer says which model made it (``source``: ``learner`` or
``checkpoint``).

Shards. With N learners per use case (each owning a subset of the partitions), the forests'
answers are averaged: each shard's forest is an ensemble trained on a uniform sample of the
stream (keys are hashed to partitions), and averaging ensembles is what a forest does anyway.
Cluster ids of independent DBSTREAM models name different things, so averaging them is
meaningless: clustering is answered by shard 0 alone, one consistent clustering.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import ray
import redis

from ray_apps.learning import actor as learner
from rtml.checkpoint import RedisCheckpoints
from rtml.online import predict_many
from rtml.settings import Settings
from rtml.usecases.base import UseCase

log = logging.getLogger("ray.serve")

#: Least seconds between two lookups of a learner actor that was not found.
LOOKUP_GAP_S = 1.0


class NoModel(Exception):
    """No learner answers and no checkpoint exists: 503 with this reason."""


@dataclass(frozen=True)
class ShardAnswer:
    predictions: list[Any]
    checkpoint_version: int
    learned: int
    source: str  # "learner" or "checkpoint"


@dataclass
class Fallback:
    version: int
    saved_at: float | None
    learned: int
    model: Any
    loaded_at: float


class Incremental:
    """One use case's learners, asked directly, with the replica's checkpoint copies behind them."""

    def __init__(self, spec: UseCase, settings: Settings, store: RedisCheckpoints) -> None:
        self.spec, self.settings, self.store = spec, settings, store
        self.shards = settings.learner_shards
        self._handles: dict[int, Any] = {}
        self._looked_up: dict[int, float] = {}
        self.fallback: dict[int, Fallback] = {}
        #: shard -> (version, saved_at) of the latest checkpoint announced or seen in Redis
        self.latest: dict[int, tuple[int, float]] = {}
        self._wanted = threading.Event()

    # -- the learners -------------------------------------------------------------------------
    def asked_shards(self) -> list[int]:
        return self.spec.task.shards_asked(self.shards)

    def handle(self, shard: int) -> Any | None:
        """The learner actor of a shard, cached; a missing one is looked up again at most every
        second (a lookup is a GCS round trip)."""
        cached = self._handles.get(shard)
        if cached is not None:
            return cached
        now = time.monotonic()
        if now - self._looked_up.get(shard, 0.0) < LOOKUP_GAP_S:
            return None
        self._looked_up[shard] = now
        found = learner.find(self.spec.name, shard)
        if found is not None:
            self._handles[shard] = found
        return found

    def forget(self, shard: int) -> None:
        self._handles.pop(shard, None)
        self._looked_up.pop(shard, None)

    async def _ask(self, shard: int, xs: list[dict[str, Any]]) -> ShardAnswer:
        handle = self.handle(shard)
        if handle is not None:
            try:
                out = await asyncio.wait_for(
                    handle.predict.remote(xs), timeout=self.settings.serve_learner_timeout_s
                )
                return ShardAnswer(
                    out["predictions"], out["checkpoint_version"], out["learned"], "learner"
                )
            except TimeoutError:
                pass  # restarting or busy: the checkpoint answers this time
            except ray.exceptions.RayActorError:
                self.forget(shard)  # dead for good (stopped): look it up again later
            except ray.exceptions.RayTaskError:
                pass  # it refused (still restoring its state): the checkpoint answers
            except ray.exceptions.RayError as exc:
                log.warning("learner %s[%d] failed to answer: %s", self.spec.name, shard, exc)
        return self._from_checkpoint(shard, xs)

    def _from_checkpoint(self, shard: int, xs: list[dict[str, Any]]) -> ShardAnswer:
        copy = self.fallback.get(shard)
        if copy is None:
            self._wanted.set()
            raise NoModel(
                f"no online model for {self.spec.name} yet: its learner does not answer and no "
                "checkpoint is loaded; start it with "
                f"POST /api/v1/{self.spec.name}/incremental/start"
            )
        return ShardAnswer(
            predict_many(self.spec, copy.model, xs), copy.version, copy.learned, "checkpoint"
        )

    async def predict(self, xs: list[dict[str, Any]]) -> dict[str, Any]:
        shards = self.asked_shards()
        if len(shards) == 1:  # no gather: one task and one event-loop round fewer
            try:
                answers: list[Any] = [await self._ask(shards[0], xs)]
            except NoModel as exc:
                answers = [exc]
        else:
            answers = await asyncio.gather(
                *(self._ask(s, xs) for s in shards), return_exceptions=True
            )
        good = [a for a in answers if isinstance(a, ShardAnswer)]
        for a in answers:
            if not isinstance(a, (ShardAnswer, NoModel)):
                raise a
        if not good:
            raise next(a for a in answers if isinstance(a, NoModel))
        return {
            "predictions": [
                self._combine([a.predictions[i] for a in good]) for i in range(len(xs))
            ],
            "model_version": min(a.checkpoint_version for a in good),
            "learned": sum(a.learned for a in good),
            "checkpoint_age_s": self.checkpoint_age(shards),
            "source": "+".join(sorted({a.source for a in good})),
            "shards": len(good),
        }

    def _combine(self, values: list[Any]) -> dict[str, Any]:
        return self.spec.task.answer(self.spec, self.spec.task.combine(values))

    def checkpoint_age(self, shards: list[int]) -> float | None:
        saved = [self.latest[s][1] for s in shards if s in self.latest]
        return round(time.time() - min(saved), 3) if saved else None

    # -- control ------------------------------------------------------------------------------
    async def status(self) -> list[dict[str, Any]]:
        rows = []
        for shard in range(self.shards):
            handle = learner.find(self.spec.name, shard)
            row: dict[str, Any] = {"usecase": self.spec.name, "shard": shard, "running": False}
            if handle is not None:
                try:
                    row = await asyncio.wait_for(handle.status.remote(), timeout=10)
                except (TimeoutError, ray.exceptions.RayError) as exc:
                    row["error"] = f"learner does not answer: {type(exc).__name__}"
            if not row.get("running"):
                row["checkpoint"] = await asyncio.to_thread(self.store.info, self.spec.name, shard)
            rows.append(row)
        return rows

    # -- the fallback copies, refreshed in the background ---------------------------------------
    def on_announcement(self, shard: int) -> None:
        """A learner stored a new checkpoint: note its age now, load it later (background). The
        checkpoint was deleted (a reset, through any replica): drop the copy at once."""
        info = self.store.info(self.spec.name, shard)
        if info is None:
            self.fallback.pop(shard, None)
            self.latest.pop(shard, None)
            return
        self.latest[shard] = (int(info["version"]), info["saved_at"])
        self._wanted.set()

    def refresh_forever(self, stop: threading.Event) -> None:
        """Load newer checkpoints into the fallback copies; runs in its own thread."""
        self._wanted.set()  # the first pass loads whatever exists
        while not stop.is_set():
            if not self._wanted.wait(timeout=1.0):
                continue
            self._wanted.clear()
            loaded = False
            for shard in range(self.shards):
                try:
                    loaded = self._refresh(shard) or loaded
                except Exception as exc:  # noqa: BLE001 - keep serving the copy we have
                    log.warning("checkpoint of %s[%d] not loaded: %s", self.spec.name, shard, exc)
            if loaded:  # pace the loads (each costs the replica ~2 s of GIL for a big forest)
                stop.wait(self.settings.serve_fallback_refresh_s)

    def _refresh(self, shard: int) -> bool:
        """Load the shard's checkpoint if it is newer than the copy; True if one was loaded."""
        info = self.store.info(self.spec.name, shard)
        if info is None:
            self.fallback.pop(shard, None)  # reset: nothing to fall back on
            return False
        version = int(info["version"])
        self.latest[shard] = (version, info["saved_at"])
        have = self.fallback.get(shard)
        if have is not None and have.version >= version:
            return False
        loaded = self.store.load(self.spec.name, shard)
        if loaded is None:
            return False
        v, ck = loaded
        self.fallback[shard] = Fallback(v, ck.saved_at, ck.learned, ck.model, time.time())
        return True


def watch_checkpoints(
    client: redis.Redis, sides: dict[str, Incremental], stop: threading.Event
) -> None:
    """Forward every learner's checkpoint announcement (pub/sub) to its use case; own thread."""
    channels = {RedisCheckpoints.channel(name): side for name, side in sides.items()}
    while not stop.is_set():
        try:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(*channels)
            while not stop.is_set():
                message = pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                shard = int(message["data"].split(b":")[0])
                channels[message["channel"].decode()].on_announcement(shard)
        except redis.RedisError as exc:
            log.warning("checkpoint announcements lost (%s); resubscribing", exc)
            stop.wait(1.0)
