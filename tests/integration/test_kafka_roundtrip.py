"""Produce 10 000 keyed events across the three topics and read every one of them back."""

from __future__ import annotations

from collections import Counter

from confluent_kafka import Consumer, TopicPartition

from rtml.kafka import admin_client, consumer_config
from rtml.settings import Settings
from rtml.usecases import USECASES
from rtml.usecases.base import TRUTH_HEADER
from rtml.usecases.generators import generator_for
from streaming.producer import produce
from streaming.topics import ensure_topics

TOTAL = 10_000


def _watermarks(consumer: Consumer, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        for p in range(partitions)
    }


def test_ten_thousand_keyed_events_come_back_exactly(stack: Settings) -> None:
    ensure_topics(stack)
    per_usecase = TOTAL // len(USECASES) + 1  # 3 × 3334 ≥ 10 000
    probe = Consumer(consumer_config(stack, "rtml-test-probe"))
    partitions = {
        uc.topic: len(
            admin_client(stack).list_topics(uc.topic, timeout=10).topics[uc.topic].partitions
        )
        for uc in USECASES.values()
    }
    before = {t: _watermarks(probe, t, n) for t, n in partitions.items()}

    report = produce(stack, list(USECASES), rate=0, count=per_usecase, seed=1234)
    assert report.failed == 0 and report.undelivered == 0
    assert report.delivered == per_usecase * len(USECASES) >= TOTAL

    # Read exactly the range this test wrote, partition by partition.
    after = {t: _watermarks(probe, t, n) for t, n in partitions.items()}
    probe.close()
    consumer = Consumer(consumer_config(stack, "rtml-test-roundtrip"))
    assignment = [
        TopicPartition(t, p, before[t][p][1]) for t, n in partitions.items() for p in range(n)
    ]
    consumer.assign(assignment)
    expected = sum(
        after[t][p][1] - before[t][p][1] for t, n in partitions.items() for p in range(n)
    )
    assert expected == report.delivered

    keys: dict[str, Counter] = {t: Counter() for t in partitions}
    per_partition: Counter = Counter()
    owners: dict[tuple[str, bytes], set[int]] = {}
    seen = 0
    while seen < expected:
        batch = consumer.consume(num_messages=1000, timeout=10)
        assert batch, f"stalled after {seen} of {expected} messages"
        for msg in batch:
            assert msg.error() is None, msg.error()
            spec = next(s for s in USECASES.values() if s.topic == msg.topic())
            event = spec.parse(msg.value())
            assert spec.key_of(event).encode() == msg.key()
            truth = dict(msg.headers())[TRUTH_HEADER]
            spec.parse_truth(truth)
            keys[msg.topic()][msg.key().decode()] += 1
            owners.setdefault((msg.topic(), msg.key()), set()).add(msg.partition())
            per_partition[(msg.topic(), msg.partition())] += 1
            seen += 1
    consumer.close()

    assert seen == report.delivered
    for i, spec in enumerate(USECASES.values()):
        gen = generator_for(spec.name, seed=1234 + i)  # what produce() sent, key for key
        assert keys[spec.topic] == Counter(next(gen).key for _ in range(per_usecase))
        for p in range(partitions[spec.topic]):
            assert per_partition[(spec.topic, p)] > 0, f"{spec.topic}[{p}] received nothing"
    # Keyed: all of one entity's events land in one partition, so its order is kept.
    assert all(len(ps) == 1 for ps in owners.values()), "a key spread over partitions"
