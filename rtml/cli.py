"""The ``rtml`` command line: the local stack, producers, and the oracle's scores.

The CLI is a composition root: it may reach into the adapters (``streaming/``) to start them.
"""

from __future__ import annotations

import json
import signal
from typing import Annotated

import typer
from rich.console import Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rtml.cli_common import console, err, settings_or_exit, usecase_names
from rtml.ray_env import apply_ray_env
from rtml.stack.kafka_dist import PrerequisiteMissing
from rtml.usecases import USECASES, UseCase

app = typer.Typer(
    help="rtml: a real-time ML runtime on Ray. Learn from a live stream, serve over HTTP.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _configure_ray() -> None:
    # Several commands join Ray as a driver (learn, up, verify, train): this process is
    # configured once, before any of them imports Ray (rtml.ray_env).
    apply_ray_env(settings_or_exit())


PartsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--part",
        "-p",
        help="Only this part (repeatable): kafka, redis, mlflow, ray, prometheus, lakehouse, "
        "producers.",
    ),
]


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def status_view(rows: list, wide: bool = False) -> Group:
    """The parts' table, whose default columns fit 80 columns; a part's detail (why it is not
    healthy) follows the table, unless ``wide`` gives it a column beside the pid."""
    columns = ["part", "state", "address", "pid", "memory", "detail"]
    if not wide:
        columns = [c for c in columns if c not in ("pid", "detail")]
    table = Table(title="rtml local stack")
    for column in columns:
        table.add_column(column)
    colour = {"running": "green", "started": "green", "external": "cyan", "stopped": "dim"}
    total = 0
    for r in rows:
        total += r.memory_bytes
        c = colour.get(r.state, "red")
        cells = {
            "part": r.name,
            "state": f"[{c}]{r.state}[/{c}]",
            "address": r.address,
            "pid": str(r.pid or ""),
            "memory": _gib(r.memory_bytes) if r.memory_bytes else "",
            "detail": r.detail,
        }
        table.add_row(*(cells[k] for k in columns))
    totals = {"part": "total", "memory": _gib(total)}
    table.add_row(*(totals.get(k, "") for k in columns), style="bold")
    details = [] if wide else [f"{r.name}: {r.detail}" for r in rows if r.detail]
    return Group(table, *details)


ProfileOption = Annotated[
    str | None,
    typer.Option(
        help="local (the default), or cluster: an S3 object store (SeaweedFS) for the lake and "
        "MLflow's artifacts, MLflow on PostgreSQL, a second Ray node (docs/cluster.md). "
        "Remembered in the state folder for later commands [default: RTML_PROFILE, or the "
        "state folder's]."
    ),
]


@app.command()
def up(only: PartsOption = None, profile: ProfileOption = None) -> None:
    """Start the local stack (Kafka, Redis, MLflow, Ray, Prometheus, lakehouse, producers).

    Waits until every part is healthy.

    Idempotent: what already runs is reported, not restarted. Any part can be an existing service
    instead (RTML_KAFKA_BOOTSTRAP, RTML_REDIS_URL, RTML_MLFLOW_TRACKING_URI, RTML_RAY_ADDRESS).
    """
    import os

    from rtml.settings import PROFILE_FILE, get_settings
    from rtml.stack import local

    if profile is not None:
        os.environ["RTML_PROFILE"] = profile
        get_settings.cache_clear()
    settings = settings_or_exit()
    # Every process the stack starts (Ray's nodes and their workers, the lakehouse, jobs)
    # inherits the profile, whatever folder it runs in.
    os.environ["RTML_PROFILE"] = settings.profile
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    (settings.state_dir / PROFILE_FILE).write_text(settings.profile + "\n")
    if settings.profile != "local":
        console.print(f"  profile: {settings.profile}")
    try:
        rows = local.up(settings, only, report=lambda line: console.print(f"  {line}"))
    except PrerequisiteMissing as exc:
        err.print(f"[red]cannot start: {exc}[/red]")
        raise typer.Exit(1) from None
    console.print(status_view(rows))
    console.print(f"logs: {settings.state_dir / 'logs'}   stop: rtml down")
    if any(r.state in ("failed", "unhealthy") for r in rows):
        raise typer.Exit(1)


@app.command()
def down(only: PartsOption = None) -> None:
    """Stop what `rtml up` started (by pid; nothing else is touched)."""
    from rtml.stack import local

    stopped = local.down(settings_or_exit(), only, report=lambda line: console.print(f"  {line}"))
    if not stopped:
        console.print("nothing was running")


