"""Features defined once, for both paths.

A :class:`Feature` carries a Python function (the online path: River sees the dict that
:func:`extract` builds from a validated event) and a DuckDB SQL expression over the bronze table
(the batch path: :func:`feature_sql`). Both read the same event fields, and a test runs both over
the same generated events and compares them, so online and batch never disagree on what a
feature is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

FeatureKind = Literal["numeric", "categorical"]
FeatureValue = float | str
Event = Mapping[str, Any]


@dataclass(frozen=True)
class Feature:
    name: str
    kind: FeatureKind
    python: Callable[[Event], FeatureValue]
    sql: str
    doc: str = ""


def numeric(field: str, doc: str = "") -> Feature:
    """A numeric event field taken as it is."""
    return Feature(field, "numeric", lambda e: float(e[field]), f"CAST({field} AS DOUBLE)", doc)


def categorical(field: str, doc: str = "") -> Feature:
    """A string event field; River's trees split on it as a nominal attribute."""
    return Feature(field, "categorical", lambda e: str(e[field]), f"CAST({field} AS VARCHAR)", doc)


def flag(field: str, doc: str = "") -> Feature:
    """A boolean event field as 0.0 / 1.0."""
    return Feature(
        field, "numeric", lambda e: float(bool(e[field])), f"CAST({field} AS DOUBLE)", doc
    )


def log1p(field: str, doc: str = "") -> Feature:
    """log(1 + x) of a non-negative, heavy-tailed field (amounts, prices, durations)."""
    return Feature(
        f"log1p_{field}", "numeric", lambda e: math.log1p(float(e[field])), f"ln(1 + {field})", doc
    )


def _local(ts: datetime, utc_offset_hours: int) -> datetime:
    """Events may carry any UTC offset; features read the instant in UTC, then shift."""
    return ts.astimezone(UTC) + timedelta(hours=utc_offset_hours)


def _local_sql(field: str, utc_offset_hours: int) -> str:
    """Bronze timestamps are TIMESTAMPTZ; read them in UTC whatever the session's time zone."""
    utc = f"timezone('UTC', {field})"
    return f"({utc} + INTERVAL ({utc_offset_hours}) HOUR)" if utc_offset_hours else utc


def hour_of_day(field: str = "timestamp", utc_offset_hours: int = 0, doc: str = "") -> Feature:
    """Hour of the day of a UTC timestamp, shifted to a fixed local offset."""

    def python(e: Event) -> float:
        return float(_local(e[field], utc_offset_hours).hour)

    local = _local_sql(field, utc_offset_hours)
    return Feature("hour", "numeric", python, f"CAST(hour({local}) AS DOUBLE)", doc)


def day_of_week(field: str = "timestamp", utc_offset_hours: int = 0, doc: str = "") -> Feature:
    """Day of the week, Monday = 0, at a fixed local offset (ISO weekday - 1 in SQL)."""

    def python(e: Event) -> float:
        return float(_local(e[field], utc_offset_hours).weekday())

    local = _local_sql(field, utc_offset_hours)
    return Feature("weekday", "numeric", python, f"CAST(isodow({local}) - 1 AS DOUBLE)", doc)


def extract(features: Sequence[Feature], event: Event) -> dict[str, FeatureValue]:
    """The feature dict of one validated event (``model_dump()`` of the spec's schema)."""
    return {f.name: f.python(event) for f in features}


def feature_sql(features: Sequence[Feature], table: str, extra_columns: Sequence[str] = ()) -> str:
    """A SELECT that yields every feature as a column of ``table`` (plus ``extra_columns``)."""
    columns = [*extra_columns, *(f"{f.sql} AS {f.name}" for f in features)]
    return "SELECT " + ", ".join(columns) + f" FROM {table}"
