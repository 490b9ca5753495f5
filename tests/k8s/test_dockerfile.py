"""The runtime image cannot be built here (no Docker engine): its Dockerfile is checked as text."""

from __future__ import annotations

import re
import tomllib

from tests.k8s.conftest import ROOT


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_base_image_is_the_pinned_ray_and_python() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ray = next(
        re.search(r"==([\d.]+)", d)[1] for d in project["dependencies"] if d.startswith("ray[")
    )
    froms = [arg for op, arg in instructions() if op == "FROM"]
    assert froms == [f"rayproject/ray:{ray}-py311"]
    assert project["requires-python"].startswith(">=3.11")


def test_runs_as_a_non_root_user() -> None:
    users = [arg for op, arg in instructions() if op == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")


def test_installs_rtml_from_pyproject_and_bakes_the_spark_jars() -> None:
    ops = instructions()
    runs = " ".join(arg for op, arg in ops if op == "RUN")
    copies = " ".join(arg for op, arg in ops if op == "COPY")
    assert "pyproject.toml" in copies
    assert "pip install" in runs and "'.[cluster]'" in runs
    for package in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]:
        assert f"./{package.rstrip('*')}" in copies, f"{package} is not copied into the image"
    assert (
        "spark_session" in runs and "ivy" in runs
    )  # jars resolved into ~/.cache/rtml/ivy at build


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".rtml", "tests"} <= ignored
