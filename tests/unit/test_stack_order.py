"""`rtml up` starts a part once what it needs is healthy and provisioned (``Part.needs``), and the
rest at once: checked with stand-in parts, nothing is spawned."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtml.settings import load_settings
from rtml.stack import local
from rtml.stack.parts import Part


def test_parts_start_once_what_they_need_is_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    events: list[str] = []

    def part(name: str, needs: tuple[str, ...] = ()) -> Part:
        class Stand(Part):
            @property
            def external(self) -> bool:
                return False

            @property
            def address(self) -> str:
                return name

            def healthy(self) -> bool:
                return True

            def command(self) -> list[str]:
                return [name]

            def provision(self) -> None:
                events.append(f"provision {name}")

        Stand.name = name
        Stand.needs = needs
        return Stand(load_settings(state_dir=tmp_path))

    parts = [
        part("postgres"),
        part("s3"),
        part("kafka"),
        part("mlflow", ("postgres", "s3")),
        part("ray"),
        part("ray-worker", ("ray",)),
        part("lakehouse", ("kafka", "s3")),
    ]
    monkeypatch.setattr(local, "_select", lambda *_: parts)
    monkeypatch.setattr(local, "spawn", lambda files, argv, env: events.append(f"start {argv[0]}"))
    monkeypatch.setattr(
        local, "_settled", lambda p, deadline: events.append(f"healthy {p.name}") or True
    )
    monkeypatch.setattr("streaming.topics.ensure_topics", lambda s: events.append("topics") or {})

    rows = local.up(load_settings(state_dir=tmp_path), only=[p.name for p in parts])

    assert [r.state for r in rows] == ["started"] * len(parts)
    at = {e: i for i, e in enumerate(events)}
    # What needs nothing starts at once, before anything is waited for.
    assert (
        max(at[f"start {n}"] for n in ("postgres", "s3", "kafka", "ray")) < at["healthy postgres"]
    )
    assert at["start mlflow"] > max(at["provision postgres"], at["provision s3"])
    assert at["start ray-worker"] > at["healthy ray"]
    assert at["start lakehouse"] > at["topics"] > at["healthy kafka"]
