"""``rtml lakehouse start|stop|status|optimize|vacuum`` and ``rtml sql``.

Registered on the main CLI with ``app.add_typer(app)`` (no name: its commands join the top level).
Heavy imports (pyspark never; duckdb and deltalake only when a command needs them) stay inside
the commands, so ``rtml --help`` remains fast.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Group
from rich.markup import escape
from rich.table import Table

from rtml.cli_common import console, err, settings_or_exit

app = typer.Typer()
lakehouse = typer.Typer(
    help="The Spark job that lands every topic in Delta tables (bronze + quarantine).",
    no_args_is_help=True,
)
app.add_typer(lakehouse, name="lakehouse")

TablesArg = Annotated[
    list[str] | None, typer.Argument(help="Tables (tfd, eta, ecci, quarantine); default: all.")
]


def _tables(names: list[str] | None) -> list[str] | None:
    from rtml.lake import table_names

    unknown = set(names or ()) - set(table_names())
    if unknown:
        err.print(
            f"[red]unknown table(s) {sorted(unknown)}; tables: {', '.join(table_names())}[/red]"
        )
        raise typer.Exit(2)
    return names or None


@lakehouse.command()
def start() -> None:
    """Start the lakehouse job (after Kafka) and wait until its streams run."""
    from rtml.kafka import broker_ready
    from rtml.stack import local
    from rtml.stack.kafka_dist import PrerequisiteMissing

    settings = settings_or_exit()
    if not broker_ready(settings, timeout=5):
        err.print(
            f"[red]no Kafka broker at {settings.kafka_servers}: "
            "start it first (rtml up -p kafka)[/red]"
        )
        raise typer.Exit(1)
    try:
        (row,) = local.up(settings, ["lakehouse"], report=lambda line: console.print(f"  {line}"))
    except PrerequisiteMissing as exc:
        err.print(f"[red]cannot start: {exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"lakehouse: {row.state} (pid {row.pid}), lake at {row.address}")
    if row.state in ("failed", "unhealthy"):
        err.print(f"[red]{row.detail}[/red]")
        raise typer.Exit(1)


@lakehouse.command()
def stop() -> None:
    """Stop the lakehouse job (its checkpoints keep its place in every topic)."""
    from rtml.stack import local

    if not local.down(
        settings_or_exit(), ["lakehouse"], report=lambda line: console.print(f"  {line}")
    ):
        console.print("the lakehouse was not running")


@lakehouse.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    wide: Annotated[
        bool, typer.Option("--wide", help="Every column: last batch rows, last progress.")
    ] = False,
) -> None:
    """The job's state, each stream's progress, and each table's rows and files."""
    from rtml.lake import Lake
    from rtml.stack import local
    from rtml.stack.parts import Lakehouse

    settings = settings_or_exit()
    (row,) = local.status(settings, ["lakehouse"])
    job = Lakehouse(settings).job_status() or {}
    tables = Lake(settings).info()
    if as_json:
        print(
            json.dumps(
                {
                    "part": row.__dict__,
                    "queries": job.get("queries", {}),
                    "tables": [
                        {
                            "name": t.name,
                            "rows": t.rows,
                            "files": t.files,
                            "version": t.version,
                            "uri": t.uri,
                        }
                        for t in tables
                    ],
                }
            )
        )
        return
    memory = f", {row.memory_bytes / 2**20:.0f} MiB" if row.memory_bytes else ""
    console.print(f"lakehouse: {row.state} (pid {row.pid or '-'}{memory}), lake at {row.address}")
    if job.get("queries"):
        console.print(streams_view(job["queries"], wide))
    _print_tables(tables)


def streams_view(queries: dict[str, dict], wide: bool = False) -> Group:
    """Each stream's progress; the default columns fit 80 columns, and a stream's error follows
    the table (``wide`` adds the last batch's rows and time)."""
    columns = ["use case", "active", "batch", "rows landed", "quarantined", "last batch rows"]
    columns += ["rows/s", "last progress"]
    if not wide:
        columns = [c for c in columns if c not in ("last batch rows", "last progress")]
    streams = Table(title="streams")
    for column in columns:
        streams.add_column(column)
    for name, q in queries.items():
        cells = {
            "use case": name,
            "active": str(q["active"]),
            "batch": str(q["batch"]),
            "rows landed": str(q["rows"]),
            "quarantined": str(q["quarantined"]),
            "last batch rows": str(q["last_input_rows"]),
            "rows/s": f"{q['rows_per_s'] or 0:.1f}",
            "last progress": str(q["progress_at"] or ""),
        }
        streams.add_row(*(cells[k] for k in columns))
    errors = [f"{name}: {escape(str(q['error']))}" for name, q in queries.items() if q["error"]]
    return Group(streams, *errors)


