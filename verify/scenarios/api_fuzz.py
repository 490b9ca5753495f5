"""API fuzzing: schemathesis generates requests from the running API's own ``/openapi.json`` —
valid ones and every kind of malformed one — for every operation; no answer may be a 5xx, and
every answer must match the status codes and schemas the document declares.

Every model exists first (learners with some events, a champion per use case, a lake of a few
hundred rows written straight to Delta), so that "no model yet" (a documented 503) is not what
the fuzzer meets. Control and acting routes are fuzzed without the token: they must refuse (401),
never act.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from rtml.usecases import USECASES
from streaming.producer import produce
from streaming.sample_lake import write_bronze
from verify.champions import ensure_champions
from verify.context import Context
from verify.fleet import Fleet
from verify.verdict import Verdict

NAME = "api-fuzz"
SUMMARY = "schemathesis against /openapi.json: no 5xx, every answer as the schema declares"
NEEDS = ("kafka", "redis", "mlflow", "ray", "api")
LAKE_ROWS = 300
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    )
)


def run(ctx: Context) -> Verdict:
    verdict = Verdict(NAME)
    names = list(USECASES)
    fleet = Fleet(ctx.settings, say=ctx.say)
    fleet.reset()
    produce(ctx.settings, names, rate=0, count=200, seed=ctx.seed)
    fleet.start()
    fleet.wait_drained(timeout=180)
    verdict.counts["champions"] = ensure_champions(ctx.settings, names, ctx.seed)
    for name in names:  # the lake the SQL and evaluation routes read (no Spark needed)
        write_bronze(ctx.settings, name, LAKE_ROWS, seed=ctx.seed)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        argv = [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{ctx.settings.serve_url}/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            str(ctx.size(15, 200)),
            "--seed",
            str(ctx.seed),
            "--workers",
            "2",
            "--request-timeout",
            "30",
            "--no-color",
            "--generation-database",
            "none",
            "--suppress-health-check",
            "all",
            "--report",
            "json",
            "--report-json-path",
            str(report),
        ]
        ctx.say(
            f"  schemathesis on {ctx.settings.serve_url}/openapi.json "
            f"({ctx.size(15, 200)} examples per operation)"
        )
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=ctx.size(900, 7200), cwd=tmp
        )
        summary = _summary(report)
    verdict.counts.update(summary)
    output = done.stdout[-4000:]
    verdict.expect(
        done.returncode == 0, f"schemathesis found failures (exit {done.returncode}):\n{output}"
    )
    verdict.expect(summary.get("operations", 0) > 0, f"schemathesis tested no operation:\n{output}")
    verdict.expect(
        summary.get("errors", 1) == 0, f"schemathesis could not run some cases:\n{output}"
    )
    fleet.stop()
    return verdict


def _summary(report: Path) -> dict[str, int]:
    """Operations tested, test cases generated, failures and errors (schemathesis' JSON report)."""
    try:
        data = json.loads(report.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return {
        "operations": int(data["operations"]["tested"]),
        "test_cases": int(data["test_cases"]["generated"]),
        "failures": len(data["failures"]),
        "errors": len(data["errors"]),
    }
