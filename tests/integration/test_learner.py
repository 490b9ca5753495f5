"""Online learners on the real stack: quality, dead letters, crashes, tampering."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import pytest
import ray
import redis
from confluent_kafka import Consumer, Producer, TopicPartition

from ray_apps.learning import actor as learner
from rtml.checkpoint import CheckpointRefused, RedisCheckpoints, forget
from rtml.kafka import consumer_config, producer_config
from rtml.settings import Settings
from rtml.usecases import USECASES, get
from streaming.producer import produce
from streaming.topics import ensure_topics
from verify.ledger import end_offsets, entity_memory_problems, learner_problems, read_topic

POISON = [
    b"not json at all",
    b'{"trip_id": "x"}',  # missing fields
    b'{"trip_id": 5, "driver_id": [], "timestamp": "soon"}',  # wrong types
]


@pytest.fixture(scope="module")
def driver(stack: Settings) -> Iterator[Settings]:
    ensure_topics(stack)
    learner.connect(stack)
    yield stack
    # Later modules start from learners with no state: no checkpoint, no snapshot to come back from.
    for name in USECASES:
        forget(stack, name, 0)
    ray.shutdown()


def _valid_events(settings: Settings, spec, ends: dict[int, int]) -> list:
    consumer = Consumer(consumer_config(settings, "rtml-test-reader"))
    consumer.assign([TopicPartition(spec.topic, p, 0) for p in ends])
    events, seen = [], 0
    while seen < sum(ends.values()):
        for msg in consumer.consume(num_messages=1000, timeout=10):
            seen += 1
            if not msg.key().startswith(b"poison-"):
                events.append(spec.parse(msg.value()))
    consumer.close()
    return events


def _wait_learned(handle, expected: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    status: dict = {}
    while time.monotonic() < deadline:
        try:
            status = ray.get(handle.status.remote(), timeout=30)
        except (
            ray.exceptions.RayActorError,
            ray.exceptions.ActorUnavailableError,
            ray.exceptions.GetTimeoutError,
        ):
            time.sleep(1)  # restarting
            continue
        assert status["error"] is None, status["error"]
        if status["learned"] + status["dead_lettered"] >= expected:
            return status
        time.sleep(1)
    raise AssertionError(f"learner did not drain in {timeout}s: {status}")


def test_learner_survives_kills_and_poison_with_exact_counts(driver: Settings) -> None:
    spec = get("eta")
    store = RedisCheckpoints.of(driver)
    store.delete(spec.name, 0)
    produce(driver, ["eta"], rate=0, count=1500, seed=77)
    poison = Producer(producer_config(driver))
    for i, raw in enumerate(POISON):
        poison.produce(spec.topic, raw, key=f"poison-{i}".encode())
    assert poison.flush(10) == 0
    produce(driver, ["eta"], rate=0, count=1500, seed=78)
    ends = end_offsets(driver, spec.topic)
    total = sum(ends.values())

    settings = {**learner.service_addresses(driver), "checkpoint_every_events": 300}
    handle = learner.start("eta", trace=True, settings=settings)
    try:
        # Kill the actor (Ray restarts it from its latest checkpoint) three times while it learns.
        for _ in range(3):
            time.sleep(4)
            ray.kill(handle, no_restart=False)
        status = _wait_learned(handle, total, timeout=240)
        _assert_exact(driver, spec, handle, status)
        assert status["dead_lettered"] >= len(POISON)
        assert status["entities"]["held"]["driver_id"] > 0, status["entities"]
        assert status["entities"]["store_failures"] == 0, status["entities"]

        # Quality: better than predicting the median of the same events, worse than the oracle.
        report = status["metrics"]
        mae, oracle_mae = report["overall"]["mae"], report["oracle"]["mae"]
        targets = [e.travel_seconds for e in _valid_events(driver, spec, ends)]
        middle = statistics.median(targets)
        baseline_mae = sum(abs(t - middle) for t in targets) / len(targets)
        assert oracle_mae < mae < 0.9 * baseline_mae, (report, baseline_mae)

        dlq = Consumer(consumer_config(driver, "rtml-test-dlq"))
        dlq.assign([TopicPartition(spec.dlq_topic, p, 0) for p in range(len(ends))])
        reasons = []
        for msg in dlq.consume(num_messages=100, timeout=5):
            if msg.error() is None:
                reasons.append(dict(msg.headers())["rtml-reason"].decode())
        dlq.close()
        assert any("not JSON" in r for r in reasons) and any("Field required" in r for r in reasons)
        trace = ray.get(handle.trace.remote())
        ray.get(handle.stop.remote())  # its final checkpoint holds the memory of every event
        _assert_entity_memory_exact(driver, spec, trace)
    finally:
        ray.get(handle.stop.remote())
        ray.kill(handle, no_restart=True)


def test_a_tampered_checkpoint_is_refused(driver: Settings) -> None:
    store = RedisCheckpoints.of(driver)
    stored = store.load("eta", 0)
    assert stored is not None, "the previous test leaves a checkpoint"
    client = redis.Redis.from_url(driver.redis)
    blob = bytearray(client.hget("rtml:checkpoint:eta:0", "blob"))
    blob[-10] ^= 0xFF
    client.hset("rtml:checkpoint:eta:0", "blob", bytes(blob))
    with pytest.raises(CheckpointRefused):
        store.load("eta", 0)
    store.delete("eta", 0)


def _assert_exact(settings: Settings, spec, handle, status: dict) -> None:
    """Every valid event of the topic learned once, in order, nothing else (``verify``'s
    ledger: the topic read back from Kafka; other modules leave malformed events in it too)."""
    _, problems = learner_problems(
        spec.name, read_topic(settings, spec), status, ray.get(handle.trace.remote())
    )
    assert not problems, problems


def _assert_entity_memory_exact(settings: Settings, spec, trace: list) -> None:
    """The entity memory of the learner's final checkpoint equals that of a clean replay of the
    events it learned, in the order it learned them: restores resumed it, none recorded twice
    (``verify``'s check, which ``rtml verify`` runs after its scenarios too)."""
    stored = RedisCheckpoints.of(settings).load(spec.name, 0)
    assert stored is not None and stored[1].entities is not None
    assert stored[1].trace == trace, "the final checkpoint holds every event learned"
    ledger = read_topic(settings, spec, keep_events=True)
    counts, problems = entity_memory_problems(
        spec.name, spec, ledger, trace, stored[1].entities, learner.FORGET_EVERY
    )
    assert not problems, problems
    assert counts["entities"] > 0, counts


def _pid(handle, timeout: float = 120) -> int:
    """The worker process of a learner, once it is back after a restart."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ray.get(handle.pid.remote(), timeout=30)
        except (
            ray.exceptions.RayActorError,
            ray.exceptions.ActorUnavailableError,
            ray.exceptions.GetTimeoutError,
        ):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_sigkilled_worker_and_lost_redis_lose_nothing(driver: Settings) -> None:
    """SIGKILL the learner's worker process at seeded random moments; then lose its Redis
    checkpoint entirely: it comes back from the MLflow snapshot and replays from its offsets."""
    import os
    import random
    import signal

    from rtml.checkpoint import MlflowSnapshots

    spec = get("tfd")
    key = driver.signing_key
    store = RedisCheckpoints(redis.Redis.from_url(driver.redis), key)
    store.delete(spec.name, 0)
    MlflowSnapshots(driver.mlflow_uri, key).forget(spec.name, 0)
    produce(driver, ["tfd"], rate=0, count=3000, seed=81)
    ends = end_offsets(driver, spec.topic)
    settings = {
        **learner.service_addresses(driver),
        "checkpoint_every_events": 400,
        "snapshot_every_s": 0.5,
    }
    handle = learner.start("tfd", trace=True, settings=settings)
    rng = random.Random(7)
    try:
        for _ in range(3):
            time.sleep(rng.uniform(1.0, 4.0))
            os.kill(_pid(handle), signal.SIGKILL)
        status = _wait_learned(handle, sum(ends.values()), timeout=300)
        _assert_exact(driver, spec, handle, status)
        # Quality after a few thousand events: ranks fraud better than chance, short of the oracle.
        report = status["metrics"]
        assert 0.55 < report["overall"]["roc_auc"] < report["oracle"]["roc_auc"], report
        assert report["overall"]["fbeta"] < report["oracle"]["fbeta"], report
        trace = ray.get(handle.trace.remote())
        final = ray.get(handle.stop.remote())
        assert "error" not in final["snapshot"], final["snapshot"]
    finally:
        ray.kill(handle, no_restart=True)
    _assert_entity_memory_exact(driver, spec, trace)
    # what serving reads: the touched entities' memories, as the learner holds them
    from rtml.entity_store import EntityStore

    held = RedisCheckpoints.of(driver).load(spec.name, 0)[1].entities  # type: ignore[index]
    entity_store = EntityStore(redis.Redis.from_url(driver.redis), spec)
    for name, by_value in held.memory.items():
        value = next(iter(by_value))
        record = entity_store.lookup(name, value)
        assert record is not None and record.observations == by_value[value], (name, value)

    # Redis loses the checkpoint (its counter too): the snapshot taken at stop is the fallback.
    redis.Redis.from_url(driver.redis).delete(
        "rtml:checkpoint:tfd:0", "rtml:checkpoint:tfd:0:version"
    )
    produce(driver, ["tfd"], rate=0, count=500, seed=82)
    ends = end_offsets(driver, spec.topic)
    handle = learner.start("tfd", trace=True, settings=settings)
    try:
        status = _wait_learned(handle, sum(ends.values()), timeout=180)
        assert status["restored_from"] == "mlflow snapshot", status
        _assert_exact(driver, spec, handle, status)
        trace = ray.get(handle.trace.remote())
        stopped = ray.get(handle.stop.remote())  # its final checkpoint is the first since the loss
        _assert_entity_memory_exact(driver, spec, trace)
        assert stopped["checkpoint"]["version"] > final["checkpoint"]["version"], (
            "versions only grow"
        )
    finally:
        ray.kill(handle, no_restart=True)


def test_clusters_and_exports_metrics(driver: Settings) -> None:
    """ecci: a handful of clusters that agree with the true segments better than chance; and the
    learner's series reach Ray's metrics endpoint (where Prometheus scrapes them)."""
    import httpx

    spec = get("ecci")
    RedisCheckpoints.of(driver).delete(spec.name, 0)
    produce(driver, ["ecci"], rate=0, count=2000, seed=83)
    ends = end_offsets(driver, spec.topic)
    handle = learner.start("ecci", settings=learner.service_addresses(driver))
    try:
        status = _wait_learned(handle, sum(ends.values()), timeout=180)
        report = status["metrics"]
        assert 2 <= report["n_clusters"] <= 20, report
        assert 0.05 < report["overall"]["ari"] < 1.0, report
        assert report["oracle"]["silhouette"] > 0, report
        url = f"http://127.0.0.1:{driver.ray_metrics_export_port}/metrics"
        deadline, text = time.monotonic() + 60, ""
        while time.monotonic() < deadline and 'metric="ari"' not in text:
            time.sleep(2)
            text = httpx.get(url, timeout=10).text
        for series in (
            "ray_rtml_learner_events_learned_total",
            "ray_rtml_online_metric",
            "ray_rtml_learner_consumer_lag",
        ):
            assert f"{series}{{" in text, f"{series} not exported at {url}"
        assert 'usecase="ecci"' in text and 'metric="ari"' in text
    finally:
        ray.get(handle.stop.remote())
        ray.kill(handle, no_restart=True)
