"""``rtml learn start|stop|status|reset``: the online learners, as detached named Ray actors."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

import ray_apps  # noqa: F401  (configures Ray's environment before any `import ray` below)
from rtml.cli_common import console, err, settings_or_exit, usecase_names
from rtml.usecases import USECASES

app = typer.Typer(
    help="Online learners: Ray actors that learn each use case from Kafka.", no_args_is_help=True
)

UsecaseArg = Annotated[str, typer.Argument(help=f"One of {', '.join(USECASES)}, or 'all'.")]


def _connect():  # the composition root reaches into the Ray adapter
    from ray_apps.learning import actor as learner

    try:
        learner.connect(settings_or_exit())
    except (ConnectionError, RuntimeError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    return learner


def _params(values: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r}: expected KEY=VALUE, e.g. n_models=5")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw  # a bare string, e.g. split_criterion=gini
    return out


@app.command()
def start(
    usecase: UsecaseArg = "all",
    param: Annotated[
        list[str],
        typer.Option(
            "--param",
            "-P",
            help="Online model hyperparameter over the spec's default and RTML_LEARNER_PARAMS "
            "(repeatable), e.g. -P n_models=5. Applies to a learner that is not running yet.",
        ),
    ] = [],  # noqa: B006 - typer's way to declare a repeatable option
) -> None:
    """Start the learner of a use case (or all); it resumes from its latest checkpoint."""
    names = usecase_names(usecase)
    overrides = _params(param)
    learner = _connect()
    settings = settings_or_exit()
    for name in names:
        shards = settings.learner_shards
        for shard in range(shards):
            learner.start(
                name,
                shard,
                shards,
                model_overrides=overrides,
                settings=learner.service_addresses(settings),
            )
            console.print(f"{name}[{shard}/{shards}]: started (or already running)")


@app.command()
def stop(usecase: UsecaseArg = "all") -> None:
    """Stop a learner after a final checkpoint."""
    names = usecase_names(usecase)
    learner = _connect()
    for name in names:
        for shard in range(settings_or_exit().learner_shards):
            status = learner.stop(name, shard)
            if status is None:
                console.print(f"{name}[{shard}]: not running")
                continue
            console.print(f"{name}[{shard}]: stopped after {status['learned']} events learned")


@app.command()
def status(
    usecase: UsecaseArg = "all",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Events learned, dead letters, offsets, checkpoint and metrics of each learner."""
    import ray

    names = usecase_names(usecase)
    learner = _connect()
    rows = []
    for name in names:
        for shard in range(settings_or_exit().learner_shards):
            handle = learner.find(name, shard)
            rows.append(
                ray.get(handle.status.remote())
                if handle
                else {"usecase": name, "shard": shard, "running": False}
            )
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = Table(title="rtml learners")
    for column in (
        "learner",
        "running",
        "learned",
        "events/s",
        "dead letters",
        "lag",
        "checkpoint",
        "primary metric",
    ):
        table.add_column(column)
    for r in rows:
        m = r.get("metrics", {})
        primary = m.get("primary")
        value = m.get("overall", {}).get(primary) if primary else None
        share = m.get("share_of_oracle", {}).get(primary) if primary else None
        ck = r.get("checkpoint", {})
        table.add_row(
            f"{r['usecase']}[{r['shard']}]",
            _running(r),
            str(r.get("learned", "")),
            str(r.get("events_per_s", "")),
            str(r.get("dead_lettered", "")),
            " ".join(f"p{p}:{n}" for p, n in sorted(r.get("lag", {}).items())),
            f"v{ck.get('version')} {ck.get('age_s', 0):.0f}s ago" if ck.get("version") else "",
            f"{primary} {value:.4g} ({share:.0%} of oracle)" if value is not None and share else "",
        )
    console.print(table)
    for r in rows:
        if r.get("error"):
            err.print(
                f"[red]{r['usecase']}[{r['shard']}]: {r['error'].strip().splitlines()[-1]}[/red]"
            )


def _running(row: dict) -> str:
    if row.get("restoring"):
        return "restoring"
    return "yes" if row.get("running") else "no"


@app.command()
def reset(usecase: UsecaseArg) -> None:
    """Forget a stopped learner's model, checkpoint and snapshots: it starts over from the earliest event."""
    from rtml.checkpoint import forget

    names = usecase_names(usecase)
    learner = _connect()
    settings = settings_or_exit()
    for name in names:
        for shard in range(settings.learner_shards):
            if learner.find(name, shard) is not None:
                raise typer.BadParameter(
                    f"{name}[{shard}] is running: `rtml learn stop {name}` first"
                )
            forget(settings, name, shard)
            console.print(f"{name}[{shard}]: checkpoint deleted, MLflow snapshots retired")
