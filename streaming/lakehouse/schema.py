"""The Spark schema of a use case's events, mapped from the spec's pydantic model.

The spec is the one definition of an event; bronze gets real column types from it instead of a
hand-kept Spark schema that could drift.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import AwareDatetime, BaseModel, FutureDatetime, NaiveDatetime, PastDatetime
from pyspark.sql import types as T

_DATETIMES = (dt.datetime, AwareDatetime, NaiveDatetime, PastDatetime, FutureDatetime)


def spark_type(annotation: Any) -> tuple[T.DataType, bool]:
    """The Spark type of a pydantic field annotation, and whether it admits None."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return spark_type(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"no Spark type for the union {annotation!r}")
        return spark_type(args[0])[0], True
    if origin is typing.Literal:
        kinds = {type(v) for v in typing.get_args(annotation)}
        if len(kinds) != 1:
            raise TypeError(f"no Spark type for a Literal of mixed types {annotation!r}")
        return spark_type(kinds.pop())
    if origin in (list, tuple, set, frozenset, Sequence):
        (item,) = typing.get_args(annotation)[:1] or (str,)
        element, nullable = spark_type(item)
        return T.ArrayType(element, nullable), False
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return spark_schema(annotation), False
        if issubclass(annotation, bool):  # before int: bool is an int
            return T.BooleanType(), False
        if issubclass(annotation, int):
            return T.LongType(), False
        if issubclass(annotation, float):
            return T.DoubleType(), False
        if issubclass(annotation, str):
            return T.StringType(), False
        if issubclass(annotation, _DATETIMES):
            return T.TimestampType(), False
        if issubclass(annotation, dt.date):
            return T.DateType(), False
    raise TypeError(f"no Spark type for the pydantic annotation {annotation!r}")


def spark_schema(model: type[BaseModel]) -> T.StructType:
    """The Spark schema of a pydantic model: one typed field per model field, in order.

    A field is nullable when its annotation admits None or it is not required.
    """
    fields = []
    for name, info in model.model_fields.items():
        data_type, optional = spark_type(info.annotation)
        fields.append(T.StructField(name, data_type, nullable=optional or not info.is_required()))
    return T.StructType(fields)


def event_time_field(schema: T.StructType) -> str | None:
    """The event's time: its ``timestamp`` field, else its first timestamp field."""
    stamps = [f.name for f in schema.fields if isinstance(f.dataType, T.TimestampType)]
    return "timestamp" if "timestamp" in stamps else (stamps[0] if stamps else None)
