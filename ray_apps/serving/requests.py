"""Request bodies: the spec's pydantic event schema, read with a size limit, one error per field.

A predict request is one event or a list of events. Its schema is the use case's event schema
with the target made optional (a client asking for a prediction does not know the label); a learn
request is the event schema itself (labelled feedback must carry the label). The body is read by
hand rather than by FastAPI so that its size is bounded while it streams in (413 before a large
body is held in memory) and so that a list's errors name the event they belong to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError, create_model
from starlette.requests import Request

from rtml.usecases import get
from rtml.usecases.base import EventModel


class BadRequest(Exception):
    """A client's mistake: ``status`` (4xx) and a ``detail`` that says what is wrong."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@cache
def predict_model(usecase: str) -> type[EventModel]:
    """The event schema with the target optional (``None``): what a predict request carries."""
    spec = get(usecase)
    if spec.target is None:
        return spec.event
    annotation = spec.event.model_fields[spec.target].annotation
    assert annotation is not None, "a pydantic model's field always has its annotation"
    return create_model(  # type: ignore[call-overload]
        f"{spec.event.__name__}Request",
        __base__=spec.event,
        **{spec.target: (annotation | None, None)},
    )


def body_schema(
    model: type[BaseModel], max_events: int, components: dict[str, Any]
) -> dict[str, Any]:
    """OpenAPI request body for "one event or a list", so /docs shows the real schema; the event
    schema goes into ``components`` (merged into the OpenAPI document by the routes)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    one = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [one, {"type": "array", "items": one, "maxItems": max_events}]
                    }
                }
            },
        }
    }


async def read_json(request: Request, max_bytes: int) -> Any:
    """The body as JSON; 413 as soon as it grows past ``max_bytes``, 400 when it is not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BadRequest(
            413, f"request body of {declared} bytes is over the {max_bytes} byte limit"
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BadRequest(413, f"request body is over the {max_bytes} byte limit")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise BadRequest(400, "empty body: send one event (a JSON object) or a list of events")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(400, f"body is not JSON: {exc}") from None


def field_errors(exc: ValidationError, index: int | None) -> list[dict[str, Any]]:
    """One entry per bad field: where (``field``, and ``index`` in a list), what, and the input."""
    out = []
    for error in exc.errors(include_url=False):
        entry: dict[str, Any] = {
            "field": ".".join(str(p) for p in error["loc"]) or "event",
            "message": error["msg"],
        }
        if error["type"] != "missing":
            entry["input"] = repr(error.get("input"))[:80]
        if index is not None:
            entry["index"] = index
        out.append(entry)
    return out


@dataclass(frozen=True)
class Events:
    events: list[EventModel]
    #: True when the body was a list: the answer is then a list too
    many: bool


def parse_events(body: Any, model: type[EventModel], max_events: int) -> Events:
    """Validate one event or a list of them; every bad field of every event is reported (422)."""
    many = isinstance(body, list)
    items = body if many else [body]
    if many and not items:
        raise BadRequest(422, "empty list: send at least one event")
    if len(items) > max_events:
        raise BadRequest(413, f"{len(items)} events in one request; the limit is {max_events}")
    events, errors = [], []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(
                {"field": "event", "message": f"expected a JSON object, got {type(item).__name__}"}
                | ({"index": i} if many else {})
            )
            continue
        try:
            events.append(model.model_validate(item))
        except ValidationError as exc:
            errors.extend(field_errors(exc, i if many else None))
    if errors:
        raise BadRequest(422, errors)
    return Events(events, many)
