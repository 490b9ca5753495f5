"""The lakehouse's validation step, run inside Spark's Python workers.

A module of its own on purpose: a worker imports the module of the function it runs (and the
package's ``__init__``, which imports nothing), and this one needs only pyarrow and the use-case
specs, not Spark's driver side, Kafka, DuckDB or deltalake (~30 MB less per worker process).
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from rtml.usecases import InvalidEvent, UseCase
from rtml.usecases import get as get_usecase

#: Arrow type of a verdict: (reason, None) for a rejected record, (None, canonical JSON) otherwise.
VERDICT = pa.struct([("reason", pa.string()), ("event", pa.string())])


def verdicts(usecase: str, values: pa.Array) -> pa.StructArray:
    """For each raw Kafka value: (reason, None) if the spec rejects it, else (None, its JSON).

    The reason is the spec's own (:meth:`UseCase.parse`), the same a learner puts on the
    dead-letter topic; the JSON is pydantic's canonical form of the event, which Spark then types.
    """
    spec = get_usecase(usecase)
    return _as_array([_verdict(spec, raw) for raw in values.to_pylist()])


def verdicts_by_topic(
    usecases: Mapping[str, str], topics: pa.Array, values: pa.Array
) -> pa.StructArray:
    """:func:`verdicts` for records of several topics at once: each value is judged by the use
    case of its topic (``usecases``: topic → use case)."""
    specs = {topic: get_usecase(name) for topic, name in usecases.items()}
    return _as_array(
        [
            _verdict(specs[topic], raw)
            for topic, raw in zip(topics.to_pylist(), values.to_pylist(), strict=True)
        ]
    )


def _verdict(spec: UseCase, raw: bytes | None) -> tuple[str | None, str | None]:
    if raw is None:
        return "empty message (no value)", None
    try:
        event = spec.parse(raw)
    except InvalidEvent as exc:
        return exc.reason, None
    return None, event.model_dump_json()


def _as_array(pairs: list[tuple[str | None, str | None]]) -> pa.StructArray:
    reasons = [reason for reason, _ in pairs]
    events = [event for _, event in pairs]
    return pa.StructArray.from_arrays(
        [pa.array(reasons, pa.string()), pa.array(events, pa.string())], fields=list(VERDICT)
    )
