"""The registry of use cases: adding one is adding a spec module and a line here."""

from __future__ import annotations

from rtml.usecases import ecci, eta, tfd
from rtml.usecases.base import InvalidEvent, UseCase

USECASES: dict[str, UseCase] = {spec.name: spec for spec in (tfd.SPEC, eta.SPEC, ecci.SPEC)}


def get(name: str) -> UseCase:
    try:
        return USECASES[name]
    except KeyError:
        raise KeyError(f"unknown use case {name!r}; known: {', '.join(USECASES)}") from None


__all__ = ["USECASES", "InvalidEvent", "UseCase", "get"]