@app.command()
def status(
    only: PartsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Every column: pid, detail.")] = False,
) -> None:
    """Show each part's state, address and memory (PSS of its process tree).

    --wide adds the pid and the detail (why a part is not healthy; otherwise below the table).
    """
    from rtml.stack import local

    rows = local.status(settings_or_exit(), only)
    if as_json:
        print(json.dumps([r.__dict__ for r in rows]))
    else:
        console.print(status_view(rows, wide))


UsecaseArg = Annotated[str, typer.Argument(help=f"One of {', '.join(USECASES)}, or 'all'.")]


@app.command()
def produce(
    usecase: UsecaseArg,
    rate: Annotated[
        float, typer.Option(help="Events/s per use case; 0 = as fast as possible.")
    ] = 100.0,
    count: Annotated[int, typer.Option(help="Events per use case; 0 = until interrupted.")] = 1000,
    seed: Annotated[int | None, typer.Option(help="Generator seed [default: RTML_SEED].")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Generate events with a known ground truth and send them to Kafka, keyed by entity id."""
    from streaming.producer import produce as run

    settings = settings_or_exit()
    from rtml.usecases.generators import GENERATORS

    names = usecase_names(usecase)
    if usecase == "all":  # a use case of your own has no simulated world to generate from
        names = [n for n in names if n in GENERATORS]
    elif names[0] not in GENERATORS:
        err.print(f"[red]{usecase} has no simulated world: its events come from your topic[/red]")
        raise typer.Exit(2)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not progress,
    )
    with bar:
        tasks = {n: bar.add_task(f"{n} → {USECASES[n].topic}", total=count or None) for n in names}
        report = run(
            settings,
            names,
            rate=rate,
            count=count,
            seed=seed,
            progress=lambda n, done: bar.update(tasks[n], completed=done),
            should_stop=lambda: stopping,
        )
    rate_s = report.delivered / report.seconds if report.seconds else 0.0
    console.print(
        f"delivered {report.delivered}, failed {report.failed}, undelivered {report.undelivered} "
        f"in {report.seconds:.1f}s ({rate_s:,.0f} events/s)"
    )
    for name, tally in report.tallies.items():
        for reason, n in tally.errors.items():
            err.print(f"[red]{name}: {n} failed: {reason}[/red]")
    if report.failed or report.undelivered:
        raise typer.Exit(1)


@app.command()
def topics() -> None:
    """Create the use cases' topics and dead-letter topics (idempotent)."""
    from streaming.topics import ensure_topics

    for topic, what in ensure_topics(settings_or_exit()).items():
        console.print(f"{topic}: {what}")


@app.command()
def oracle(
    usecase: UsecaseArg = "all",
    events: Annotated[int, typer.Option(help="Events to generate.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 42,
) -> None:
    """Score the oracle (the generator's own rules) and trivial baselines on generated events."""
    from rtml.scoring import oracle_report
    from rtml.usecases.generators import generator_for

    for name in usecase_names(usecase):
        spec = USECASES[name]
        if spec.oracle is None:
            console.print(f"{name}: no oracle (a use case of your own has no simulated world)")
            continue
        gen = generator_for(name, seed=seed)
        records = [(g.event, g.truth) for g in (next(gen) for _ in range(events))]
        report = oracle_report(spec, records, seed)
        console.print(oracle_table(spec, report, f"{events} events, seed {seed}"))


def oracle_table(spec: UseCase, report: dict[str, dict[str, float]], run: str) -> Table:
    """The oracle's and the baselines' scores (the primary metric starred)."""
    title = f"{spec.name}: {spec.title} ({run})"
    table = Table(title=title, min_width=len(title))  # as wide as its title: no wrapped title
    metrics = list(next(iter(report.values())))
    table.add_column("predictor")
    for m in metrics:
        table.add_column(m + (" *" if m == spec.primary_metric else ""), justify="right")
    for predictor, scores in report.items():
        table.add_row(predictor, *(f"{scores[m]:.4f}" for m in metrics))
    return table


from rtml.cli_lakehouse import app as lakehouse_app  # noqa: E402  (rtml lakehouse ..., rtml sql)

app.add_typer(lakehouse_app)
from rtml.cli_learn import app as learn_app  # noqa: E402  (rtml learn ...)

app.add_typer(learn_app, name="learn")
from rtml.cli_models import app as models_app  # noqa: E402  (rtml train, score, models ...)

app.add_typer(models_app)
from rtml.cli_k8s import app as k8s_app  # noqa: E402  (rtml k8s ...)

app.add_typer(k8s_app, name="k8s")
from rtml.cli_verify import verify  # noqa: E402  (rtml verify ...)

app.command()(verify)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
