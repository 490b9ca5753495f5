"""The Helm chart's values schema, where it comes from the specs: the use cases a sweep may name.

    python -m kuberay.chart_schema    # rewrite charts/rtml/values.schema.json's use-case enum

Helm reads ``charts/rtml/values.schema.json`` from the chart itself (offline, no Python), so the
file is committed; its ``sweeps.usecases`` enum is written here from :data:`rtml.usecases.BUILTIN`
rather than by hand, and ``tests/unit/test_chart_schema.py`` fails when the committed file differs
from what the specs make of it. ``make generate`` runs this beside the API's other generated files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rtml.usecases import BUILTIN

SCHEMA = Path(__file__).resolve().parents[1] / "charts" / "rtml" / "values.schema.json"
#: Where the use-case enum sits in the schema.
ENUM_PATH = ("properties", "sweeps", "properties", "usecases", "items", "enum")


def usecase_enum(schema: dict[str, Any]) -> list[str]:
    node: Any = schema
    for key in ENUM_PATH:
        node = node[key]
    return list(node)


def with_usecases(text: str) -> str:
    """The schema file ``text`` with the use-case enum of the specs, formatted as committed."""
    schema = json.loads(text)
    node = schema
    for key in ENUM_PATH[:-1]:
        node = node[key]
    node[ENUM_PATH[-1]] = [spec.name for spec in BUILTIN]  # what the image ships
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    SCHEMA.write_text(with_usecases(SCHEMA.read_text()))
    print(f"{SCHEMA}: sweeps.usecases is one of {', '.join(s.name for s in BUILTIN)}")


if __name__ == "__main__":
    main()
