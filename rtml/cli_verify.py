"""``rtml verify``: faults, bad input and overload, each scenario ending in an exact verdict."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group
from rich.markup import escape
from rich.table import Table

from rtml.cli_common import console, err, settings_or_exit

VERIFY_STATE_DIR = Path(".rtml-verify")


def _names(scenario: list[str], run_all: bool) -> list[str]:
    from verify import all_scenarios

    table = all_scenarios()
    if run_all:
        return list(table)
    unknown = [n for n in scenario if n not in table]
    if unknown or not scenario:
        lines = "\n".join(f"  {s.name:16} {s.summary}" for s in table.values())
        what = (
            f"unknown scenario(s) {', '.join(unknown)}" if unknown else "name scenarios, or --all"
        )
        err.print(f"[red]{what}[/red]\nscenarios:\n{lines}")
        raise typer.Exit(2)
    return scenario


def verify(
    scenario: Annotated[
        list[str] | None, typer.Argument(help="Scenarios to run (see --all).")
    ] = None,
    run_all: Annotated[
        bool, typer.Option("--all", help="Run every scenario, in sequence.")
    ] = False,
    long: Annotated[
        bool, typer.Option("--long", help="Longer streams and more faults (minutes to hours).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the faults' moments and of the events.")] = 7,
    here: Annotated[
        bool,
        typer.Option(
            "--here",
            help="Run against the stack your settings describe instead of a sandbox. Disruptive: "
            "it recreates the use cases' topics, resets the learners, restarts Kafka and Redis, "
            "wipes Redis and redeploys the API.",
        ),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask before disrupting the stack (--here).")
    ] = False,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the sandbox stack running afterwards.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdicts as JSON.")] = False,
) -> None:
    """Make trouble on purpose and count what survives: every scenario ends in a verdict.

    By default a sandbox stack of its own is started (ports of the "verify" slot, state in
    .rtml-verify/), so nothing of your stack is touched; it is stopped afterwards unless --keep.
    The verdicts are exact counts — events learned once, dead letters one for one, requests
    failed — not timings. Exit status 1 when a scenario fails.
    """
    names = _names(scenario or [], run_all)
    if here:
        settings = settings_or_exit()
        if not yes and not typer.confirm(
            f"run {', '.join(names)} against the stack at "
            f"{settings.kafka_servers} / {settings.ray}? "
            "It recreates topics, resets learners, restarts Kafka and Redis and wipes Redis"
        ):
            raise typer.Exit(1)
    else:
        settings = _sandbox()
    import verify as v

    parts = v.needs(names)
    from rtml.stack import local

    stack_parts = [p for p in parts if p != "api"]
    if not here:
        local.down(settings)
        shutil.rmtree(settings.state_dir, ignore_errors=True)
    out = err if as_json else console  # with --json, stdout holds the JSON alone
    out.print(
        f"stack: {', '.join(parts)} ({'yours' if here else f'sandbox in {settings.state_dir}'})"
    )
    rows = local.up(settings, stack_parts, report=lambda line: out.print(f"  {line}"))
    if any(r.state in ("failed", "unhealthy") for r in rows):
        err.print(f"[red]the stack did not come up: {[(r.name, r.state) for r in rows]}[/red]")
        raise typer.Exit(1)
    from verify.context import Context
    from verify.session import session

    ctx = Context(
        settings,
        seed=seed,
        long=long,
        say=lambda line: out.print(line, highlight=False),
        api_token=secrets.token_urlsafe(16),
    )
    real_stdout = sys.stdout
    try:
        # With --json, stdout holds the JSON alone: what libraries print (MLflow's run links) goes
        # to stderr with the progress.
        with (
            contextlib.redirect_stdout(sys.stderr if as_json else sys.stdout),
            session(ctx, api="api" in parts, restore_api=here),
        ):
            verdicts = [v.run_scenario(v.all_scenarios()[n], ctx) for n in names]
    finally:
        if not here and not keep:
            local.down(settings)
    if as_json:
        print(json.dumps([x.as_dict() for x in verdicts], default=str), file=real_stdout)
    else:
        console.print(verdicts_view(verdicts))
    if not all(x.passed for x in verdicts):
        raise typer.Exit(1)


def _sandbox():
    """Settings of the sandbox stack: the verify slot's ports, its own state folder."""
    from rtml.settings import get_settings
    from rtml.stack.sandbox import SLOTS, sandbox_env

    os.environ.update(sandbox_env(SLOTS["verify"], VERIFY_STATE_DIR.resolve()))
    get_settings.cache_clear()
    return settings_or_exit()


def verdicts_view(verdicts) -> Group:
    """One row per scenario, its verdict and time; below the table, each scenario's counts and
    figures (long prose that would wrap in a cell of an 80-column table)."""
    table = Table(title="rtml verify")
    for column in ("scenario", "verdict", "seconds"):
        table.add_column(column)
    lines = []
    for x in verdicts:
        colour = "green" if x.passed else "red"
        table.add_row(
            x.scenario,
            f"[{colour}]{'passed' if x.passed else 'FAILED'}[/{colour}]",
            f"{x.seconds:.0f}",
        )
        counts = "; ".join(f"{k}: {_short(v)}" for k, v in x.counts.items())
        # timings beside the counts (never part of the verdict)
        figures = "; ".join(
            f"{k}: {v:g}" if isinstance(v, float) else f"{k}: {v}" for k, v in x.figures.items()
        )
        lines.append(f"[bold]{x.scenario}[/bold] counts: {escape(counts) or '-'}")
        if figures:
            lines.append(f"  figures: {escape(figures)}")
    return Group(table, *lines)


def _short(value: object) -> str:
    if isinstance(value, dict):
        keep = ("learned", "valid", "lost", "repeated", "dead_lettered", "restored_from")
        return (
            "{" + ", ".join(f"{k}={value[k]}" for k in keep if k in value) + "}"
            if any(k in value for k in keep)
            else json.dumps(value, default=str)[:80]
        )
    return str(value)[:80]
