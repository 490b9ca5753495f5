"""Freshness: from an event's production to the first incremental prediction served by a model
that has learned it.

Starts the bench stack, a ``tfd`` learner (after it has learned a warm-up stream) and the API.
Then, one at a time, an event is produced to Kafka (timed from the send, acks=all) and the client
asks ``/api/v1/tfd/incremental/predict`` every 20 ms until the answer's ``learned`` count includes
it; nothing else is produced meanwhile, so ``learned`` grows by exactly this event. The delay is
bounded below by the learner's poll (``consume`` waits up to 0.5 s for a micro-batch to fill) and
the broker's fetch wait, not by model shipping: predictions are answered by the learner itself.

    python bench/freshness.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import _serve_setup as setup
import httpx
from confluent_kafka import Producer

from rtml.kafka import producer_config
from rtml.usecases import get

USECASE = "tfd"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events, under two minutes")
    args = parser.parse_args()
    n = 25 if args.quick else 100
    t_start = time.monotonic()
    settings = setup.start_stack()
    delays: list[float] = []
    try:
        setup.learn(settings, USECASE, 500)
        setup.deploy_apps(settings, {}, floor=False)
        url = f"{settings.serve_url}/api/v1/{USECASE}/incremental/predict"
        spec = get(USECASE)
        probe = setup.sample_event(USECASE, 1)
        producer = Producer(producer_config(settings, **{"linger.ms": 0}))
        with httpx.Client(timeout=30) as client:
            learned = client.post(url, json=probe).json()["learned"]
            for i in range(n):
                event = setup.sample_event(USECASE, 1000 + i)
                t0 = time.perf_counter()
                producer.produce(
                    spec.topic, json.dumps(event).encode(), str(event[spec.key]).encode()
                )
                producer.flush(10)
                while True:
                    answer = client.post(url, json=probe).json()
                    if answer["learned"] > learned and answer["source"] == "learner":
                        break
                    time.sleep(0.02)
                delays.append(time.perf_counter() - t0)
                learned = answer["learned"]
                time.sleep(0.1)
        ordered = sorted(delays)
        figures = {
            "events": n,
            "p50_s": round(statistics.median(ordered), 3),
            "p95_s": round(ordered[min(int(0.95 * n), n - 1)], 3),
            "max_s": round(ordered[-1], 3),
            "seconds": round(time.monotonic() - t_start, 1),
        }
        print(
            f"event → served model: p50 {figures['p50_s']} s, p95 {figures['p95_s']} s, "
            f"max {figures['max_s']} s"
        )
    finally:
        setup.stop_stack(settings)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
