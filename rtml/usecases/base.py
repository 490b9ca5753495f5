"""The one interface every use case satisfies.

A use case is one declarative :class:`UseCase` value in its own module: the event schema, the
entity key, the target, the features, the topic, the metrics and the oracle. Everything else in
rtml (producers, learners, deployments, jobs, UI) is generic over it, and one parametrized test
suite checks every spec the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from rtml.features import Feature, FeatureValue, extract

Task = Literal["classification", "regression", "clustering"]

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
    name: str
    title: str
    task: Task
    event: type[EventModel]
    truth: type[BaseModel]
    key: str
    target: str | None
    features: tuple[Feature, ...]
    primary_metric: str
    higher_is_better: bool
    #: The best reachable prediction, from the generator's own rules and latent state (which the
    #: truth record carries): fraud probability, expected travel time, true segment.
    oracle: Callable[[BaseModel], float | int | str]
    #: Defaults of the online model's hyperparameters; settings and the CLI override them.
    online_model: Mapping[str, Any] = field(default_factory=dict)
    #: Probability at or above which a classifier says "positive" (classification only).
    decision_threshold: float = 0.5

    @property
    def topic(self) -> str:
        return f"{self.name}.events"

    @property
    def dlq_topic(self) -> str:
        return f"{self.topic}.dlq"

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

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
        return self.truth.model_validate_json(raw)

    def features_of(self, event: EventModel) -> dict[str, FeatureValue]:
        return extract(self.features, event.model_dump())

    def label_of(self, event: EventModel) -> Any:
        if self.target is None:
            raise ValueError(f"{self.name} is unsupervised: its events carry no label")
        return getattr(event, self.target)

    def key_of(self, event: EventModel) -> str:
        return str(getattr(event, self.key))


def dumps(record: Mapping[str, Any]) -> bytes:
    """The wire form of a generated event or truth: compact JSON."""
    return json.dumps(record, separators=(",", ":")).encode()
