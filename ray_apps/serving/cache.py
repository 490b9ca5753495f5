"""The batch prediction cache in Redis.

A batch model's version changes rarely, so an answer is cached under the **model version, the
canonical features** (the spec's feature dict as sorted, compact JSON; floats in their shortest
round-trip form) **and the version of the entity memories** the features were read from (each
record's newest event and write time, ``ray_apps.serving.entities.version_of``): the same event
asked again is a hit, a new champion version never serves an old answer because the version is
part of the key, and an entity memory the learner rewrote is a new key, so a cached answer is
never older than the features served with it. Entries expire after ``serve_cache_ttl_s``; 0
turns the cache off.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis

PREFIX = "rtml:prediction"


def cache_key(
    usecase: str, version: str | int, features: Mapping[str, Any], entities: str = ""
) -> str:
    canonical = json.dumps(features, sort_keys=True, separators=(",", ":"), allow_nan=False)
    digest = hashlib.blake2b(f"{canonical}|{entities}".encode(), digest_size=16).hexdigest()
    return f"{PREFIX}:{usecase}:v{version}:{digest}"


class PredictionCache:
    def __init__(self, client: aioredis.Redis, ttl_s: int) -> None:
        self.client = client
        self.ttl_s = ttl_s

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    async def get_many(self, keys: Sequence[str]) -> list[Any | None]:
        """The cached answers (``None`` for a miss), one Redis round trip."""
        raw = await self.client.mget(keys)
        return [None if value is None else json.loads(value) for value in raw]

    async def put_many(self, answers: Mapping[str, Any]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key, value in answers.items():
            pipe.set(key, json.dumps(value), ex=self.ttl_s)
        await pipe.execute()
