"""What every part of the CLI shares: reading settings, naming use cases, the consoles."""

from __future__ import annotations

import typer
from rich.console import Console

from rtml.settings import Settings, SettingsError, get_settings
from rtml.usecases import USECASES

console = Console()
err = Console(stderr=True)


def settings_or_exit() -> Settings:
    """The settings, or exit 2 with one line per bad variable."""
    try:
        return get_settings()
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def usecase_names(name: str) -> list[str]:
    """A use case name, or 'all', as the list of use cases it means; exit 2 if unknown."""
    if name == "all":
        return list(USECASES)
    if name not in USECASES:
        err.print(f"[red]unknown use case {name!r}; choose from {', '.join(USECASES)} or all[/red]")
        raise typer.Exit(2)
    return [name]
