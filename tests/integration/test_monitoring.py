"""The local Prometheus on the real stack with a little traffic: it finds Ray through Ray's service
discovery, scrapes the producers, the lakehouse and the learners, and has every series that the
dashboards and alert rules use, for each use case; every dashboard query that reads only running
parts returns data, and every rule and query evaluates without error.

What it requires (series by source; names in docs/metrics.md, ``ray_`` added by Ray):

- prometheus: ``up`` for the jobs ray, producers, lakehouse, prometheus
- ray: the node metrics the overview uses (``ray_node_mem_used``, ``ray_object_store_memory``, ...)
- producers: ``rtml_events_produced_total``, ``rtml_events_produce_failed_total``,
  ``rtml_produce_latency_seconds_bucket``, ``process_resident_memory_bytes``
- lakehouse: ``rtml_lake_*``
- learners (ray_apps/learning/): ``ray_rtml_learner_*``, ``ray_rtml_online_metric``
- serving (ray_apps/serving): ``ray_rtml_serve_*`` and Serve's own ``ray_serve_*``, from a little
  traffic of every kind (incremental and batch, a cache hit, a bad request) on every use case,
  with a small champion registered and then replaced (a swap)
- sweeps (jobs/tune.py): ``ray_rtml_sweep*``, from a two-trial `rtml train` of every use case on
  the lake that the lakehouse fills meanwhile
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from confluent_kafka import Producer

from rtml.kafka import producer_config
from rtml.settings import Settings
from rtml.usecases import USECASES
from streaming.topics import ensure_topics
from tests.monitoring import (
    RATE_WINDOW,
    base_series,
    dashboard_queries,
    load_rules,
    series_in,
    used_series,
)
from tests.stack import status_of

#: Short intervals, so that a minute of traffic fills every series.
ENV = {
    "RTML_PROMETHEUS_SCRAPE_S": "2",
    "RTML_PRODUCER_RATE": "20",
    "RTML_LAKE_TRIGGER_S": "2",
    "RTML_CHECKPOINT_EVERY_S": "5",
    "RTML_SNAPSHOT_EVERY_S": "10",
}
PARTS = ["prometheus", "lakehouse", "producers"]
#: Every source of every series the dashboards and rules use: all are started here.
STARTED = ("prometheus", "ray", "producers", "lakehouse", "learners", "serving", "sweeps")
WAIT_S = 240.0
#: Rows per use case the lake must hold before the sweeps start (Spark lands them meanwhile).
SWEEP_ROWS = 400


def source_of(series: str) -> str:
    if series == "up":
        return "prometheus"
    if series == "process_resident_memory_bytes" or series.startswith(
        ("rtml_events_", "rtml_produce_")
    ):
        return "producers"
    if series.startswith("rtml_lake_"):
        return "lakehouse"
    if series.startswith(("ray_rtml_learner_", "ray_rtml_online_metric")):
        return "learners"
    if series.startswith(("ray_rtml_serve_", "ray_serve_")):
        return "serving"
    if series.startswith("ray_rtml_sweep"):
        return "sweeps"
    if series.startswith("ray_"):
        return "ray"
    raise AssertionError(f"no known source exports {series}")


def by_source() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name in used_series():
        out.setdefault(source_of(name), set()).add(base_series(name))
    return out


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtml.cli", *args],
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, **ENV},
    )


def cli_background(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rtml.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **ENV},
    )


def query(settings: Settings, expr: str) -> list[dict]:
    answer = httpx.get(
        f"{settings.prometheus_url}/api/v1/query", params={"query": expr}, timeout=10
    )
    body = answer.json()
    assert body.get("status") == "success", f"{expr}: {body}"
    return body["data"]["result"]


def send_poison(settings: Settings) -> None:
    """A few events that fail their schema, so dead-letter and quarantine series exist too."""
    producer = Producer(producer_config(settings))
    for spec in USECASES.values():
        for i in range(3):
            producer.produce(spec.topic, b"not json at all", f"poison-{i}".encode())
    assert producer.flush(30) == 0


def traffic(settings: Settings) -> None:
    """Requests of every kind on every use case: incremental and batch, a cache hit, a bad one."""
    api = f"{settings.serve_url}/api/v1"
    with httpx.Client(base_url=api, timeout=30) as client:
        for name in USECASES:
            event = client.get(f"/{name}/sample").json()
            for kind in ("incremental", "batch", "batch"):  # the second batch answer is a cache hit
                client.post(f"/{name}/{kind}/predict", json=event)
            assert (
                client.post(f"/{name}/batch/predict", json={**event, "nope": 1}).status_code == 422
            )


def lake_rows(settings: Settings) -> dict[str, int]:
    from rtml.lake import Lake

    try:
        return {
            n: Lake(settings, [n]).query(f"SELECT count(*) AS n FROM {n}").to_pylist()[0]["n"]
            for n in USECASES
        }
    except Exception:  # noqa: BLE001 - a table Spark has not created yet
        return {}


def sweeps(settings: Settings) -> None:
    """`rtml train` of every use case (two trials, in parallel), once the lake holds enough."""
    deadline = time.monotonic() + WAIT_S
    while not (rows := lake_rows(settings)) or min(rows.values()) < SWEEP_ROWS:
        assert time.monotonic() < deadline, f"the lake has only {rows} rows after {WAIT_S:.0f}s"
        time.sleep(5)
    jobs = [
        cli_background("train", name, "--trials", "2", "--max-rows", "2000") for name in USECASES
    ]
    for name, job in zip(USECASES, jobs, strict=True):
        out, _ = job.communicate(timeout=600)
        assert job.returncode == 0, f"rtml train {name}:\n{out[-3000:]}"


def swap_champions(settings: Settings) -> None:
    """Move every use case's champion to another version: the replicas swap models."""
    from rtml.store import registry

    for name in USECASES:
        current = registry.champion(settings, name)
        assert current is not None, name
        other = next(
            v.version for v in registry.versions(settings, name) if v.version != current.version
        )
        registry.promote(settings, name, other, reason="monitoring test: a swap")


