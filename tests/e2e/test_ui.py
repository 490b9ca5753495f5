"""The UI in a real browser (Debian's Chromium, driven by playwright-core in
``frontend/e2e/run.mjs``) on a real stack started by the project's own `rtml up`: Kafka, Redis,
MLflow, Ray, the producers, the learners and the Serve API, which also serves the UI's build at /.

The browser opens every page, sees the metrics chart grow as the learners learn, makes a
prediction from a generated event, is refused learner control without the token and accepted
with it, runs a SQL query and sees a refused query's message, and checks the pages fit a phone's
width; on the Batch tab it sees the champion, its challengers and its evaluation on the lake,
starts a two-trial sweep and follows it, and promotes and rolls back. Screenshots go to
``test-output/e2e/`` (gitignored). The lakehouse (Spark) is not started, to spare the two cores:
the lake's tables are written straight to Delta from the generators (``streaming.sample_lake``),
as the batch tests do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rtml.settings import Settings
from tests.stack import run_stack

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
OUT = ROOT / "test-output" / "e2e"
TOKEN = "e2e-test-token"
PARTS = ["kafka", "redis", "mlflow", "ray", "producers", "learners", "api"]
LAKE_ROWS = 1500
#: The stack as the browser needs it: the API's control routes behind a token, and a producer
#: rate that makes the learners' curves move within a few polls.
STACK_ENV = {"RTML_API_TOKEN": TOKEN, "RTML_PRODUCER_RATE": "20"}


def _run(
    args: list[str], timeout: float, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def _stale(build: Path) -> bool:
    index = build / "index.html"
    if not index.is_file():
        return True
    built = index.stat().st_mtime
    sources = [
        *(FRONTEND / "src").rglob("*"),
        *(FRONTEND / n for n in ("svelte.config.js", "vite.config.ts")),
    ]
    return any(p.is_file() and p.stat().st_mtime > built for p in sources)


@pytest.fixture(scope="session")
def ui_build() -> Path:
    """The UI's static build, built now if missing or older than its sources (`make ui`)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed: the UI needs Node.js >= 20.19 with npm", pytrace=False)
    if not (FRONTEND / "node_modules" / ".installed").is_file():
        done = _run([npm, "ci", "--no-audit", "--no-fund"], 600, cwd=FRONTEND)
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        (FRONTEND / "node_modules" / ".installed").touch()
    build = FRONTEND / "build"
    if _stale(build):
        done = _run([npm, "run", "build"], 600, cwd=FRONTEND)
        assert done.returncode == 0, (
            f"the UI does not build:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return build


@pytest.fixture(scope="module")
def ui_stack(ui_build: Path) -> Iterator[Settings]:
    for settings in run_stack(PARTS, STACK_ENV):
        # What the Batch and SQL tabs show: a lake (written straight to Delta, no Spark) and a
        # champion per use case; the browser starts a sweep on top.
        from rtml.usecases import USECASES
        from streaming.sample_lake import write_bronze
        from verify.champions import ensure_champions

        for i, name in enumerate(USECASES):
            write_bronze(settings, name, LAKE_ROWS, seed=40 + i)
        ensure_champions(settings, list(USECASES))
        yield settings


def test_the_ui_in_a_browser(ui_stack: Settings) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed (scripts/install-system.sh installs it)"
    shutil.rmtree(OUT, ignore_errors=True)
    env = {
        "RTML_UI_URL": ui_stack.serve_url,
        "RTML_E2E_OUT": str(OUT),
        "RTML_E2E_TOKEN": TOKEN,
        "CHROMIUM": chromium,
    }
    done = _run(["node", "e2e/run.mjs"], 900, env, cwd=FRONTEND)
    report = f"{done.stdout[-6000:]}\n{done.stderr[-4000:]}\nscreenshots: {OUT}"
    assert done.returncode == 0, report
    assert done.stdout.rstrip().endswith("passed, 0 failed"), report
    for page in ("overview", "phone-overview"):
        assert (OUT / f"{page}.png").stat().st_size > 10_000, f"{page} screenshot looks empty"
