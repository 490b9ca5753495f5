"""``rtml learn start|stop|status|reset``: the online learners, as detached named Ray actors."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from rtml.cli_common import console, err, settings_or_exit, usecase_names
from rtml.usecases import USECASES

app = typer.Typer(
    help="Online learners: Ray actors that learn each use case from Kafka.", no_args_is_help=True
)

UsecaseArg = Annotated[str, typer.Argument(help=f"One of {', '.join(USECASES)}, or 'all'.")]


def _connect():  # the composition root reaches into the Ray adapter (configured by rtml.cli)
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
    wide: Annotated[
        bool, typer.Option("--wide", help="Every column: events/s, dead letters, lag.")
    ] = False,
) -> None:
    """Events learned, checkpoint and primary metric of each learner.

    --wide adds events/s, dead letters and the lag of each partition.
    """
    import ray

    names = usecase_names(usecase)
    learner = _connect()
    rows: list[dict[str, Any]] = []
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
    console.print(learners_table(rows, wide))
    for r in rows:
        if r.get("error"):
            err.print(
                f"[red]{r['usecase']}[{r['shard']}]: {r['error'].strip().splitlines()[-1]}[/red]"
            )


def learners_table(rows: list[dict], wide: bool = False) -> Table:
    """The learners' status rows; the default columns fit 80 columns."""
    columns = ["learner", "running", "learned", "events/s", "dead letters", "lag"]
    columns += ["checkpoint", "primary (oracle, ceiling)"]
    if not wide:
        columns = [c for c in columns if c not in ("events/s", "dead letters", "lag")]
    table = Table(title="rtml learners")
    for column in columns:
        table.add_column(column)
    for r in rows:
        m = r.get("metrics", {})
        primary = m.get("primary")
        value = m.get("overall", {}).get(primary) if primary else None
        share = m.get("share_of_oracle", {}).get(primary) if primary else None
        ceiling = (m.get("share_of_ceiling") or {}).get(primary) if primary else None
        ck = r.get("checkpoint") or {}
        cells = {
            "learner": f"{r['usecase']}[{r['shard']}]",
            "running": _running(r),
            "learned": str(r.get("learned", "")),
            "events/s": str(r.get("events_per_s", "")),
            "dead letters": str(r.get("dead_lettered", "")),
            "lag": " ".join(f"p{p}:{n}" for p, n in sorted(r.get("lag", {}).items())),
            "checkpoint": f"v{ck['version']} {_ago(ck.get('age_s', 0))} ago"
            if ck.get("version")
            else "",
            "primary (oracle, ceiling)": ""
            if value is None
            else f"{primary} {value:.4g} ({_shares(share, ceiling)})",
        }
        table.add_row(*(cells[k] for k in columns))
    return table


def _shares(oracle: float | None, ceiling: float | None) -> str:
    if not oracle:
        return "no oracle"
    return f"{oracle:.0%}, {ceiling:.0%}" if ceiling else f"{oracle:.0%}"


def _ago(seconds: float) -> str:
    """An age in the largest unit that leaves at least two of it: 42s, 22m, 5h, 3d."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _running(row: dict) -> str:
    if row.get("restoring"):
        return "restoring"
    return "yes" if row.get("running") else "no"


@app.command()
def reset(usecase: UsecaseArg) -> None:
    """Forget a stopped learner's model, checkpoint and snapshots: it starts over from the earliest
    event."""
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
