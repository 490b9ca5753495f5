"""The event generator of each use case's world, by name: ``generator_for("tfd", seed=7)``.

Apart from the registry of specs (``rtml.usecases``), so that reading a spec never loads a world.
"""

from __future__ import annotations

from datetime import datetime

from rtml.usecases.ecci.world import InteractionGenerator
from rtml.usecases.eta.world import DeliveryGenerator
from rtml.usecases.tfd.world import TransactionGenerator
from rtml.usecases.world import EPOCH, EventGenerator

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


__all__ = ["GENERATORS", "generator_for"]