@pytest.fixture(scope="module")
def monitored(stack: Settings) -> Iterator[Settings]:
    from verify.champions import ensure_champions

    ensure_topics(stack)
    t0 = time.monotonic()
    # Spark's start is the slow one (~40 s idle, minutes on a busy box): it overlaps the rest.
    lake = cli_background("up", "-p", "lakehouse")
    cli("learn", "stop", "all")  # fresh learners, with this module's short checkpoint intervals
    started = cli(
        "up", *[a for p in ["prometheus", "producers", "learners", "api"] for a in ("-p", p)]
    )
    lake_out, _ = lake.communicate(timeout=400)
    print(f"\nrtml up {PARTS} + learners + api: {time.monotonic() - t0:.0f}s")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert lake.returncode == 0, lake_out
        send_poison(stack)
        ensure_champions(stack, list(USECASES))
        traffic(stack)
        sweeps(stack)
        swap_champions(stack)
        time.sleep(2 * stack.serve_champion_poll_s)
        traffic(stack)
        print(f"traffic, sweeps and swaps: {time.monotonic() - t0:.0f}s")
        yield stack
    finally:
        cli("learn", "stop", "all")
        stopped = cli("down", *[a for p in PARTS for a in ("-p", p)])
        assert stopped.returncode == 0, stopped.stderr
        from ray_apps.serving import deploy

        deploy.undeploy(stack)  # later modules see the stack as `rtml up -p ...` left it


def _missing(settings: Settings, sources: tuple[str, ...]) -> list[str]:
    """What Prometheus lacks of the series of these sources: per use case where it has one."""
    wanted = {s: names for s, names in by_source().items() if s in sources}
    gaps = []
    for source, names in sorted(wanted.items()):
        for name in sorted(names):
            rows = query(settings, f"count by (usecase) ({name})")
            if not rows:
                gaps.append(f"{source}: {name}")
                continue
            usecases = {r["metric"].get("usecase") for r in rows}
            if usecases != {None} and not set(USECASES) <= usecases:
                gaps.append(f"{source}: {name} lacks use cases {sorted(set(USECASES) - usecases)}")
    return gaps


def _wait_for(settings: Settings, check) -> list[str]:
    deadline, gaps = time.monotonic() + WAIT_S, ["not checked"]
    while time.monotonic() < deadline:
        gaps = check(settings)
        if not gaps:
            break
        time.sleep(5)
    return gaps


def test_prometheus_runs_on_loopback_and_rtml_status_shows_it(monitored: Settings) -> None:
    row = status_of("prometheus")["prometheus"]
    assert row["state"] == "running" and row["address"] == monitored.prometheus_url, row
    ready = httpx.get(f"{monitored.prometheus_url}/-/ready", timeout=5)
    assert ready.status_code == 200


def test_every_target_is_found_and_up(monitored: Settings) -> None:
    def gaps(settings: Settings) -> list[str]:
        up = {
            (r["metric"]["job"], r["metric"]["instance"]): r["value"][1]
            for r in query(settings, "up")
        }
        jobs = {job for job, _ in up}
        down = [f"{job} {inst} down" for (job, inst), v in up.items() if v != "1"]
        return [
            f"no {j} target"
            for j in ("ray", "producers", "lakehouse", "prometheus")
            if j not in jobs
        ] + down

    assert not _wait_for(monitored, gaps)
    # Ray's service discovery found this head's node agent, not another cluster's.
    ray_targets = {r["metric"]["instance"] for r in query(monitored, 'up{job="ray"}')}
    assert f"127.0.0.1:{monitored.ray_metrics_export_port}" in ray_targets, ray_targets


def test_every_series_of_the_running_parts_is_there_for_each_usecase(monitored: Settings) -> None:
    gaps = _wait_for(monitored, lambda s: _missing(s, STARTED))
    assert not gaps, "series that dashboards or rules use, missing in Prometheus:\n" + "\n".join(
        gaps
    )


def test_every_dashboard_query_on_running_parts_returns_data(monitored: Settings) -> None:
    def empty(settings: Settings) -> list[str]:
        out = []
        for where, expr in dashboard_queries().items():
            if {source_of(n) for n in series_in(expr)} <= set(STARTED):
                if not query(settings, expr.replace("$__rate_interval", RATE_WINDOW)):
                    out.append(f"{where}: {expr}")
        return out

    gaps = _wait_for(monitored, empty)
    assert not gaps, "dashboard panels that would be empty:\n" + "\n".join(gaps)


def test_every_rule_and_query_evaluates(monitored: Settings) -> None:
    for rule in load_rules():
        query(monitored, rule["expr"])
    for expr in dashboard_queries().values():
        query(monitored, expr.replace("$__rate_interval", RATE_WINDOW))
    loaded = httpx.get(f"{monitored.prometheus_url}/api/v1/rules", timeout=10).json()
    alerts = {r["name"] for g in loaded["data"]["groups"] for r in g["rules"]}
    assert alerts == {r["alert"] for r in load_rules()}
    assert all(r["health"] == "ok" for g in loaded["data"]["groups"] for r in g["rules"])
