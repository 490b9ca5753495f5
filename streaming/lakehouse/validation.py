"""The lakehouse's validation step, run inside Spark's Python workers.

A module of its own on purpose: a worker imports the module of the function it runs (and the
package's ``__init__``, which imports nothing), and this one needs only pyarrow and the use-case
specs, not Spark's driver side, Kafka, DuckDB or deltalake (~30 MB less per worker process).
"""

from __future__ import annotations

import pyarrow as pa

from rtml.usecases import InvalidEvent
from rtml.usecases import get as get_usecase

#: Arrow type of a verdict: (reason, None) for a rejected record, (None, canonical JSON) otherwise.
VERDICT = pa.struct([("reason", pa.string()), ("event", pa.string())])


def verdicts(usecase: str, values: pa.Array) -> pa.StructArray:
    """For each raw Kafka value: (reason, None) if the spec rejects it, else (None, its JSON).

    The reason is the spec's own (:meth:`UseCase.parse`), the same a learner puts on the
    dead-letter topic; the JSON is pydantic's canonical form of the event, which Spark then types.
    """
    spec = get_usecase(usecase)
    reasons: list[str | None] = []
    events: list[str | None] = []
    for raw in values.to_pylist():
        if raw is None:
            reasons.append("empty message (no value)")
            events.append(None)
            continue
        try:
            event = spec.parse(raw)
        except InvalidEvent as exc:
            reasons.append(exc.reason)
            events.append(None)
        else:
            reasons.append(None)
            events.append(event.model_dump_json())
    return pa.StructArray.from_arrays(
        [pa.array(reasons, pa.string()), pa.array(events, pa.string())], fields=list(VERDICT)
    )
