"""The registry of use cases: the three rtml ships, and a user's own.

A user's use case is a :class:`UseCase` in a module of their own, named by the setting
``RTML_USECASE_SPECS`` (``module:NAME``) or by an entry point of an installed package in the group
``rtml.usecases``. They are read on first use, not at import, so importing rtml runs no user code.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import entry_points

from rtml.usecases import ecci, eta, tfd
from rtml.usecases.base import InvalidEvent, UseCase

BUILTIN: tuple[UseCase, ...] = (tfd.SPEC, eta.SPEC, ecci.SPEC)
#: The entry-point group through which an installed package offers use cases.
ENTRY_POINTS = "rtml.usecases"


def load_spec(reference: str) -> UseCase:
    """The use case that ``module:NAME`` names."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{reference!r} is not a use-case reference like 'mypkg.fraud:SPEC'")
    spec = getattr(importlib.import_module(module_name), attribute, None)
    if not isinstance(spec, UseCase):
        raise TypeError(f"{reference} is {type(spec).__name__}, not an rtml UseCase")
    return spec


class UseCases(Mapping[str, UseCase]):
    """Every known use case by name: the built-in ones, the entry points', the settings'."""

    def __init__(self) -> None:
        self._specs: dict[str, UseCase] | None = None

    def _loaded(self) -> dict[str, UseCase]:
        if self._specs is None:
            from rtml.settings import get_settings

            specs: dict[str, UseCase] = {}
            _merge(specs, BUILTIN)
            _merge(specs, [point.load() for point in entry_points(group=ENTRY_POINTS)])
            _merge(specs, [load_spec(ref) for ref in get_settings().usecase_specs])
            self._specs = specs
        return self._specs

    def add(self, *specs: UseCase) -> None:
        """Register use cases; a second, different use case of the same name is an error."""
        _merge(self._loaded(), specs)

    def include(self, references: Iterable[str]) -> None:
        """Register the use cases that ``module:NAME`` references name (a process that gets its
        settings passed, such as a learner actor, calls this with them)."""
        self.add(*(load_spec(ref) for ref in references))

    def __getitem__(self, name: str) -> UseCase:
        return self._loaded()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())


def _merge(known: dict[str, UseCase], specs: Iterable[object]) -> None:
    for spec in specs:
        if not isinstance(spec, UseCase):
            raise TypeError(f"{spec!r} is not an rtml UseCase")
        if known.get(spec.name, spec) != spec:
            raise ValueError(f"two different use cases are named {spec.name!r}")
        known[spec.name] = spec


USECASES = UseCases()


def get(name: str) -> UseCase:
    try:
        return USECASES[name]
    except KeyError:
        raise KeyError(f"unknown use case {name!r}; known: {', '.join(USECASES)}") from None


__all__ = ["USECASES", "InvalidEvent", "UseCase", "get", "load_spec"]
