"""Event generators with a known ground truth, one per use case."""

from __future__ import annotations

from datetime import datetime

from streaming.generators.base import EPOCH, EventGenerator, Generated
from streaming.generators.ecci import InteractionGenerator
from streaming.generators.eta import DeliveryGenerator
from streaming.generators.tfd import TransactionGenerator

GENERATORS: dict[str, type[EventGenerator]] = {
    g.usecase: g for g in (TransactionGenerator, DeliveryGenerator, InteractionGenerator)
}


def generator_for(
    usecase: str, seed: int = 0, start: datetime = EPOCH, events_per_second: float = 20.0
) -> EventGenerator:
    try:
        cls = GENERATORS[usecase]
    except KeyError:
        raise KeyError(
            f"no generator for use case {usecase!r}; known: {', '.join(GENERATORS)}"
        ) from None
    return cls(seed=seed, start=start, events_per_second=events_per_second)


__all__ = ["EPOCH", "GENERATORS", "EventGenerator", "Generated", "generator_for"]
