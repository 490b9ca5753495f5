"""Producer throughput: rtml's producer against a bare confluent-kafka loop, same run and payloads.

Both send the same pre-serialized events (value, key, truth header) to the same broker with the
same librdkafka settings (acks=all, idempotence, lz4); the bare loop does nothing else, rtml's
``EventProducer`` also counts every delivery report and exports Prometheus metrics. Rounds
alternate between the two and the median is kept. A third figure, generation included, shows what
``rtml produce`` reaches when it also simulates the events.

Uses the broker of the settings; when none answers, starts the local one (on the bench's own
ports and state folder) and stops it afterwards. Last line: one JSON object with the figures.

    python bench/producer_throughput.py [--events 30000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from rtml.stack.sandbox import SLOTS, sandbox_env  # noqa: E402

BENCH_ENV = sandbox_env(SLOTS["bench-producer"], ROOT / ".rtml-bench")
for key, value in BENCH_ENV.items():
    os.environ.setdefault(key, value)

from confluent_kafka import Producer  # noqa: E402

from rtml.kafka import broker_ready, producer_config  # noqa: E402
from rtml.settings import load_settings  # noqa: E402
from rtml.stack import local  # noqa: E402
from rtml.usecases import USECASES, UseCase  # noqa: E402
from rtml.usecases.base import TRUTH_HEADER, dumps  # noqa: E402
from rtml.usecases.generators import generator_for  # noqa: E402
from streaming.producer import EventProducer, produce  # noqa: E402
from streaming.topics import delete_topics, ensure_topics  # noqa: E402

Payload = tuple[str, str, bytes, bytes, bytes]  # usecase, topic, key, value, truth


def payloads(specs: list[UseCase], per_usecase: int) -> list[Payload]:
    """Events of every use case, interleaved, for the bench's own topics."""
    gens = [
        (spec, generator_for(name, seed=99)) for name, spec in zip(USECASES, specs, strict=True)
    ]
    out = []
    for _ in range(per_usecase):
        for spec, gen in gens:
            g = next(gen)
            out.append((spec.name, spec.topic, g.key.encode(), dumps(g.event), dumps(g.truth)))
    return out


def bare(settings, items: list[Payload]) -> float:
    producer = Producer(producer_config(settings))
    t0 = time.perf_counter()
    for _, topic, key, value, truth in items:
        while True:
            try:
                producer.produce(topic, value, key, headers=[(TRUTH_HEADER, truth)])
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0
    return len(items) / (time.perf_counter() - t0)


def rtml(settings, items: list[Payload]) -> float:
    producer = EventProducer(settings)
    t0 = time.perf_counter()
    for usecase, topic, key, value, truth in items:
        producer.send(usecase, topic, key, value, truth)
        producer.export_metrics()
    assert producer.flush(60) == 0
    elapsed = time.perf_counter() - t0
    delivered = sum(t.delivered for t in producer.tallies.values())
    assert delivered == len(items), (delivered, len(items))
    return len(items) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30_000, help="events per use case per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    settings = load_settings()
    started = False
    if not broker_ready(settings):
        print(f"starting a local broker at {settings.kafka_servers} ...", flush=True)
        rows = local.up(settings, ["kafka"])
        if rows[0].state != "started":
            sys.exit(f"broker did not start: {rows[0]}")
        started = True
    # Own topics (bench.<usecase>.events), deleted afterwards.
    bench_specs = [replace(spec, name=f"bench.{spec.name}") for spec in USECASES.values()]
    try:
        ensure_topics(settings, bench_specs)
        items = payloads(bench_specs, args.events)
        bare(settings, items[:5000])  # warm-up: connections, idempotent producer id
        rtml(settings, items[:5000])
        bare_rates, rtml_rates = [], []
        for r in range(args.rounds):
            bare_rates.append(bare(settings, items))
            rtml_rates.append(rtml(settings, items))
            print(
                f"round {r + 1}: bare {bare_rates[-1]:,.0f}/s  rtml {rtml_rates[-1]:,.0f}/s",
                flush=True,
            )
        t0 = time.perf_counter()
        # Generation included: what `rtml produce all --rate 0` reaches, on the real topics.
        report = produce(settings, list(USECASES), rate=0, count=args.events, seed=7)
        generate_and_send = report.delivered / (time.perf_counter() - t0)
    finally:
        try:
            delete_topics(settings, [t for s in bench_specs for t in (s.topic, s.dlq_topic)])
        finally:
            if started:
                local.down(settings, ["kafka"])

    bare_s, rtml_s = statistics.median(bare_rates), statistics.median(rtml_rates)
    figures = {
        "events": len(items),
        "rounds": args.rounds,
        "bare_events_per_s": round(bare_s),
        "rtml_events_per_s": round(rtml_s),
        "ratio": round(rtml_s / bare_s, 3),
        "rtml_generate_and_send_events_per_s": round(generate_and_send),
        "target_ratio": 0.7,
    }
    print(f"bare confluent-kafka loop : {bare_s:>10,.0f} events/s")
    print(
        f"rtml EventProducer        : {rtml_s:>10,.0f} events/s  "
        f"(ratio {rtml_s / bare_s:.3f}, target >= 0.7)"
    )
    print(
        f"rtml produce (generating) : {generate_and_send:>10,.0f} events/s  "
        "(real topics, all three use cases)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
