"""The one interface every use case satisfies.

A use case is one declarative :class:`UseCase` value in its own module: the event schema, the
entity key, the target, the features, the topic, the metrics and the oracle. Everything else in
rtml (producers, learners, deployments, jobs, UI) is generic over it, and one parametrized test
suite checks every spec the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from rtml.entity import Entities, EntityState
from rtml.features import Feature, FeatureValue, extract

if TYPE_CHECKING:
    from rtml.tasks.base import Task

#: Kafka header carrying the generator's ground truth beside the event (never a feature).
TRUTH_HEADER = "rtml-truth"


class EventModel(BaseModel):
    """Base of every event schema: strict about unknown fields, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class InvalidEvent(ValueError):
    """An event that fails its schema; ``reason`` is what a dead-letter record carries."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def describe_validation_error(exc: ValidationError) -> str:
    """One line per bad field, e.g. ``amount: Input should be greater than 0 (got -5.0)``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "event"
        got = "" if error["type"] == "missing" else f" (got {error.get('input')!r:.60})"
        parts.append(f"{where}: {error['msg']}{got}")
    return "; ".join(parts)


@dataclass(frozen=True)
class UseCase:
    """A use case: its events, their entity key, the answer (if events carry one), the features
    and the task. The three use cases rtml ships also carry their world's ground truth beside each
    event and an oracle; a user's own data has neither, and every path that needs one says "no
    oracle" instead of failing."""

    name: str
    title: str
    task: Task
    event: type[EventModel]
    key: str
    target: str | None
    features: tuple[Feature, ...]
    #: The schema of the world's ground truth, which travels beside each event (a Kafka header).
    truth: type[BaseModel] | None = None
    #: The best reachable prediction, from the generator's own rules and latent state (which the
    #: truth record carries): fraud probability, expected travel time, true segment.
    oracle: Callable[[BaseModel], Any] | None = None
    #: The reachable ceiling (from the truth record): the world's rule with every entity's traits
    #: known but each event's hidden draws (a detour, an incident's delay) at their median — the
    #: best a model with perfect memory could do. ``None``: the oracle is that already (a world
    #: whose rule reads nothing that an entity's history does not tell).
    ceiling: Callable[[BaseModel], Any] | None = None
    #: Defaults of the online model's hyperparameters; settings and the CLI override them.
    online_model: Mapping[str, Any] = field(default_factory=dict)
    #: The spec's own online model, built from those hyperparameters (default: the task's).
    model: Callable[[dict[str, Any]], Any] | None = None
    #: The Kafka topic of the events, when they already live in one (default ``<name>.events``).
    kafka_topic: str | None = None
    #: What each entity did before an event (:mod:`rtml.entity`): features beside ``features``.
    entities: Entities | None = None

    @property
    def topic(self) -> str:
        return self.kafka_topic or f"{self.name}.events"

    @property
    def dlq_topic(self) -> str:
        return f"{self.topic}.dlq"

    @property
    def label(self) -> str:
        """The field that carries the answer; what only a supervised task asks for."""
        if self.target is None:
            raise ValueError(f"{self.name} is unsupervised: its events carry no label")
        return self.target

    @property
    def entity_feature_names(self) -> list[str]:
        return self.entities.names if self.entities is not None else []

    @property
    def feature_names(self) -> list[str]:
        """Every feature a model sees: the event's own, then its entities' (all numeric)."""
        return [f.name for f in self.features] + self.entity_feature_names

    @property
    def numeric_names(self) -> list[str]:
        own = [f.name for f in self.features if f.kind == "numeric"]
        return own + self.entity_feature_names

    @property
    def categorical_names(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "categorical"]

    @property
    def primary_metric(self) -> str:
        return self.task.primary_metric

    @property
    def higher_is_better(self) -> bool:
        """The primary metric's direction, as its River metric says."""
        return self.task.higher_is_better()

    def parse(self, raw: bytes | str | Mapping[str, Any]) -> EventModel:
        """Validate one event from the wire (JSON bytes) or a dict; raise :class:`InvalidEvent`."""
        try:
            if isinstance(raw, (bytes, str)):
                return self.event.model_validate_json(raw)
            return self.event.model_validate(raw)
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                raise InvalidEvent(f"not JSON: {exc.errors()[0]['msg']}") from None
            raise InvalidEvent(describe_validation_error(exc)) from None

    def parse_truth(self, raw: bytes | str) -> BaseModel:
        if self.truth is None:
            raise ValueError(f"{self.name} has no ground truth (no oracle)")
        return self.truth.model_validate_json(raw)

    def oracle_of(self, raw_truth: bytes | str | None) -> Any:
        """The oracle's prediction from an event's truth record; ``None`` without either."""
        if self.oracle is None or raw_truth is None:
            return None
        return self.oracle(self.parse_truth(raw_truth))

    def entity_state(self) -> EntityState | None:
        """An empty entity memory for this spec (``None`` without entity features)."""
        return EntityState(self.key, self.entities) if self.entities is not None else None

    def ceiling_of(self, raw_truth: bytes | str | None) -> Any:
        """The reachable ceiling's prediction from an event's truth record (the oracle's where the
        spec names no other); ``None`` without a truth record."""
        if self.ceiling is None or raw_truth is None:
            return self.oracle_of(raw_truth)
        return self.ceiling(self.parse_truth(raw_truth))

    def features_of(
        self, event: EventModel, state: EntityState | None = None
    ) -> dict[str, FeatureValue]:
        """Every feature of ``event``: its own, and its entities' from ``state`` (what is known of
        them before it; without a state, the features of an entity with no history)."""
        record = event.model_dump()
        x = extract(self.features, record)
        if self.entities is not None:
            x.update((state or EntityState(self.key, self.entities)).features(record))
        return x

    def features_in_order(self, events: Iterable[EventModel]) -> Iterator[dict[str, FeatureValue]]:
        """Each event's features as a learner that reads ``events`` in this order computes them:
        its entity features from the events before it, then the event is remembered."""
        state = self.entity_state()
        for event in events:
            yield self.features_of(event, state)
            if state is not None:
                state.record(event.model_dump())

    def label_of(self, event: EventModel) -> Any:
        return getattr(event, self.label)

    def key_of(self, event: EventModel) -> str:
        return str(getattr(event, self.key))


def dumps(record: Mapping[str, Any]) -> bytes:
    """The wire form of a generated event or truth: compact JSON."""
    return json.dumps(record, separators=(",", ":")).encode()
