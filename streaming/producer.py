"""Producers: generated events into Kafka, keyed by entity id, every delivery accounted for.

One confluent-kafka producer (idempotent, ``acks=all``, lz4) serves all use cases of a process.
The event is the message value (JSON); the generator's ground truth rides beside it in the
``rtml-truth`` header, so evaluation can read it and no learner mistakes it for a feature.

Delivery reports are counted in plain integers on the hot path and mirrored into Prometheus
counters in batches: a per-message metric update costs as much as the send itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from confluent_kafka import KafkaError, Message, Producer
from prometheus_client import Counter, Histogram

from rtml.kafka import DELIVERY_TIMEOUT_S, producer_config
from rtml.settings import Settings
from rtml.usecases import get as get_usecase
from rtml.usecases.base import TRUTH_HEADER, dumps
from rtml.usecases.generators import generator_for
from rtml.usecases.world import EventGenerator, Generated

PRODUCED = Counter("rtml_events_produced", "Events acknowledged by the broker", ["usecase"])
FAILED = Counter("rtml_events_produce_failed", "Events the broker did not take", ["usecase"])
LATENCY = Histogram(
    "rtml_produce_latency_seconds",
    "From send to broker acknowledgement",
    ["usecase"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
#: Observe the latency of one delivery in this many: enough for a histogram, cheap on the hot path.
LATENCY_SAMPLE_EVERY = 64
#: Mirror the integer counts into Prometheus this often (seconds).
METRICS_FLUSH_S = 1.0


@dataclass
class Tally:
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    _exported_delivered: int = 0
    _exported_failed: int = 0


class EventProducer:
    """Sends events of one or more use cases through one Kafka producer."""

    def __init__(self, settings: Settings, **config_overrides: object) -> None:
        self._producer = Producer(producer_config(settings, **config_overrides))
        self.tallies: dict[str, Tally] = {}
        self._callbacks: dict[str, Callable[[KafkaError | None, Message], None]] = {}
        self._last_flush = time.monotonic()

    def _callback(self, usecase: str) -> Callable[[KafkaError | None, Message], None]:
        tally = self.tallies.setdefault(usecase, Tally())
        latency = LATENCY.labels(usecase)

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                tally.delivered += 1
                if tally.delivered % LATENCY_SAMPLE_EVERY == 0:
                    latency.observe(msg.latency() or 0.0)
            else:
                tally.failed += 1
                reason = err.str()
                tally.errors[reason] = tally.errors.get(reason, 0) + 1

        return on_delivery

    def send(self, usecase: str, topic: str, key: bytes, value: bytes, truth: bytes) -> None:
        """Queue one message; when librdkafka's queue is full, serve deliveries and retry."""
        callback = self._callbacks.get(usecase) or self._callbacks.setdefault(
            usecase, self._callback(usecase)
        )
        while True:
            try:
                self._producer.produce(
                    topic, value, key, headers=[(TRUTH_HEADER, truth)], on_delivery=callback
                )
                break
            except BufferError:
                self._producer.poll(0.05)
        self.tallies[usecase].sent += 1
        self._producer.poll(0)

    def send_generated(self, usecase: str, topic: str, g: Generated) -> None:
        self.send(usecase, topic, g.key.encode(), dumps(g.event), dumps(g.truth))

    def export_metrics(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_flush < METRICS_FLUSH_S:
            return
        self._last_flush = now
        for usecase, t in self.tallies.items():
            PRODUCED.labels(usecase).inc(t.delivered - t._exported_delivered)
            FAILED.labels(usecase).inc(t.failed - t._exported_failed)
            t._exported_delivered, t._exported_failed = t.delivered, t.failed

    def flush(self, timeout: float = DELIVERY_TIMEOUT_S + 10) -> int:
        """Wait for outstanding deliveries; return how many are still unacknowledged.

        By default as long as the producer retries (through a broker outage): every event then has
        its report, delivered or failed, and none is silently left in the queue.
        """
        left = self._producer.flush(timeout)
        self.export_metrics(force=True)
        return left


@dataclass
class ProduceReport:
    tallies: dict[str, Tally]
    seconds: float
    undelivered: int

    @property
    def delivered(self) -> int:
        return sum(t.delivered for t in self.tallies.values())

    @property
    def failed(self) -> int:
        return sum(t.failed for t in self.tallies.values())


Progress = Callable[[str, int], None]


def produce(
    settings: Settings,
    usecases: Sequence[str],
    rate: float = 0.0,
    count: int = 0,
    seed: int | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    event_rate: float | None = None,
) -> ProduceReport:
    """Generate and send events for each use case, round-robin.

    ``rate`` is events per second per use case (0: as fast as the broker takes them); ``count``
    is events per use case (0: until ``should_stop``). Event time starts now and advances at
    ``rate``, so live events carry current timestamps. ``event_rate`` sends a backlog instead:
    event time advances at that many events per second (a world's habits, bursts and label
    delays are in event time) and ends about now, whatever the sending rate.
    """
    seed = settings.seed if seed is None else seed
    specs = [get_usecase(name) for name in usecases]
    start = datetime.now(UTC)
    sim_rate = rate if rate > 0 else 1000.0
    if event_rate is not None:
        sim_rate = event_rate
        start -= timedelta(seconds=count / event_rate)
    generators: list[tuple[str, str, EventGenerator]] = [
        (s.name, s.topic, generator_for(s.name, seed + i, start, sim_rate))
        for i, s in enumerate(specs)
    ]
    producer = EventProducer(settings)
    t0 = time.monotonic()
    n = 0
    while (count == 0 or n < count) and not should_stop():
        if rate > 0:
            ahead = t0 + n / rate - time.monotonic()
            if ahead > 0:
                time.sleep(min(ahead, 0.5))
                producer.export_metrics()
                continue
        for name, topic, gen in generators:
            producer.send_generated(name, topic, next(gen))
        n += 1
        if progress is not None and (n % 500 == 0 or (rate and rate < 100)):
            for name, _, _ in generators:
                progress(name, n)
        producer.export_metrics()
    undelivered = producer.flush()
    if progress is not None:
        for name, _, _ in generators:
            progress(name, n)
    return ProduceReport(producer.tallies, time.monotonic() - t0, undelivered)
