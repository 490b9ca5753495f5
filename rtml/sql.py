"""A read-only SQL surface over the lake, for people (``rtml sql``) and for ``POST /api/v1/sql``.

Two independent walls stand between a query and anything outside the lake's tables:

1. **The guard** (:func:`check`) reads the query with DuckDB's own parser, never regexes: exactly
   one statement (so ``SELECT 1;\\nDROP ...`` or a tab before the second statement is two
   statements, refused), of type SELECT; then it walks the parsed tree (``json_serialize_sql``) and
   accepts only the lake's tables, the query's own CTEs and a few pure table functions
   (``range``, ``generate_series``, ``unnest``). ``read_csv('/etc/passwd')``,
   ``FROM '/etc/passwd'``, ``glob``, ``query``, catalog functions and every other table function
   are refused by name.
2. **The connection** that runs an accepted query has external access disabled (no file system,
   no extensions, no ATTACH), extension autoload/autoinstall off, Python replacement scans off, a
   memory limit, and its configuration locked, so no ``SET`` could undo any of it. A row limit and
   a timer that interrupts the connection bound what one query may cost.

Errors the caller made are :class:`SqlError` (``SqlRefused`` before running, ``SqlFailed`` while
running, ``SqlTimeout`` past the time limit); their message is fit for an HTTP 400 body.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from rtml.lake import BASE_DUCKDB_CONFIG, DuckDBConfig, Lake
from rtml.settings import Settings

#: Table functions that compute values and touch nothing outside the query.
SAFE_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})

#: How the connection that runs user SQL is locked down. Order matters only in that
#: ``lock_configuration`` must come with the rest: once locked, nothing can be changed.
LOCKED_CONFIG: DuckDBConfig = {
    **BASE_DUCKDB_CONFIG,
    "enable_external_access": False,
    "allow_community_extensions": False,
    "lock_configuration": True,
}


#: DuckDB files INSTALL under LOAD, PIVOT under MULTI, CHECKPOINT under CALL: say it plainly.
_KIND_NAMES = {"LOAD": "INSTALL/LOAD", "MULTI": "multi-statement (PIVOT/UNPIVOT)"}


class SqlError(ValueError):
    """A query the caller got wrong; the message says what, and is safe to send back."""


class SqlRefused(SqlError):
    """The query was refused before it ran (not a single read-only statement over the lake)."""


class SqlFailed(SqlError):
    """The query was accepted but DuckDB could not run it (unknown column, bad cast, ...)."""


class SqlTimeout(SqlFailed):
    """The query ran past the time limit and was interrupted."""


@dataclass(frozen=True)
class SqlResult:
    table: pa.Table
    truncated: bool  # more rows existed than the row limit
    seconds: float

    def rows(self) -> list[dict[str, Any]]:
        """JSON-friendly rows (timestamps and dates as ISO strings) for an HTTP answer."""
        out = []
        for row in self.table.to_pylist():
            out.append({k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()})
        return out


def _parse_tree(sql: str) -> dict[str, Any]:
    """DuckDB's own parse of the query as JSON (works on a connection with nothing attached)."""
    with duckdb.connect(config=LOCKED_CONFIG) as con:
        row = con.execute("SELECT json_serialize_sql($1)", [sql]).fetchone()
    assert row is not None
    return json.loads(row[0])


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    if isinstance(tree, dict):
        yield tree
        for value in tree.values():
            yield from _nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _nodes(value)


def check(sql: str, tables: set[str] | frozenset[str]) -> None:
    """Refuse anything but one SELECT that reads only ``tables`` (case-insensitive names)."""
    if not sql.strip():
        raise SqlRefused("empty query: send one SELECT statement")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise SqlRefused(f"not valid SQL: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise SqlRefused(
            f"{len(statements)} statements: only one statement may run (a ';' followed by another "
            "statement, on the same line or after a newline or tab, is a second statement)"
        )
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        what = _KIND_NAMES.get(kind.name, kind.name)
        raise SqlRefused(f"{what} statements are not allowed: only a read (SELECT) runs here")
    tree = _parse_tree(sql)
    if tree.get("error"):
        raise SqlRefused(f"only plain SELECT queries are allowed: {tree.get('error_message', '')}")
    known = {t.lower() for t in tables}
    ctes = {
        str(entry["key"]).lower()
        for node in _nodes(tree)
        if isinstance(node.get("cte_map"), dict)
        for entry in node["cte_map"].get("map", [])
    }
    for node in _nodes(tree):
        ref = node.get("type")
        if ref == "BASE_TABLE":
            name = str(node.get("table_name", ""))
            if node.get("schema_name") or node.get("catalog_name"):
                raise SqlRefused(
                    f"qualified table names are not allowed: {name!r}; use the bare name"
                )
            if name.lower() not in known | ctes:
                tables_list = ", ".join(sorted(tables)) or "none yet"
                raise SqlRefused(
                    f"unknown table {name!r}: only the lake's tables can be read ({tables_list})"
                )
        elif ref == "TABLE_FUNCTION":
            function = node.get("function") or {}
            name = str(function.get("function_name", "?"))
            if (
                name.lower() not in SAFE_TABLE_FUNCTIONS
                or function.get("schema")
                or function.get("catalog")
            ):
                raise SqlRefused(
                    f"table function {name}() is not allowed: only the lake's tables can be read "
                    f"(allowed functions: {', '.join(sorted(SAFE_TABLE_FUNCTIONS))})"
                )
        elif ref == "SHOW_REF" and node.get("query") is None:
            raise SqlRefused(
                "SHOW is not allowed; `rtml sql --tables` lists the tables and columns"
            )


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def run(
    sql: str,
    settings: Settings,
    lake: Lake | None = None,
    row_limit: int | None = None,
    timeout_s: float | None = None,
) -> SqlResult:
    """Check and run one read-only query over the lake; at most ``row_limit`` rows come back."""
    lake = lake or Lake(settings)
    limit = row_limit or settings.sql_row_limit
    timeout = timeout_s or settings.sql_timeout_s
    check(sql, set(lake.tables))
    con = lake.connect({**LOCKED_CONFIG, "memory_limit": settings.sql_memory_limit})
    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        con.interrupt()

    timer = threading.Timer(timeout, interrupt)
    t0 = time.monotonic()
    timer.start()
    try:
        reader = con.sql(sql).to_arrow_reader(min(limit + 1, 100_000))
        batches, rows = [], 0
        for batch in reader:
            batches.append(batch)
            rows += batch.num_rows
            if rows > limit:
                break
        table = pa.Table.from_batches(batches, schema=reader.schema).slice(0, limit)
    except duckdb.InterruptException:
        raise SqlTimeout(f"query interrupted after the {timeout:g} s time limit") from None
    except duckdb.Error as exc:
        if timed_out.is_set():
            raise SqlTimeout(f"query interrupted after the {timeout:g} s time limit") from None
        raise SqlFailed(f"{type(exc).__name__}: {_first_line(exc)}") from None
    finally:
        timer.cancel()
        con.close()
    return SqlResult(table, truncated=rows > limit, seconds=time.monotonic() - t0)