def _print_tables(tables: list, columns: bool = False) -> None:
    if not tables:
        console.print("no tables yet: the lakehouse creates them when it starts")
        return
    console.print(lake_tables_view(tables, columns))


def lake_tables_view(tables: list, columns: bool = False) -> Group:
    """The lake's tables, and with ``columns`` each one's columns below (prose, not cells)."""
    out = Table(title="lake tables")
    for column in ("table", "rows", "files", "version", "partitioned by"):
        out.add_column(column)
    for t in tables:
        out.add_row(t.name, f"{t.rows:,}", str(t.files), str(t.version), ", ".join(t.partition_by))
    listed = [
        f"[bold]{t.name}[/bold]: " + ", ".join(f"{c} [dim]{kind}[/dim]" for c, kind in t.columns)
        for t in tables
    ]
    return Group(out, *(listed if columns else []))


@lakehouse.command()
def optimize(tables: TablesArg = None) -> None:
    """Compact the small files that streaming leaves (Delta OPTIMIZE); safe while it runs."""
    from rtml.lake import optimize as compact

    for c in compact(settings_or_exit(), _tables(tables)):
        console.print(
            f"{c.name}: {c.files_removed} files compacted into {c.files_added} "
            f"(version {c.version})"
        )


@lakehouse.command()
def vacuum(
    tables: TablesArg = None,
    retention_hours: Annotated[int, typer.Option(help="Keep files younger than this.")] = 168,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Allow a retention below the tables' 7 days.")
    ] = False,
) -> None:
    """Delete data files that no table version still needs (Delta VACUUM)."""
    from deltalake.exceptions import DeltaError

    from rtml.lake import vacuum as clean

    try:
        done = clean(settings_or_exit(), retention_hours, dry_run, force, _tables(tables))
    except DeltaError as exc:
        err.print(f"[red]{exc}[/red] (use --force to go below the retention)")
        raise typer.Exit(1) from None
    for name, files in done.items():
        console.print(f"{name}: {len(files)} files {'would be ' if dry_run else ''}deleted")


@app.command()
def sql(
    query: Annotated[str | None, typer.Argument(help="One SELECT over the lake's tables.")] = None,
    tables: Annotated[
        bool, typer.Option("--tables", help="List tables, columns and rows.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option(help="Most rows [default: RTML_SQL_ROW_LIMIT].")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="Seconds before it is interrupted [default: RTML_SQL_TIMEOUT_S]."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Rows as JSON lines.")] = False,
) -> None:
    """Run one read-only SELECT over the lake (DuckDB over Delta), e.g.
    rtml sql "SELECT is_fraud, count(*) FROM tfd GROUP BY ALL"."""
    from rtml.lake import Lake
    from rtml.sql import SqlError, run

    settings = settings_or_exit()
    lake = Lake(settings)
    if tables:
        _print_tables(lake.info(), columns=True)
        return
    if not query:
        err.print("[red]give a query, or --tables[/red]")
        raise typer.Exit(2)
    try:
        result = run(query, settings, lake, row_limit=limit, timeout_s=timeout)
    except SqlError as exc:
        err.print(f"[red]{type(exc).__name__}: {exc}[/red]")
        raise typer.Exit(1) from None
    if as_json:
        for row in result.rows():
            print(json.dumps(row))
        return
    out = Table()
    for name in result.table.column_names:
        out.add_column(name, overflow="fold")
    for row in result.table.to_pylist():
        out.add_row(*("NULL" if v is None else str(v) for v in row.values()))
    console.print(out)
    more = f", truncated at the row limit of {result.table.num_rows}" if result.truncated else ""
    err.print(f"{result.table.num_rows} rows in {result.seconds:.3f}s{more}")
