"""The online store of entity features: Redis, written by the learners, read at serving time.

A prediction request carries only the raw event; both serving sides need what its entities did
before. The learner that recorded them writes each touched entity's memory (its observations,
exactly what :class:`~rtml.entity.EntityState` holds) after every batch it learns; a reader
rebuilds a state holding just the event's entities and computes the features with the same code
as the learner, so a served event's features are the ones the learner would compute next.

Key layout: ``rtml:entity:<usecase>:<field>:<value>`` → JSON ``{"obs": [[t_us, id, label_at_us,
[values...]], ...], "newest_us": ..., "watermark_us": ..., "written_at": ...}``, expiring
``horizon + lateness`` after its write (an idle entity is forgotten as the learner forgets it).
``newest_us`` is the entity's newest event time, ``watermark_us`` the learner's newest event time
when it wrote, ``written_at`` the wall clock: how fresh a reader's features are. JSON, not
pickle: a reader never unpickles what a shared store holds.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from rtml.entity import EntityState, Observation

if TYPE_CHECKING:
    import redis

    from rtml.usecases.base import UseCase

PREFIX = "rtml:entity"


@dataclass(frozen=True)
class EntityRecord:
    """One entity's memory as the store holds it."""

    field: str
    value: str
    observations: list[Observation]
    newest_us: int
    watermark_us: int
    written_at: float

    def to_json(self) -> bytes:
        # orjson: a learner writes every touched entity after each batch, and the standard
        # library's encoder cost as much per event as computing the features (docs/
        # entity-features.md); its floats round-trip exactly, as the standard library's do.
        return orjson.dumps(
            {
                "obs": self.observations,
                "newest_us": self.newest_us,
                "watermark_us": self.watermark_us,
                "written_at": self.written_at,
            }
        )

    @classmethod
    def from_json(cls, field: str, value: str, raw: bytes | str) -> EntityRecord:
        data = orjson.loads(raw)
        return cls(
            field,
            value,
            [(int(t), str(i), int(a), tuple(v)) for t, i, a, v in data["obs"]],
            int(data["newest_us"]),
            int(data["watermark_us"]),
            float(data["written_at"]),
        )


def entity_key(usecase: str, field: str, value: str) -> str:
    return f"{PREFIX}:{usecase}:{field}:{value}"


class EntityStore:
    """Reads and writes one use case's entity memories in Redis."""

    def __init__(self, client: redis.Redis, spec: UseCase) -> None:
        if spec.entities is None:
            raise ValueError(f"{spec.name} has no entity features")
        self.client, self.spec, self.entities = client, spec, spec.entities
        self.ttl_s = int((self.entities.horizon + self.entities.lateness).total_seconds())
        self.fields = list(self.entities.groups(spec.key))

    def write(self, state: EntityState, touched: Iterable[tuple[str, str]]) -> int:
        """Store the memory of every ``(field, value)`` touched since the last write; how many."""
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        n = 0
        for field, value in touched:
            observations = state.entity(field, value)
            if not observations:
                continue
            record = EntityRecord(
                field, value, observations, observations[-1][0], state.watermark, now
            )
            pipe.set(entity_key(self.spec.name, field, value), record.to_json(), ex=self.ttl_s)
            n += 1
        if n:
            pipe.execute()
        return n

    def lookup(self, field: str, value: str) -> EntityRecord | None:
        raw = self.client.get(entity_key(self.spec.name, field, value))
        return EntityRecord.from_json(field, value, raw) if raw is not None else None

    def records_for(self, event: Mapping[str, Any]) -> list[EntityRecord]:
        """The stored memories of ``event``'s entities (one round trip), those that exist."""
        wanted = [(f, str(event[f])) for f in self.fields if event.get(f) is not None]
        if not wanted:
            return []
        raws = self.client.mget([entity_key(self.spec.name, f, v) for f, v in wanted])
        return [
            EntityRecord.from_json(f, v, raw)
            for (f, v), raw in zip(wanted, raws, strict=True)
            if raw is not None
        ]

    def state_for(self, event: Mapping[str, Any]) -> tuple[EntityState, list[EntityRecord]]:
        """A state holding ``event``'s entities as stored, and the records it came from (their
        ``written_at`` and ``newest_us`` say how fresh the features are)."""
        records = self.records_for(event)
        return state_of(self.spec, records), records


def state_of(spec: UseCase, records: Iterable[EntityRecord]) -> EntityState:
    """An entity state that holds ``records`` (and nothing else)."""
    assert spec.entities is not None
    state = EntityState(spec.key, spec.entities)
    for r in records:
        state.memory.setdefault(r.field, {})[r.value] = list(r.observations)
        state.watermark = max(state.watermark, r.watermark_us)
    return state
