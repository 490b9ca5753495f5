"""``rtml train``, ``rtml score`` and ``rtml models``: batch models through Ray Jobs and MLflow.

``train`` and ``score`` submit ``jobs.tune`` / ``jobs.score`` as Ray jobs (``rtml.ray_jobs``: what
``ray job submit --working-dir . -- python -m jobs.tune ...`` does), then follow the job's log,
show progress, and exit non-zero when the job fails.

Registered on the main CLI with ``app.add_typer(app)`` (no name: its commands join the top level).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from rtml.cli_common import console, err, settings_or_exit, usecase_names
from rtml.settings import Settings
from rtml.usecases import USECASES, UseCase

if TYPE_CHECKING:
    from typer._click import Context  # the Click that Typer vendors, which TyperGroup takes

app = typer.Typer()
UsecaseArg = Annotated[str, typer.Argument(help=f"One of {', '.join(USECASES)}.")]


def _one(usecase: str) -> str:
    """One use case by name ('all' is not one); exit 2 otherwise."""
    if usecase == "all":
        err.print(f"[red]name one use case: {', '.join(USECASES)}[/red]")
        raise typer.Exit(2)
    return usecase_names(usecase)[0]


def submit(settings: Settings, entrypoint: list[str]) -> tuple[Any, str]:
    from rtml import ray_jobs

    try:
        return ray_jobs.submit(settings, entrypoint)
    except ConnectionError as exc:
        err.print(f"[red]{exc}; `rtml up` first[/red]")
        raise typer.Exit(1) from None


def follow(client: Any, job_id: str, on_line: Any) -> str:
    """Hand every line of the job's log to ``on_line`` until it ends; return its final status.
    Ctrl-C stops the job."""

    async def tail() -> None:
        pending = ""
        async for chunk in client.tail_job_logs(job_id):
            pending += chunk
            *lines, pending = pending.split("\n")
            for line in lines:
                on_line(line)
        if pending:
            on_line(pending)

    try:
        asyncio.run(tail())
    except KeyboardInterrupt:
        client.stop_job(job_id)
        err.print(f"[yellow]stopped job {job_id}[/yellow]")
        raise typer.Exit(130) from None
    return str(client.get_job_status(job_id))


def _finish(client: Any, job_id: str, status: str, tail: list[str]) -> None:
    if status.endswith("SUCCEEDED"):
        return
    err.print(f"[red]job {job_id} ended {status}; the end of its log:[/red]")
    for line in tail[-40:]:
        err.print(line, markup=False, highlight=False)
    raise typer.Exit(1)


@app.command()
def train(
    usecase: UsecaseArg,
    trials: Annotated[int, typer.Option(help="Configurations to try.")] = 16,
    max_rows: Annotated[int | None, typer.Option(help="Only the newest N rows.")] = None,
    every: Annotated[
        str | None,
        typer.Option(help="Sweep again at this interval (30m, 1h, 1d) until stopped."),
    ] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Submit and return.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the job's whole log.")
    ] = False,
) -> None:
    """Sweep the use case's batch model on Ray Tune (a Ray job), register the best in MLflow and
    make it champion if it beats the current one on the same holdout."""
    name = _one(usecase)
    settings = settings_or_exit()
    from rtml.ray_jobs import SweepLog, sweep_entrypoint

    entry = sweep_entrypoint(name, trials, max_rows, every)
    client, job_id = submit(settings, entry)
    console.print(f"submitted {job_id} ({' '.join(entry)}); dashboard {settings.ray_dashboard_url}")
    if detach:
        return
    log: list[str] = []
    said = SweepLog()
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[best]}"),
        console=err,
    )
    with bar:
        task = bar.add_task(f"{name} trials", total=trials, best="")

        def on_line(line: str) -> None:
            log.append(line)
            done = len(said.progress)
            said.read(line)
            if len(said.progress) > done:
                bar.update(
                    task, completed=said.progress[-1]["done"], total=said.progress[-1]["total"]
                )
            elif line.startswith("rtml: ") or (
                verbose and not line.startswith(("SWEEP ", "RESULT "))
            ):
                bar.console.print(line.removeprefix("rtml: "), markup=False, highlight=False)

        status = follow(client, job_id, on_line)
    _finish(client, job_id, status, log)
    result = said.result
    if result:
        gate = result["gate"]
        console.print(
            f"{name}: version {result['version']} — holdout {json.dumps(result['holdout'])}; "
            f"gate [bold]{gate['decision']}[/bold] ({gate['metric']} {gate['candidate_score']:.4g}"
            + (
                f" vs champion v{gate['champion_version']} {gate['champion_score']:.4g})"
                if gate["champion_score"] is not None
                else ")"
            )
            + f" in {result['seconds']:.0f}s"
        )


@app.command()
def score(
    usecase: UsecaseArg,
    since: Annotated[
        str | None, typer.Option(help="Only events at or after this date (UTC).")
    ] = None,
    version: Annotated[
        int | None, typer.Option(help="A model version [default: champion].")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the job's whole log.")
    ] = False,
) -> None:
    """Score the use case's lake rows with the champion on Ray Data (a Ray job) and append them
    to the <usecase>_predictions table."""
    name = _one(usecase)
    settings = settings_or_exit()
    entry = ["python", "-m", "jobs.score", "--usecase", name]
    entry += ["--since", since] if since else []
    entry += ["--version", str(version)] if version else []
    client, job_id = submit(settings, entry)
    console.print(f"submitted {job_id} ({' '.join(entry)})")
    log: list[str] = []
    result: dict[str, Any] = {}

    def on_line(line: str) -> None:
        log.append(line)
        if line.startswith("RESULT "):
            result.update(json.loads(line.removeprefix("RESULT ")))
        elif verbose:
            err.print(line, markup=False, highlight=False)

    with err.status(f"scoring {name}…"):
        status = follow(client, job_id, on_line)
    _finish(client, job_id, status, log)
    if result:
        console.print(
            f"{name}: {result['rows']:,} rows scored by version {result['version']} into "
            f"{result['table']} in {result['seconds']:.1f}s ({result['rows_per_s']:,.0f} rows/s)"
        )


# -- rtml models ---------------------------------------------------------------------------------


class _ModelsGroup(TyperGroup):
    """``rtml models tfd`` lists; ``rtml models promote|rollback ...`` act."""

    def resolve_command(self, ctx: Context, args: list[str]) -> Any:
        if args and args[0] not in self.commands and args[0] in USECASES:
            args = ["list", *args]
        return super().resolve_command(ctx, args)


models = typer.Typer(
    cls=_ModelsGroup,
    no_args_is_help=True,
    help="Batch model versions in the MLflow registry: `rtml models USECASE` lists them; "
    "promote and rollback move the champion alias.",
)
app.add_typer(models, name="models")


def _registry_call(fn: Any, *args: Any) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return fn(*args)
    except (MlflowException, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@models.command("list")
def list_versions(
    usecase: UsecaseArg,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    wide: Annotated[
        bool, typer.Option("--wide", help="Every column: all holdout metrics, creation time.")
    ] = False,
) -> None:
    """Versions, primary holdout score, aliases and the promotion gate's decisions.

    --wide adds every holdout metric and when each version was created.
    """
    from rtml.store import registry

    name = _one(usecase)
    found = _registry_call(registry.versions, settings_or_exit(), name)
    if as_json:
        print(json.dumps([v.__dict__ for v in found]))
        return
    if not found:
        console.print(f"no versions of {registry.model_name(name)} yet: `rtml train {name}`")
        return
    console.print(versions_table(USECASES[name], registry.model_name(name), found, wide))


def versions_table(spec: UseCase, model_name: str, found: list, wide: bool = False) -> Table:
    """A model's versions; the default columns (of the metrics, the primary one) fit 80 columns."""
    metrics = sorted({m for v in found for m in v.metrics}, key=lambda m: m != spec.primary_metric)
    if not wide:
        metrics = [m for m in metrics if m == spec.primary_metric]
    columns = ["version", "aliases", *metrics, "share of oracle", "gate", "vs champion", "created"]
    if not wide:
        columns.remove("created")
    table = Table(
        title=f"{model_name} (primary: {spec.primary_metric}, "
        f"{'higher' if spec.higher_is_better else 'lower'} is better)"
    )
    for column in columns:
        table.add_column(column)
    for v in found:
        t = v.tags
        versus = ""
        if t.get("gate.champion_score"):
            versus = f"v{t['gate.champion_version']} {float(t['gate.champion_score']):.4g}"
        share = t.get("share_of_oracle")
        cells = {
            "version": str(v.version),
            "aliases": ", ".join(v.aliases),
            **{m: f"{v.metrics[m]:.4g}" if m in v.metrics else "" for m in metrics},
            "share of oracle": f"{float(share):.0%}" if share else "",
            "gate": v.gate,
            "vs champion": versus,
            "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created)),
        }
        table.add_row(*(cells[k] for k in columns))
    return table


@models.command()
def promote(
    usecase: UsecaseArg, version: Annotated[int, typer.Argument(help="The version.")]
) -> None:
    """Make a version champion by hand (the gate is bypassed; the move is recorded)."""
    from rtml.store import registry

    name = _one(usecase)
    _registry_call(registry.promote, settings_or_exit(), name, version)
    console.print(f"{registry.model_name(name)}: version {version} is champion")


@models.command()
def rollback(usecase: UsecaseArg) -> None:
    """Move the champion alias back to the previous champion."""
    from rtml.store import registry

    name = _one(usecase)
    back = _registry_call(registry.rollback, settings_or_exit(), name)
    console.print(f"{registry.model_name(name)}: champion rolled back to version {back}")
