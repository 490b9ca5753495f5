"""The read-only SQL surface over a small real Delta lake written to tmp_path.

Every attack is refused with a message fit for an HTTP 400; a canary file proves nothing outside
the tables is read, and a snapshot of the folder proves nothing is written. Behind the guard, the
locked DuckDB connection refuses file access on its own (defence in depth).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from rtml.lake import Lake, table_uri
from rtml.settings import Settings, load_settings
from rtml.sql import LOCKED_CONFIG, SqlFailed, SqlRefused, SqlTimeout, check, run
from rtml.usecases import USECASES
from rtml.usecases.generators import generator_for

SECRET = "canary-7f3a1c"


@pytest.fixture(scope="module")
def lake_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lake")
    settings = load_settings(state_dir=root / "state")
    spec = USECASES["tfd"]
    events = [
        spec.parse(next(gen).event).model_dump()
        for gen in [generator_for("tfd", seed=5)]
        for _ in range(500)
    ]
    columns = {name: [e[name] for e in events] for name in spec.event.model_fields}
    columns["timestamp"] = pa.array(columns["timestamp"], pa.timestamp("us", tz="UTC"))
    columns["kafka_partition"] = [0] * len(events)
    columns["kafka_offset"] = list(range(len(events)))
    write_deltalake(table_uri(settings, "tfd"), pa.table(columns))
    write_deltalake(
        table_uri(settings, "quarantine"),
        pa.table({"usecase": ["tfd"], "reason": ["user_id: Field required"], "value": ["{}"]}),
    )
    (root / "canary.csv").write_text(f"secret\n{SECRET}\n")
    return root


@pytest.fixture()
def settings(lake_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(lake_dir)  # relative paths in attacks point at the canary's folder
    return load_settings(state_dir=lake_dir / "state")


def _tree(root: Path) -> dict[str, tuple[int, float]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime) for p in root.rglob("*")
    }


ALLOWED = [
    ("SELECT count(*) AS n FROM tfd", [{"n": 500}]),
    ("select count(*) as n from TFD;", [{"n": 500}]),  # trailing semicolon, any case
    (
        "WITH f AS (SELECT * FROM tfd WHERE NOT is_fraud) SELECT count(*) > 0 AS some FROM f",
        [{"some": True}],
    ),
    ("SELECT reason FROM quarantine", [{"reason": "user_id: Field required"}]),
    ("SELECT t.currency, count(*) FROM tfd t JOIN quarantine q ON true GROUP BY ALL", None),
    ("FROM tfd SELECT max(amount) -- a comment; DROP TABLE tfd", None),
    ("SELECT * FROM range(3) r(i), unnest([1, 2]) u(j)", None),
    ("SUMMARIZE tfd", None),
    ("DESCRIBE SELECT amount FROM tfd", None),
    ("SELECT hour(timezone('UTC', timestamp)) AS h, count(*) FROM tfd GROUP BY 1", None),
]


@pytest.mark.parametrize("sql, expected", ALLOWED, ids=[a[0][:40] for a in ALLOWED])
def test_read_queries_over_the_lake_run(
    settings: Settings, sql: str, expected: list | None
) -> None:
    result = run(sql, settings)
    assert result.table.num_rows > 0
    if expected is not None:
        assert result.rows() == expected


ATTACKS = [
    ("SELECT 1; DROP TABLE tfd", "2 statements"),
    ("SELECT 1;\nDROP TABLE tfd", "2 statements"),
    ("SELECT 1;\tDELETE FROM tfd", "2 statements"),
    ("SELECT 1\n;\n\tCOPY tfd TO 'out.csv'", "2 statements"),
    ("COPY tfd TO 'out.csv'", "COPY statements are not allowed"),
    (
        "COPY (SELECT * FROM tfd) TO 'out.parquet' (FORMAT parquet)",
        "COPY statements are not allowed",
    ),
    ("ATTACH 'other.db' AS other", "ATTACH statements are not allowed"),
    ("DETACH memory", "DETACH statements are not allowed"),
    ("INSTALL httpfs", "INSTALL/LOAD statements are not allowed"),
    ("LOAD httpfs", "INSTALL/LOAD statements are not allowed"),
    ("PRAGMA enable_external_access", "PRAGMA statements are not allowed"),
    ("SET enable_external_access = true", "SET statements are not allowed"),
    ("RESET lock_configuration", "statements are not allowed"),
    ("CREATE TABLE stolen AS SELECT * FROM tfd", "CREATE statements are not allowed"),
    ("CREATE VIEW v AS SELECT 1", "CREATE statements are not allowed"),
    ("DROP TABLE tfd", "DROP statements are not allowed"),
    ("ALTER TABLE tfd RENAME TO x", "ALTER statements are not allowed"),
    ("INSERT INTO tfd SELECT * FROM tfd", "INSERT statements are not allowed"),
    ("UPDATE tfd SET amount = 0", "UPDATE statements are not allowed"),
    ("DELETE FROM tfd", "DELETE statements are not allowed"),
    ("EXPORT DATABASE 'dump'", "EXPORT statements are not allowed"),
    ("CALL pragma_version()", "CALL statements are not allowed"),
    ("EXPLAIN SELECT 1", "EXPLAIN statements are not allowed"),
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv() is not allowed"),
    ("SELECT * FROM read_csv_auto('canary.csv')", "read_csv_auto() is not allowed"),
    ("SELECT * FROM read_text('canary.csv')", "read_text() is not allowed"),
    ("SELECT * FROM read_blob('/etc/passwd')", "read_blob() is not allowed"),
    (
        "SELECT * FROM read_parquet('state/lake/bronze/tfd/*.parquet')",
        "read_parquet() is not allowed",
    ),
    ("SELECT * FROM read_json('canary.csv')", "read_json() is not allowed"),
    ("SELECT * FROM sniff_csv('canary.csv')", "sniff_csv() is not allowed"),
    ("SELECT * FROM glob('*')", "glob() is not allowed"),
    ("SELECT * FROM '/etc/passwd'", "unknown table '/etc/passwd'"),
    ("SELECT * FROM 'canary.csv'", "unknown table 'canary.csv'"),
    (
        "SELECT * FROM tfd WHERE amount IN (SELECT 1 FROM read_csv('canary.csv'))",
        "read_csv() is not allowed",
    ),
    (
        "WITH x AS (SELECT * FROM read_text('canary.csv')) SELECT * FROM x",
        "read_text() is not allowed",
    ),
    (
        "SELECT * FROM tfd, LATERAL (SELECT * FROM read_blob('canary.csv'))",
        "read_blob() is not allowed",
    ),
    ("SELECT * FROM query('SELECT * FROM read_text(''canary.csv'')')", "query() is not allowed"),
    ("SELECT * FROM duckdb_settings()", "duckdb_settings() is not allowed"),
    ("SELECT * FROM information_schema.tables", "qualified table names are not allowed"),
    ("SELECT * FROM system.main.tfd", "qualified table names are not allowed"),
    ("SHOW TABLES", "SHOW is not allowed"),
    ("PIVOT tfd ON currency USING count(*)", "statements are not allowed"),
    ("", "empty query"),
    ("SELEC 1", "not valid SQL"),
]


@pytest.mark.parametrize("sql, message", ATTACKS, ids=[a[0][:40] for a in ATTACKS])
def test_attacks_are_refused_with_a_clear_message(
    settings: Settings, sql: str, message: str
) -> None:
    with pytest.raises(SqlRefused) as refused:
        run(sql, settings)
    assert message in str(refused.value)
    assert SECRET not in str(refused.value)


def test_nothing_outside_the_tables_is_written_or_read(settings: Settings, lake_dir: Path) -> None:
    before = _tree(lake_dir)
    time.sleep(0.01)  # an mtime changed by any write would differ
    for sql, _ in ATTACKS:
        with pytest.raises(SqlRefused) as refused:
            run(sql, settings)
        assert SECRET not in str(refused.value)
    assert _tree(lake_dir) == before, "an attack created or changed a file"
    assert not any(
        Path(os.getcwd(), name).exists() for name in ("out.csv", "out.parquet", "other.db", "dump")
    )


def test_the_locked_connection_refuses_files_even_without_the_guard(settings: Settings) -> None:
    """Defence in depth: run attacks on the execution connection directly, bypassing check()."""
    con = Lake(settings).connect(LOCKED_CONFIG)
    for sql in (
        "SELECT * FROM read_csv('canary.csv')",
        "SELECT * FROM 'canary.csv'",
        "COPY (SELECT 1) TO 'out.csv'",
        "ATTACH 'other.db'",
    ):
        with pytest.raises(duckdb.Error) as refused:
            con.sql(sql).fetchall()
        assert SECRET not in str(refused.value)
    with pytest.raises(duckdb.Error, match="locked"):
        con.execute("SET enable_external_access = true")
    assert con.sql("SELECT current_setting('enable_external_access')").fetchall() == [(False,)]
    assert not Path("out.csv").exists() and not Path("other.db").exists()


def test_a_python_variable_is_not_a_table(settings: Settings) -> None:
    secret_frame = pa.table({"secret": [SECRET]})  # noqa: F841  (DuckDB could scan it by name)
    with pytest.raises(SqlRefused, match="unknown table 'secret_frame'"):
        run("SELECT * FROM secret_frame", settings)
    con = Lake(settings).connect(LOCKED_CONFIG)
    with pytest.raises(duckdb.Error):
        con.sql("SELECT * FROM secret_frame").fetchall()


def test_row_limit_truncates_and_says_so(settings: Settings) -> None:
    result = run("SELECT * FROM tfd", settings, row_limit=7)
    assert result.table.num_rows == 7 and result.truncated
    whole = run("SELECT * FROM tfd", settings, row_limit=500)
    assert whole.table.num_rows == 500 and not whole.truncated


def test_a_long_query_is_interrupted_at_the_time_limit(settings: Settings) -> None:
    t0 = time.monotonic()
    with pytest.raises(SqlTimeout, match="time limit"):
        run("SELECT count(*) FROM range(10000000000000) a", settings, timeout_s=0.5)
    assert time.monotonic() - t0 < 5


def test_a_bad_column_fails_with_duckdbs_message(settings: Settings) -> None:
    with pytest.raises(SqlFailed, match="no_such_column"):
        run("SELECT no_such_column FROM tfd", settings)


def test_check_is_usable_alone_for_an_http_400() -> None:
    check("SELECT * FROM tfd", {"tfd"})
    with pytest.raises(SqlRefused, match="unknown table 'eta'"):
        check("SELECT * FROM eta", {"tfd"})


def test_batch_features_from_delta_match_the_online_features(settings: Settings) -> None:
    """The spec's one feature definition, read through deltalake → Arrow → DuckDB."""
    spec = USECASES["tfd"]
    table = Lake(settings).features("tfd", extra_columns=["kafka_offset"])
    gen = generator_for("tfd", seed=5)
    events = [spec.parse(next(gen).event) for _ in range(500)]
    rows = sorted(table.to_pylist(), key=lambda r: r["kafka_offset"])
    assert len(rows) == len(events)
    for online, row in zip(spec.features_in_order(events), rows, strict=True):
        for name, value in online.items():
            assert (
                row[name] == pytest.approx(value)
                if isinstance(value, float)
                else row[name] == value
            )
