"""The rule of the house, read from the code: arrows point inward.

The core (``rtml/`` but the CLI and the local stack) imports no adapter; an adapter (``ray_apps``,
``jobs``, ``streaming``, ``kuberay``) imports the core and itself only — never another adapter,
the CLI, the local stack or the verifier. The CLI (``rtml/cli*.py``), the local stack
(``rtml/stack/``) and the verifier (``verify/``) are the composition roots: they alone reach into
the adapters, so they are not read here.

Every import counts wherever it stands, inside a function too: a lazy import is a dependency all
the same. The files are read with ``ast``, never imported, so the check needs no service and no
installed engine.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = ("ray_apps", "jobs", "streaming", "kuberay")
#: The parts whose imports are checked: each may import the core, itself and what is not rtml's.
CHECKED = ("core", *ADAPTERS)


def part_of(module: str) -> str | None:
    """The part of the house a module belongs to: "core", an adapter's name, "cli", "stack" or
    "verify"; None for what is not rtml's (the standard library, third-party packages, tests)."""
    top, _, rest = module.partition(".")
    if top == "rtml":
        first = rest.partition(".")[0]
        if first == "cli" or first.startswith("cli_"):
            return "cli"
        return "stack" if first == "stack" else "core"
    if top in ADAPTERS or top == "verify":
        return top
    return None


def module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(module: str, source: str, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in ``source``, relative ones resolved. For ``from a import
    b`` the name is ``a.b``: ``b`` may be a module (``from rtml import stack``)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                yield node.lineno, base if alias.name == "*" else f"{base}.{alias.name}"


def violations(module: str, source: str, path: str, is_package: bool = False) -> list[str]:
    """Each import of ``module`` against the rule, as ``file:line → module (who imports what)``."""
    importer = part_of(module)
    found = []
    for line, imported in imports_of(module, source, is_package):
        target = part_of(imported)
        if target is not None and target not in ("core", importer):
            found.append(f"{path}:{line} → {imported} ({importer} imports {target})")
    return found


def checked_files() -> Iterator[tuple[Path, str]]:
    for top in ("rtml", *ADAPTERS):
        for path in sorted((ROOT / top).rglob("*.py")):
            module = module_of(path)
            if part_of(module) in CHECKED:
                yield path, module


def test_the_core_and_the_adapters_import_inward_only() -> None:
    found = [
        problem
        for path, module in checked_files()
        for problem in violations(
            module,
            path.read_text(),
            str(path.relative_to(ROOT)),
            is_package=path.name == "__init__.py",
        )
    ]
    assert not found, (
        "the core imports no adapter, an adapter only the core (the CLI, rtml/stack and verify/ "
        "are the composition roots):\n" + "\n".join(found)
    )


def test_every_part_is_read() -> None:
    """A walk that read nothing would pass the check above: every part has files, and the roots
    are left out."""
    parts = {part_of(module) for _, module in checked_files()}
    assert parts == set(CHECKED)
    modules = {module for _, module in checked_files()}
    assert "rtml.usecases.generators" in modules and "ray_apps.learning.actor" in modules
    assert not any(part_of(m) in ("cli", "stack", "verify") for m in modules)


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (  # the core reaching into an adapter, lazily
            "rtml.fake",
            "import os\n\ndef f():\n    from ray_apps import learner\n",
            ["rtml/fake.py:4 → ray_apps.learner (core imports ray_apps)"],
        ),
        (  # the core reaching into the CLI through its package
            "rtml.fake",
            "from rtml import cli_common, settings\n",
            ["rtml/fake.py:1 → rtml.cli_common (core imports cli)"],
        ),
        (  # the core reaching into the stack through a relative import
            "rtml.usecases.fake",
            "from ..stack import local\n",
            ["rtml/usecases/fake.py:1 → rtml.stack.local (core imports stack)"],
        ),
        (  # an adapter taking a helper of the local stack
            "ray_apps.fake",
            "from rtml.stack.process import port_open\n",
            ["ray_apps/fake.py:1 → rtml.stack.process.port_open (ray_apps imports stack)"],
        ),
        (  # an adapter importing another for its side effect
            "jobs.fake",
            "import ray_apps  # noqa: F401\n",
            ["jobs/fake.py:1 → ray_apps (jobs imports ray_apps)"],
        ),
        (  # an adapter using the verifier as a library
            "streaming.fake",
            "from verify.ledger import read_topic\n",
            ["streaming/fake.py:1 → verify.ledger.read_topic (streaming imports verify)"],
        ),
        (  # what is allowed: the core, the adapter itself, anything not rtml's
            "ray_apps.serving.fake",
            "import ray\nfrom . import deploy\nfrom ray_apps import learner\n"
            "from rtml.usecases.generators import generator_for\n",
            [],
        ),
    ],
)
def test_a_planted_violation_is_reported(module: str, source: str, expected: list[str]) -> None:
    path = module.replace(".", "/") + ".py"
    assert violations(module, source, path) == expected
