"""The cluster path end to end on real servers: Spark lands Kafka in the bucket, DuckDB reads it
from there, a sweep registers a model whose files are in the bucket (its record in PostgreSQL),
a learner whose Redis state is wiped comes back from its snapshot in the bucket, the champion
loaded from the bucket answers, and the learners and Serve replicas run on both Ray nodes.

Small on purpose (a few hundred events per use case, a two-trial sweep): the whole package,
stack start included, is a few minutes on two cores.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import ray
import redis
from ray.util.state import list_actors, list_nodes

from ray_apps.learning import actor as learner
from rtml.lake import Lake
from rtml.settings import Settings
from rtml.stack.cluster import Postgres, s3_client
from rtml.store import registry
from rtml.usecases import USECASES
from rtml.usecases.generators import generator_for
from streaming.lakehouse.query import STREAM
from streaming.producer import produce
from tests.integration.test_lakehouse import end_offsets, expected, wait_landed
from tests.stack import status_of

pytestmark = pytest.mark.cluster

#: Events per use case: enough for a time split and a two-trial sweep of eta.
EVENTS = 600
TRIALS = 2
ARTIFACTS_BUCKET = "rtml-mlflow"


def _wait(what: str, check: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def _keys(settings: Settings, bucket: str, prefix: str) -> list[str]:
    client = s3_client(settings)
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def _sql(settings: Settings, query: str) -> list[tuple]:
    conn = Postgres(settings)._connect()
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchall()
    finally:
        conn.close()


def _rtml(*args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtml.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def driver(cluster: Settings) -> Iterator[Settings]:
    """This process as a Ray driver, gone before `rtml down` stops Ray (a driver whose cluster
    stops under it exits the whole process)."""
    learner.connect(cluster)
    yield cluster
    ray.shutdown()


@pytest.fixture(scope="module")
def api(cluster: Settings) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{cluster.serve_url}/api/v1", timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def landed(cluster: Settings) -> dict:
    """Known events through Kafka, landed by the running Spark job in the bucket."""
    since = end_offsets(cluster)
    report = produce(cluster, list(USECASES), rate=0, count=EVENTS, seed=2222)
    assert report.failed == 0 and report.undelivered == 0
    want = expected(since, end_offsets(cluster))
    wait_landed(cluster, since, want, timeout=240)
    return want


def test_the_stack_runs_the_cluster_profile_on_real_servers(cluster: Settings) -> None:
    states = {name: row["state"] for name, row in status_of().items()}
    for part in ("postgres", "s3", "mlflow", "ray", "ray-worker", "lakehouse"):
        assert states[part] == "running", states
    assert cluster.lake_s3_endpoint == cluster.local_s3_endpoint
    buckets = {b["Name"] for b in s3_client(cluster).list_buckets()["Buckets"]}
    assert {"rtml-lake", ARTIFACTS_BUCKET} <= buckets
    # MLflow keeps its tracking store in PostgreSQL (its own tables), not in a SQLite file.
    tables = {t for (t,) in _sql(cluster, "SELECT tablename FROM pg_tables")}
    assert {"experiments", "runs", "registered_models"} <= tables
    assert not (cluster.state_dir / "mlflow" / "mlflow.db").exists()
    assert not (cluster.state_dir / "mlflow" / "artifacts").exists()


def test_learners_and_serve_replicas_run_on_both_ray_nodes(cluster: Settings) -> None:
    address = cluster.ray_dashboard_url
    nodes = {n.node_id for n in list_nodes(address=address) if n.state == "ALIVE"}
    assert len(nodes) == 2, nodes
    alive = list_actors(address=address, filters=[("state", "=", "ALIVE")], limit=1000)
    learners = {a.name: a.node_id for a in alive if a.name.startswith("learner-")}
    replicas = [a.node_id for a in alive if a.class_name.startswith("ServeReplica:rtml:Api")]
    assert len(learners) == len(USECASES) and len(replicas) == 2, (learners, replicas)
    assert set(learners.values()) == nodes, f"learners on one node only: {learners}"
    assert set(replicas) == nodes, f"Serve replicas on one node only: {replicas}"


def test_spark_lands_kafka_in_the_bucket(cluster: Settings, landed: dict) -> None:
    for name in USECASES:
        log = _keys(cluster, "rtml-lake", f"rtml/bronze/{name}/_delta_log/")
        assert any(k.endswith(".json") for k in log), log
        data = _keys(cluster, "rtml-lake", f"rtml/bronze/{name}/")
        assert any(k.endswith(".parquet") for k in data), data
    assert _keys(cluster, "rtml-lake", f"rtml/_checkpoints/{STREAM}/commits/")  # one query
    assert not cluster.lake_local_dir.exists(), "nothing of the lake on local disk"


def test_duckdb_reads_the_lake_in_the_bucket(
    cluster: Settings, landed: dict, api: httpx.Client
) -> None:
    counts = Lake(cluster).query("SELECT count(*) AS n FROM eta").to_pylist()
    assert counts[0]["n"] >= landed["eta"]
    # The API's replicas (one per node) read the same tables from the bucket.
    for _ in range(4):
        r = api.post("/sql", json={"sql": "SELECT count(*) AS n FROM ecci"})
        assert r.status_code == 200, r.text
        assert r.json()["rows"][0]["n"] >= landed["ecci"]


@pytest.fixture(scope="module")
def champion(cluster: Settings, landed: dict) -> registry.ChampionInfo:
    """`rtml train eta` as a person runs it: a Ray job reading the lake from the bucket."""
    done = _rtml("train", "eta", "--trials", str(TRIALS), timeout=480)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    found = registry.champion(cluster, "eta")
    assert found is not None, done.stdout
    return found


def test_a_sweep_registers_a_model_with_its_files_in_the_bucket(
    cluster: Settings, champion: registry.ChampionInfo
) -> None:
    client = registry.client(cluster)
    mv = client.get_model_version(registry.model_name("eta"), str(champion.version))
    model_id = mv.source.removeprefix("models:/")
    location = client.get_logged_model(model_id).artifact_location
    assert location.startswith("mlflow-artifacts:/"), location  # proxied: clients hold no keys
    files = [k for k in _keys(cluster, ARTIFACTS_BUCKET, "artifacts/") if model_id in k]
    assert any(k.endswith("MLmodel") for k in files), files
    # The registry's record is in PostgreSQL.
    rows = _sql(
        cluster,
        "SELECT version FROM model_versions WHERE name = '" + registry.model_name("eta") + "'",
    )
    assert champion.version in {int(v) for (v,) in rows}


def test_a_learner_comes_back_from_its_snapshot_in_the_bucket(
    driver: Settings, landed: dict
) -> None:
    """Stop the eta learner (final checkpoint and snapshot), wipe Redis, start it again: it
    restores from the snapshot in the bucket and goes on from its offsets."""
    cluster = driver
    handle = learner.find("eta")
    assert handle is not None, "`rtml up` started the learners"
    _wait(
        "eta learner drained",
        lambda: ray.get(handle.status.remote(), timeout=30).get("learned", 0) >= landed["eta"],
        timeout=180,
    )
    before = learner.stop("eta")
    assert before is not None and "error" not in before["snapshot"], before
    learned = before["learned"] + before["dead_lettered"]
    snapshots = [k for k in _keys(cluster, ARTIFACTS_BUCKET, "artifacts/") if "/checkpoint/" in k]
    assert snapshots, "the learner's snapshot is in the bucket"

    redis.Redis.from_url(cluster.redis).flushall()
    handle = learner.start("eta", settings=learner.service_addresses(cluster))
    status = _wait(
        "eta learner restored",
        lambda: (s := ray.get(handle.status.remote(), timeout=30)).get("restored_from") and s,
        timeout=180,
    )
    assert status["error"] is None, status
    assert status["restored_from"] == "mlflow snapshot", status
    assert status["learned"] + status["dead_lettered"] >= learned, (status, learned)


def test_the_champion_loaded_from_the_bucket_predicts(
    cluster: Settings, champion: registry.ChampionInfo, api: httpx.Client
) -> None:
    version = champion.version
    _wait(
        "champion served",
        lambda: api.get("/eta/model").json()["batch"]["version"] == version,
        timeout=90,
    )
    event = next(generator_for("eta", seed=5)).event
    offline = registry.load(cluster, "eta", version)  # from the bucket, through MLflow
    spec = USECASES["eta"]
    want = offline.predict([spec.features_of(spec.parse(event))])[0]
    answer = api.post("/eta/batch/predict", json=event)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == version
    assert body["prediction"][spec.label] == pytest.approx(want, rel=1e-9), body
