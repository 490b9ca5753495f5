"""What every event generator shares: a seeded random source, a simulated clock, ids.

A generator is a deterministic simulation: the same seed and start give the same events, byte for
byte, because all randomness comes from one ``random.Random`` and one seeded Faker, and time from
a simulated clock (exponential inter-arrival times at ``events_per_second``), never the wall clock.
A live producer starts the clock at "now" and paces itself at the same rate, so event time tracks
wall time.
"""

from __future__ import annotations

import random
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from faker import Faker

#: Where a generator's clock starts unless told otherwise: fixed, so tests are reproducible.
EPOCH = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Generated:
    """One event as it goes on the wire (JSON-ready values), its key, and its ground truth."""

    key: str
    event: dict[str, Any]
    truth: dict[str, Any]


class EventGenerator(ABC, Iterator[Generated]):
    usecase: ClassVar[str]

    def __init__(
        self, seed: int = 0, start: datetime = EPOCH, events_per_second: float = 20.0
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.rng = random.Random(seed)
        self.fake = Faker()
        self.fake.seed_instance(seed)
        self.now = start
        self._mean_gap_s = 1.0 / events_per_second

    def __next__(self) -> Generated:
        self.now += timedelta(seconds=self.rng.expovariate(1.0 / self._mean_gap_s))
        return self.generate()

    @abstractmethod
    def generate(self) -> Generated:
        """The next event at ``self.now``."""

    # -- helpers for subclasses -------------------------------------------------------------
    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{uuid.UUID(int=self.rng.getrandbits(128), version=4).hex[:20]}"

    def timestamp(self) -> str:
        return self.now.isoformat().replace("+00:00", "Z")

    def pick(self, weights: dict[Any, float]) -> Any:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p
