"""Checkpoints that make a learner's model state exactly-once.

A checkpoint holds the model, its metrics, and **the next offset to read of every partition the
learner owns** — the offset of the first event the model has *not* learned. Restoring a checkpoint
and seeking each partition to its next offset replays exactly the events after it: none lost,
none learned twice. (The off-by-one to avoid: storing the last *learned* offset and seeking to it
would learn that event twice.)

The blob is pickled and signed with HMAC-SHA256 under a key from settings; a blob whose signature
does not verify is refused before anything is unpickled. Redis keeps the latest checkpoint per
learner with a version that only grows; a pub/sub message announces each new version.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
import time
from dataclasses import dataclass, field
from typing import Any

import redis

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
    created: float = field(default_factory=time.time)
    #: (partition, offset) of every event learned, in order; only with the test-only trace option
    trace: list[tuple[int, int]] | None = None


def sign(payload: bytes, key: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest() + payload


def verify(blob: bytes, key: bytes) -> bytes:
    signature, payload = blob[:SIGNATURE_BYTES], blob[SIGNATURE_BYTES:]
    expected = hmac.new(key, payload, hashlib.sha256).digest()
    if len(blob) <= SIGNATURE_BYTES or not hmac.compare_digest(signature, expected):
        raise CheckpointRefused("checkpoint signature does not verify: refused, not unpickled")
    return payload


def dumps(checkpoint: Checkpoint, key: bytes) -> bytes:
    return sign(pickle.dumps(checkpoint, protocol=pickle.HIGHEST_PROTOCOL), key)


def loads(blob: bytes, key: bytes) -> Checkpoint:
    return pickle.loads(verify(blob, key))  # noqa: S301 - verified above


class RedisCheckpoints:
    """The latest checkpoint of each learner in Redis, versioned, announced on pub/sub."""

    def __init__(self, client: redis.Redis, key: bytes) -> None:
        self.client = client
        self.key = key

    @staticmethod
    def _name(usecase: str, shard: int) -> str:
        return f"rtml:checkpoint:{usecase}:{shard}"

    @staticmethod
    def channel(usecase: str) -> str:
        return f"rtml:checkpoints:{usecase}"

    def save(self, usecase: str, shard: int, checkpoint: Checkpoint) -> tuple[int, int]:
        """Store atomically (blob and version together); return (version, size in bytes)."""
        blob = dumps(checkpoint, self.key)
        name = self._name(usecase, shard)
        version = int(self.client.incr(f"{name}:version"))
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(name, mapping={"blob": blob, "version": version, "created": checkpoint.created})
        pipe.publish(self.channel(usecase), f"{shard}:{version}")
        pipe.execute()
        return version, len(blob)

    def load(self, usecase: str, shard: int) -> tuple[int, Checkpoint] | None:
        stored = self.client.hgetall(self._name(usecase, shard))
        if not stored:
            return None
        return int(stored[b"version"]), loads(stored[b"blob"], self.key)

    def info(self, usecase: str, shard: int) -> dict[str, float] | None:
        version, created = self.client.hmget(self._name(usecase, shard), "version", "created")
        if version is None:
            return None
        return {"version": int(version), "age_s": time.time() - float(created)}

    def delete(self, usecase: str, shard: int) -> None:
        self.client.delete(self._name(usecase, shard))
