"""Online learners on the real stack: quality, dead letters, crashes, tampering."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import pytest
import ray
import redis
from confluent_kafka import Consumer, Producer, TopicPartition

from ray_apps import learner
from rtml.checkpoint import CheckpointRefused, RedisCheckpoints
from rtml.kafka import consumer_config, producer_config
from rtml.settings import Settings
from rtml.usecases import get
from streaming.producer import produce
from streaming.topics import ensure_topics

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
    ray.shutdown()


def _end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    probe = Consumer(consumer_config(settings, "rtml-test-probe"))
    n = len(probe.list_topics(topic, timeout=10).topics[topic].partitions)
    ends = {p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(n)}
    probe.close()
    return ends


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
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            time.sleep(1)  # restarting
            continue
        assert status["error"] is None, status["error"]
        if status["learned"] + status["dead_lettered"] >= expected:
            return status
        time.sleep(1)
    raise AssertionError(f"learner did not drain in {timeout}s: {status}")


def test_learner_survives_kills_and_poison_with_exact_counts(driver: Settings) -> None:
    spec = get("eta")
    store = RedisCheckpoints(redis.Redis.from_url(driver.redis), driver.checkpoint_key.get_secret_value().encode())
    store.delete(spec.name, 0)
    produce(driver, ["eta"], rate=0, count=1500, seed=77)
    poison = Producer(producer_config(driver))
    for i, raw in enumerate(POISON):
        poison.produce(spec.topic, raw, key=f"poison-{i}".encode())
    assert poison.flush(10) == 0
    produce(driver, ["eta"], rate=0, count=1500, seed=78)
    ends = _end_offsets(driver, spec.topic)
    total = sum(ends.values())

    settings = {**learner.service_addresses(driver), "checkpoint_every_events": 300}
    handle = learner.start("eta", trace=True, settings=settings)
    try:
        # Kill the actor (Ray restarts it from its latest checkpoint) three times while it learns.
        for _ in range(3):
            time.sleep(4)
            ray.kill(handle, no_restart=False)
        status = _wait_learned(handle, total, timeout=240)
        assert status["dead_lettered"] >= len(POISON)
        assert status["learned"] == total - len(POISON), status
        trace = ray.get(handle.trace.remote())
        assert len(trace) == len(set(trace)) == status["learned"], "an event learned twice"
        learned_per_partition: dict[int, list[int]] = {}
        for p, o in trace:
            learned_per_partition.setdefault(p, []).append(o)
        for p, offsets in learned_per_partition.items():
            assert offsets == sorted(offsets), f"partition {p} learned out of order"
        assert status["offsets"] == ends

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
    finally:
        ray.get(handle.stop.remote())
        ray.kill(handle, no_restart=True)


def test_a_tampered_checkpoint_is_refused(driver: Settings) -> None:
    store = RedisCheckpoints(redis.Redis.from_url(driver.redis), driver.checkpoint_key.get_secret_value().encode())
    stored = store.load("eta", 0)
    assert stored is not None, "the previous test leaves a checkpoint"
    client = redis.Redis.from_url(driver.redis)
    blob = bytearray(client.hget("rtml:checkpoint:eta:0", "blob"))
    blob[-10] ^= 0xFF
    client.hset("rtml:checkpoint:eta:0", "blob", bytes(blob))
    with pytest.raises(CheckpointRefused):
        store.load("eta", 0)
    store.delete("eta", 0)
