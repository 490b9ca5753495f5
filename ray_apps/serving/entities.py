"""Entity features at serving time: the learners' entity memories (``rtml.entity_store``) read
for a request, and an entity looked up.

A request's events carry only themselves; what their users, drivers, merchants did before comes
from the memories the learners wrote to Redis. Both serving sides read them the same way: one
``MGET`` for every entity of every event of the request (a list of events is one round trip
too), a state per event rebuilt from its records (:func:`rtml.entity_store.state_of`), then
``spec.features_of(event, state)`` — the learner's own code. An entity the store does not hold
(never seen, forgotten, or no learner has written yet) reads as one with no history: the fills.

Each event's records say how fresh its features are (:func:`as_of`): the entity's newest event
time and when the learner wrote it. The written time is part of the batch cache key
(:func:`version_of`), so a cached answer is never older than the entity memory it is served with.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from rtml.entity import EntityState, micros
from rtml.entity_store import EntityRecord, entity_key, state_of
from rtml.features import FeatureValue
from rtml.usecases.base import EventModel, UseCase


@dataclass(frozen=True)
class Featured:
    """One event's features and the entity records they were computed from."""

    features: dict[str, FeatureValue]
    records: list[EntityRecord]


def _at(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat().replace("+00:00", "Z")


def _wall(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def memory(record: EntityRecord, now: float | None = None) -> dict[str, Any]:
    """How fresh one entity's memory is (``EntityMemory`` in the schemas)."""
    now = time.time() if now is None else now
    return {
        "field": record.field,
        "value": record.value,
        "events": len(record.observations),
        "newest_event_at": _at(record.newest_us),
        "watermark_at": _at(record.watermark_us),
        "written_at": _wall(record.written_at),
        "age_s": round(max(0.0, now - record.written_at), 3),
    }


def as_of(records: Sequence[EntityRecord]) -> list[dict[str, Any]]:
    now = time.time()
    return [memory(r, now) for r in records]


def version_of(records: Sequence[EntityRecord]) -> str:
    """The entity memories' version for a cache key: each record's newest event and write."""
    return ";".join(f"{r.field}={r.value}@{r.newest_us}/{r.written_at!r}" for r in records)


class EntityReader:
    """One use case's entity memories, as a serving replica reads them (async Redis)."""

    def __init__(self, client: aioredis.Redis, spec: UseCase) -> None:
        self.client, self.spec = client, spec
        self.fields = list(spec.entities.groups(spec.key)) if spec.entities is not None else []

    async def featured(self, events: Sequence[EventModel]) -> list[Featured]:
        """Every feature of each event, its entities as stored: one round trip for them all."""
        spec = self.spec
        if not self.fields:
            return [Featured(spec.features_of(e), []) for e in events]
        dicts = [e.model_dump() for e in events]
        wanted = [[(f, str(d[f])) for f in self.fields if d.get(f) is not None] for d in dicts]
        keys = list(dict.fromkeys(k for per in wanted for k in per))
        raws = (
            await self.client.mget([entity_key(spec.name, f, v) for f, v in keys]) if keys else []
        )
        found = {
            k: EntityRecord.from_json(k[0], k[1], raw)
            for k, raw in zip(keys, raws, strict=True)
            if raw is not None
        }
        out = []
        for event, per in zip(events, wanted, strict=True):
            records = [found[k] for k in per if k in found]
            state = state_of(spec, records) if records else None
            out.append(Featured(spec.features_of(event, state), records))
        return out

    async def lookup(self, field: str, value: str) -> EntityRecord | None:
        raw = await self.client.get(entity_key(self.spec.name, field, value))
        return EntityRecord.from_json(field, value, raw) if raw is not None else None

    def next_features(self, record: EntityRecord, at_us: int | None = None) -> dict[str, Any]:
        """The entity features that the entity's next event gets at ``at_us`` (default: now, or
        the memory's watermark when the stream's event time runs ahead of the clock), its inputs
        being those of the entity's newest event."""
        assert self.spec.entities is not None
        state: EntityState = state_of(self.spec, [record])
        t = at_us if at_us is not None else max(micros(datetime.now(UTC)), record.watermark_us)
        own = record.observations[-1][3] if record.observations else ()
        inputs = self.spec.entities.groups(self.spec.key)[record.field]
        return {
            "at": _at(t),
            "features": state.next_features(record.field, record.value, t, own),
            "inputs": {i.name: v for i, v in zip(inputs, own, strict=False)},
            "label_known": sum(1 for o in record.observations if o[2] <= t),
        }
