"""terraform/: formatted, parseable, variables documented. Providers cannot be downloaded here
(registry.terraform.io is not reachable), so `terraform validate` cannot run; `terraform
providers` after an offline `init` still parses the root and the module it calls."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.k8s.conftest import ROOT, tool

TF = ROOT / "terraform"
ENV = {**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null", "TF_IN_AUTOMATION": "1", "NO_COLOR": "1"}


def terraform(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("terraform"), *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=180
    )


def test_formatted() -> None:
    done = terraform(["fmt", "-recursive", "-check", "-diff"], TF)
    assert done.returncode == 0, (
        f"run `terraform fmt -recursive terraform/`:\n{done.stdout}{done.stderr}"
    )


def test_root_and_module_parse(tmp_path: Path) -> None:
    copy = tmp_path / "terraform"
    shutil.copytree(TF, copy, ignore=shutil.ignore_patterns(".terraform*"))
    (tmp_path / "charts").symlink_to(ROOT / "charts")
    root = copy / "examples" / "kind"
    terraform(
        ["init", "-backend=false", "-input=false", "-no-color"], root
    )  # modules yes, providers no
    done = terraform(["providers", "-no-color"], root)
    assert done.returncode == 0, done.stderr
    assert "module.rtml" in done.stdout and "hashicorp/helm" in done.stdout


def blocks(kind: str, path: Path) -> dict[str, str]:
    text = "\n".join(p.read_text() for p in sorted(path.glob("*.tf")))
    return {
        m[1]: m[2] for m in re.finditer(rf'^{kind} "([^"]+)" \{{\n(.*?)^\}}', text, re.S | re.M)
    }


@pytest.mark.parametrize("where", ["modules/rtml", "examples/kind"])
def test_variables_are_documented_and_typed(where: str) -> None:
    variables = blocks("variable", TF / where)
    assert variables
    for name, body in variables.items():
        assert re.search(r"^\s*description\s*=\s*\"\S", body, re.M), (
            f"{where}: variable {name} has no description"
        )
        assert re.search(r"^\s*type\s*=", body, re.M), f"{where}: variable {name} has no type"


def test_example_passes_every_required_module_variable() -> None:
    required = {
        n
        for n, body in blocks("variable", TF / "modules" / "rtml").items()
        if "default" not in body
    }
    module = blocks("module", TF / "examples" / "kind")["rtml"]
    passed = set(re.findall(r"^\s*(\w+)\s*=", module, re.M))
    assert required <= passed, f"missing: {required - passed}"
