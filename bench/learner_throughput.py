"""Learner throughput: Kafka → OnlineLearner actor → predict+learn → checkpoints, against River's
own tight loop over the same events in the same order (read back from the topic, in the order of
the learner's trace) and model in the same run (the limit of one learner).

Starts Kafka, Redis, MLflow and Ray on the bench's own ports and state folder (fresh each run)
and stops them after. For each use case: produce N events, time River's loop over them (features,
entity features too, computed beforehand in the learner's order), then the actor draining the
topic: from its first consumed batch to its last learned event, with checkpoints every 2 s on
the way (their share of that time is reported; the actor's start and restore are not
throughput). Then 2 shards of eta against 1, on a topic of 4
partitions so that each shard owns an equal share (with 3, one shard owns two: at best 1.5x).
Last line: one JSON object with the figures.

    python bench/learner_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from rtml.stack.sandbox import SLOTS, sandbox_env  # noqa: E402

BENCH_ENV = sandbox_env(SLOTS["bench-learner"], ROOT / ".rtml-bench-learner")
BENCH_ENV.update({"RTML_CHECKPOINT_EVERY_EVENTS": "5000", "RTML_CHECKPOINT_EVERY_S": "2"})
for key, value in BENCH_ENV.items():
    os.environ.setdefault(key, value)

from rtml.ray_env import apply_ray_env  # noqa: E402
from rtml.settings import load_settings  # noqa: E402

apply_ray_env(load_settings())  # this process joins Ray as a driver: configured before Ray loads

import ray  # noqa: E402

from ray_apps.learning import actor as learner  # noqa: E402
from rtml.online import build_model, predict_then_learn  # noqa: E402
from rtml.stack import local  # noqa: E402
from rtml.usecases import USECASES, get  # noqa: E402
from streaming.producer import produce  # noqa: E402
from streaming.topics import ensure_topics, recreate_topics  # noqa: E402

PARTS = ["kafka", "redis", "mlflow", "ray"]


def river_loop(settings, name: str, order: list[tuple[int, int]]) -> float:
    """events/s of River alone: predict then learn, over the very events the learner learned, in
    the order it learned them (its trace: an ARF's cost depends on the order its trees grow in),
    parsed and with features extracted beforehand: what is timed is the model alone."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from rtml.kafka import consumer_config
    from verify.ledger import end_offsets

    spec = get(name)
    ends = end_offsets(settings, spec.topic)
    consumer = Consumer(consumer_config(settings, "rtml-bench-river"))
    consumer.assign([TopicPartition(spec.topic, p, OFFSET_BEGINNING) for p in ends])
    by_offset, total = {}, sum(ends.values())
    while len(by_offset) < total:
        for msg in consumer.consume(num_messages=1000, timeout=5):
            if msg.error() is None:
                by_offset[(msg.partition(), msg.offset())] = spec.parse(msg.value())
    consumer.close()
    # the features the learner computed, entity features too, in the order it learned the events
    events = [by_offset[tuple(place)] for place in order]
    labels = [spec.label_of(event) if spec.target else None for event in events]
    rows = list(zip(spec.features_in_order(events), labels, strict=True))
    model = build_model(spec)
    t0 = time.perf_counter()
    for x, y in rows:
        predict_then_learn(spec, model, x, y)
    return len(rows) / (time.perf_counter() - t0)


def drain(settings, name: str, n: int, shards: int = 1) -> tuple[float, float, list]:
    """events/s of the actor(s) draining n events (first batch → last event, all shards
    together), the share of that time the busiest shard spent on checkpoints, and the order in
    which shard 0 learned them (its trace)."""
    handles = [
        learner.start(name, s, shards, trace=True, settings=learner.service_addresses(settings))
        for s in range(shards)
    ]
    while True:
        statuses = ray.get([h.status.remote() for h in handles])
        for st in statuses:
            if st["error"]:
                sys.exit(st["error"])
        if sum(st["learned"] + st["dead_lettered"] for st in statuses) >= n:
            break
        time.sleep(1.0)  # the learner times its own first and last event; polling only perturbs
    first = min(st["first_event_at"] for st in statuses)
    last = max(st["last_event_at"] for st in statuses)
    share = max(
        st["checkpoint_share"] for st in statuses
    )  # of the time spent learning + checkpointing
    order = ray.get(handles[0].trace.remote())
    for h in handles:
        ray.get(h.stop.remote())
        ray.kill(h, no_restart=True)
    return n / (last - first), share, order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small streams, under two minutes")
    parser.add_argument("--events", type=int, default=None)
    args = parser.parse_args()
    n = args.events or (2000 if args.quick else 10_000)

    settings = load_settings()
    local.down(settings, PARTS)
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    rows = local.up(settings, PARTS, report=lambda line: print(" ", line, flush=True))
    if any(r.state not in ("started", "running") for r in rows):
        sys.exit(f"stack did not start: {rows}")
    figures: dict[str, float] = {"events": n}
    try:
        ensure_topics(settings)
        learner.connect(settings)
        for i, name in enumerate(USECASES):
            produce(settings, [name], rate=0, count=n, seed=500 + i)
            e2e, share, order = drain(settings, name, n)
            river = river_loop(settings, name, order)
            figures[f"river_{name}_per_s"] = round(river)
            figures[f"e2e_{name}_per_s"] = round(e2e)
            figures[f"ratio_{name}"] = round(e2e / river, 3)
            figures[f"checkpoint_share_{name}"] = round(share, 4)
            print(
                f"{name}: River loop {river:,.0f}/s, learner end to end {e2e:,.0f}/s "
                f"(ratio {e2e / river:.2f}), checkpoint share {share:.1%}",
                flush=True,
            )
        # Shards: eta again on a fresh 4-partition topic, drained by 1 shard, then by 2 (fresh
        # checkpoints and snapshots each time).
        from rtml.checkpoint import forget as forget_learner

        def forget() -> None:
            for s in (0, 1):
                forget_learner(settings, "eta", s)

        recreate_topics(settings, [get("eta")], topic_partitions=4)
        produce(settings, ["eta"], rate=0, count=n, seed=600)
        forget()
        one, _, _ = drain(settings, "eta", n)
        forget()
        two, _, _ = drain(settings, "eta", n, shards=2)
        figures["shard_speedup"] = round(two / one, 3)
        print(f"eta: 1 shard {one:,.0f}/s, 2 shards {two:,.0f}/s (speed-up {two / one:.2f})")
    finally:
        ray.shutdown()
        local.down(settings, PARTS)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
