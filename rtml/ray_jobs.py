"""The ``jobs/`` entry points as Ray jobs: submitted, listed and read back through Ray's Jobs API.

Submitting is what ``ray job submit --working-dir . -- python -m jobs.tune ...`` does: the checkout
(``RTML_CHECKOUT_DIR``) is the job's working folder (Ray skips what ``.gitignore`` lists, so the
virtualenv and the local stack's data stay home) and the job's environment carries the settings that
say where MLflow and the lake are. ``rtml train``/``rtml score`` and the API's sweep routes both go
through here. A sweep's log carries machine-readable lines (``jobs/sweep.py``): ``SWEEP`` (its id,
which tags its trials in MLflow), ``PROGRESS`` (one per finished trial) and ``RESULT`` (the
outcome).

Core module: Ray's Jobs SDK (an HTTP client of the dashboard), nothing that runs on Ray.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from rtml.settings import Settings

#: Never uploaded, beside what .gitignore already keeps out (a checkout without git has no
#: .gitignore to read).
EXCLUDES = [".venv", ".rtml*", ".git", "node_modules", "spark-warehouse", "*.jar", "mlruns"]
#: Settings that hold secrets never travel in a job's definition (the Ray dashboard shows it);
#: on a cluster the workers get credentials from their own environment.
SECRET_VARIABLES = {
    "RTML_CHECKPOINT_KEY",
    "RTML_LAKE_S3_ACCESS_KEY_ID",
    "RTML_LAKE_S3_SECRET_ACCESS_KEY",
}
#: The metadata that marks a job as a sweep of a use case (to list them).
KIND, USECASE = "rtml.kind", "rtml.usecase"


def job_env(settings: Settings) -> dict[str, str]:
    """The job's RTML_* environment: this process's, with every location made absolute."""
    from rtml.ray_env import ray_env

    env = {
        k: v for k, v in os.environ.items() if k.startswith("RTML_") and k not in SECRET_VARIABLES
    }
    env.update(ray_env(settings))
    # The driver joins the cluster it was submitted to (see jobs.cluster.connect for why).
    env["RTML_RAY_ADDRESS"] = settings.ray
    env["RTML_MLFLOW_TRACKING_URI"] = settings.mlflow_uri
    env["RTML_STATE_DIR"] = str(settings.state_dir.resolve())
    if not settings.lake_s3_bucket:
        env["RTML_LAKE_DIR"] = str(settings.lake_local_dir)
    return env


def client(settings: Settings) -> Any:
    """A Jobs API client of the settings' Ray dashboard; ``ConnectionError`` when none answers."""
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(settings.ray_dashboard_url)
    except (ConnectionError, RuntimeError) as exc:
        raise ConnectionError(f"no Ray job API at {settings.ray_dashboard_url}: {exc}") from None


def submit(
    settings: Settings, entrypoint: list[str], metadata: dict[str, str] | None = None
) -> tuple[Any, str]:
    jobs = client(settings)
    job_id = jobs.submit_job(
        entrypoint=" ".join(entrypoint),
        metadata=metadata or {},
        runtime_env={
            "working_dir": str(settings.checkout_dir.resolve()),  # it holds jobs/ and rtml/
            "excludes": EXCLUDES,
            "env_vars": job_env(settings),
        },
    )
    return jobs, job_id


def sweep_entrypoint(
    usecase: str, trials: int, max_rows: int | None = None, every: str | None = None
) -> list[str]:
    entry = ["python", "-m", "jobs.tune", "--usecase", usecase, "--trials", str(trials)]
    entry += ["--max-rows", str(max_rows)] if max_rows else []
    entry += ["--every", every] if every else []
    return entry


def submit_sweep(settings: Settings, usecase: str, trials: int, max_rows: int | None = None) -> str:
    _, job_id = submit(
        settings, sweep_entrypoint(usecase, trials, max_rows), {KIND: "sweep", USECASE: usecase}
    )
    return job_id


@dataclass
class SweepLog:
    """What a sweep's log says so far."""

    sweep: str | None = None
    progress: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    #: the lines meant for people (``rtml: ...``), the last ones
    said: list[str] = field(default_factory=list)

    def read(self, line: str) -> None:
        if line.startswith("SWEEP "):
            self.sweep = json.loads(line.removeprefix("SWEEP "))["id"]
        elif line.startswith("PROGRESS "):
            self.progress.append(json.loads(line.removeprefix("PROGRESS ")))
        elif line.startswith("RESULT "):
            self.result = json.loads(line.removeprefix("RESULT "))
        elif line.startswith("rtml: "):
            self.said.append(line.removeprefix("rtml: "))


def parse_log(text: str) -> SweepLog:
    log = SweepLog()
    for line in text.splitlines():
        try:
            log.read(line)
        except (json.JSONDecodeError, KeyError):
            continue  # a half-written line at the end of a running job's log
    return log


def _job(info: Any) -> dict[str, Any]:
    return {
        "job_id": info.submission_id,
        "status": str(info.status).split(".")[-1],
        "message": info.message,
        "entrypoint": info.entrypoint,
        "start_time": (info.start_time or 0) / 1000 or None,
        "end_time": (info.end_time or 0) / 1000 or None,
    }


def sweeps(settings: Settings, usecase: str, most: int = 20) -> list[dict[str, Any]]:
    """The use case's sweep jobs, newest first."""
    found = [
        info
        for info in client(settings).list_jobs()
        if (info.metadata or {}).get(KIND) == "sweep"
        and (info.metadata or {}).get(USECASE) == usecase
    ]
    found.sort(key=lambda info: info.start_time or 0, reverse=True)
    return [_job(info) for info in found[:most]]


def sweep(settings: Settings, usecase: str, job_id: str) -> dict[str, Any]:
    """One sweep job: its status and what its log says. ``LookupError`` when it is not a sweep of
    this use case."""
    jobs = client(settings)
    try:
        info = jobs.get_job_info(job_id)
    except RuntimeError:
        raise LookupError(f"no job {job_id!r}") from None
    if (info.metadata or {}).get(USECASE) != usecase:
        raise LookupError(f"job {job_id!r} is not a sweep of {usecase}")
    log = parse_log(jobs.get_job_logs(job_id))
    asked = re.search(r"--trials (\d+)", info.entrypoint or "")
    total = log.progress[-1]["total"] if log.progress else int(asked[1]) if asked else None
    return {
        **_job(info),
        "sweep": log.sweep,
        "done": len(log.progress),
        "total": total,
        "progress": log.progress,
        "result": log.result,
        "said": log.said[-20:],
    }
