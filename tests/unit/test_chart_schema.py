"""The chart's use-case enum is the specs' own: ``kuberay/chart_schema.py`` writes it into
``charts/rtml/values.schema.json``, and a use case added to (or renamed in) the specs without
regenerating the chart fails here."""

from __future__ import annotations

import json

from kuberay.chart_schema import SCHEMA, usecase_enum, with_usecases
from rtml.usecases import BUILTIN

REGENERATE = "the specs changed: run `python -m kuberay.chart_schema` (or `make generate`)"


def test_the_charts_usecases_are_the_specs() -> None:
    committed = SCHEMA.read_text()
    assert usecase_enum(json.loads(committed)) == [spec.name for spec in BUILTIN], REGENERATE
    assert with_usecases(committed) == committed, REGENERATE


def test_a_stale_enum_is_rewritten_and_nothing_else() -> None:
    committed = SCHEMA.read_text()
    schema = json.loads(committed)
    schema["properties"]["sweeps"]["properties"]["usecases"]["items"]["enum"] = ["tfd", "old"]
    stale = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    assert with_usecases(stale) == committed
