"""Every table of the CLI reads in an 80-column terminal: rendered at width 80 from sample data
(values as wide as real ones get), no cell is cut ("…"), wrapped, or past the 80th column."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console, Group, RenderableType
from rich.table import Table

from rtml.cli import oracle_table, status_view
from rtml.cli_lakehouse import lake_tables_view, streams_view
from rtml.cli_learn import learners_table
from rtml.cli_models import versions_table
from rtml.cli_verify import verdicts_view
from rtml.scoring import oracle_report
from rtml.stack.local import PartStatus
from rtml.usecases import USECASES, get
from streaming.generators import generator_for

CHECKOUT = "/home/someone/src/rtml"


def _render(renderable: RenderableType, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def _assert_reads_at_80(renderable: RenderableType) -> str:
    """No "…", no line past 80; and no table cell wrapped (the table takes as many lines at 80
    columns as on a screen wide enough for anything). Prose below a table may wrap."""
    text = _render(renderable, 80)
    assert "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= 80, text
    tables = renderable.renderables if isinstance(renderable, Group) else [renderable]
    for table in (t for t in tables if isinstance(t, Table)):
        at_80 = _render(table, 80).splitlines()
        assert len(at_80) == len(_render(table, 400).splitlines()), "a cell wrapped:\n" + text
    return text


def _headers(table: Table) -> list[str]:
    return [str(c.header) for c in table.columns]


# -- rtml learn status ---------------------------------------------------------------------------

LEARNERS: list[dict[str, Any]] = [
    {
        "usecase": "ecci",
        "shard": 0,
        "running": True,
        "learned": 12_345_678,
        "events_per_s": 1234.56,
        "dead_lettered": 12_345,
        "lag": {0: 123_456, 1: 0, 2: 7},
        "checkpoint": {"version": 12_345, "age_s": 1320.4},
        "metrics": {
            "primary": "silhouette",
            "overall": {"silhouette": 0.123456},
            "share_of_oracle": {"silhouette": 0.9512},
        },
    },
    {
        "usecase": "tfd",
        "shard": 1,
        "running": True,
        "restoring": True,
        "learned": 0,
        "dead_lettered": 0,
    },
    {"usecase": "eta", "shard": 0, "running": False},
]


def test_learn_status_reads_at_80_columns() -> None:
    text = _assert_reads_at_80(learners_table(LEARNERS))
    assert "ecci[0]" in text and "v12345 22m ago" in text and "silhouette 0.1235 (95%)" in text
    assert "restoring" in text


def test_learn_status_wide_has_every_column() -> None:
    table = learners_table(LEARNERS, wide=True)
    assert {"events/s", "dead letters", "lag"} <= set(_headers(table))
    assert "p0:123456 p1:0 p2:7" in _render(table, 200)


# -- rtml models USECASE -------------------------------------------------------------------------

METRICS = {
    "tfd": {"fbeta": 0.612345, "precision": 0.412345, "recall": 0.712345, "roc_auc": 0.912345},
    "eta": {"mae": 123.456, "rmse": 234.567, "r2": 0.954321},
    "ecci": {"silhouette": 0.123456, "ari": 0.987654},
}


def _versions(usecase: str) -> list[SimpleNamespace]:
    primary = get(usecase).primary_metric
    faced = {
        "gate.champion_version": "11",
        "gate.champion_score": str(METRICS[usecase][primary] * 0.9),
        "share_of_oracle": "0.8312",
    }
    return [
        SimpleNamespace(
            version=12,
            aliases=["champion"],
            metrics=METRICS[usecase],
            gate="promoted",
            created=1_700_000_000.0,
            tags=faced,
        ),
        SimpleNamespace(
            version=11,
            aliases=[],
            metrics=METRICS[usecase],
            gate="rejected",
            created=1_699_000_000.0,
            tags=faced,
        ),
        SimpleNamespace(
            version=1, aliases=[], metrics={}, gate="", created=1_690_000_000.0, tags={}
        ),
    ]


@pytest.mark.parametrize("usecase", list(USECASES))
def test_models_reads_at_80_columns(usecase: str) -> None:
    spec = get(usecase)
    table = versions_table(spec, f"rtml-{usecase}-batch", _versions(usecase))
    text = _assert_reads_at_80(table)
    assert "champion" in text and "promoted" in text and "v11 " in text
    assert spec.primary_metric in _headers(table)


@pytest.mark.parametrize("usecase", list(USECASES))
def test_models_wide_has_every_metric_and_the_creation_time(usecase: str) -> None:
    table = versions_table(get(usecase), f"rtml-{usecase}-batch", _versions(usecase), wide=True)
    assert set(METRICS[usecase]) | {"created", "vs champion"} <= set(_headers(table))


# -- rtml status, rtml up ------------------------------------------------------------------------

PARTS = [
    PartStatus("kafka", "running", "127.0.0.1:9092", 1_234_567, 612 * 2**20),
    PartStatus("redis", "external", "redis://127.0.0.1:6379/0"),
    PartStatus("mlflow", "unhealthy", "http://127.0.0.1:5000", 1_234_568, 1_610_612_736),
    PartStatus("ray", "started", "127.0.0.1:6380", 1_234_569, 2_254_857_830),
    PartStatus("prometheus", "stopped", "http://127.0.0.1:9090"),
    PartStatus(
        "lakehouse",
        "failed",
        f"{CHECKOUT}/.rtml/lake",
        1_234_570,
        1_073_741_824,
        f"not healthy; see {CHECKOUT}/.rtml/logs/lakehouse.log",
    ),
    PartStatus("producers", "running", "http://127.0.0.1:9101/metrics", 1_234_571, 80 * 2**20),
    PartStatus("api", "running", "http://127.0.0.1:8000/api/v1", detail="Serve says DEPLOYING"),
]


def test_status_reads_at_80_columns_with_details_below() -> None:
    text = _assert_reads_at_80(status_view(PARTS))
    assert f"{CHECKOUT}/.rtml/lake" in text and "lakehouse: not healthy" in text
    assert "api: Serve says DEPLOYING" in text


def test_status_wide_has_the_pid_and_the_detail() -> None:
    (table,) = status_view(PARTS, wide=True).renderables
    assert isinstance(table, Table) and {"pid", "detail"} <= set(_headers(table))


# -- rtml sql --tables, rtml lakehouse status -----------------------------------------------------


def test_lake_tables_read_at_80_columns() -> None:
    columns = [(f"column_{i}", "VARCHAR") for i in range(30)]
    tables = [
        SimpleNamespace(
            name=name,
            rows=12_345_678,
            files=1234,
            version=5678,
            partition_by=by,
            columns=columns,
        )
        for name, by in (
            ("tfd", ["event_date"]),
            ("quarantine", ["usecase", "event_date"]),
            ("ecci_predictions", ["event_date"]),
        )
    ]
    text = _assert_reads_at_80(lake_tables_view(tables, columns=True))
    assert "12,345,678" in text and "usecase, event_date" in text


def test_lakehouse_streams_read_at_80_columns() -> None:
    queries = {
        name: {
            "active": name != "ecci",
            "batch": 12_345,
            "rows": 12_345_678,
            "quarantined": 123_456,
            "last_input_rows": 500,
            "rows_per_s": 1234.567,
            "progress_at": "2026-01-01T12:34:56.789Z",
            "error": "StreamingQueryException: [STREAM_FAILED] Query [id = 1] terminated"
            if name == "ecci"
            else None,
        }
        for name in ("tfd", "eta", "ecci", "quarantine")
    }
    text = _assert_reads_at_80(streams_view(queries))
    assert "12345678" in text and "ecci: StreamingQueryException" in text
    (table, *_) = streams_view(queries, wide=True).renderables
    assert isinstance(table, Table) and "last progress" in _headers(table)


# -- rtml oracle ---------------------------------------------------------------------------------


@pytest.mark.parametrize("usecase", list(USECASES))
def test_oracle_reads_at_80_columns(usecase: str) -> None:
    gen = generator_for(usecase, seed=42)
    records = [(g.event, g.truth) for g in (next(gen) for _ in range(300))]
    report = oracle_report(get(usecase), records, seed=42)
    text = _assert_reads_at_80(oracle_table(get(usecase), report, "300 events, seed 42"))
    assert "oracle" in text


# -- rtml verify ---------------------------------------------------------------------------------


def test_verify_verdicts_read_at_80_columns() -> None:
    verdicts = [
        SimpleNamespace(
            scenario="learner-kills",
            passed=True,
            counts={
                "tfd": {
                    "learned": 30_000,
                    "valid": 30_000,
                    "lost": 0,
                    "repeated": 0,
                    "dead_lettered": 12,
                    "restored_from": "redis",
                },
                "kills": 3,
            },
            figures={"restart_s": 12.3456, "replayed": 1234},
            seconds=312.4,
        ),
        SimpleNamespace(
            scenario="overload",
            passed=False,
            counts={"requests": 123_456, "failed": 3, "statuses": {"200": 123_453, "503": 3}},
            figures={},
            seconds=95.0,
        ),
    ]
    text = _assert_reads_at_80(verdicts_view(verdicts))
    assert "learner-kills" in text and "FAILED" in text and "restored_from=redis" in text
