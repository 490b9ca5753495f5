"""Freshness: from an event's production to the first incremental prediction served by a model
that has learned it.

Then feature freshness: from an event produced to its user's entity memory, as a batch-model
prediction reads it from the online store, counting it.

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
from typing import Any

import _serve_setup as setup
import httpx
from confluent_kafka import Producer

from rtml.kafka import producer_config
from rtml.usecases import get

USECASE = "tfd"


def quantiles(prefix: str, delays: list[float]) -> dict[str, float]:
    ordered, n = sorted(delays), len(delays)
    return {
        f"{prefix}p50_s": round(statistics.median(ordered), 3),
        f"{prefix}p95_s": round(ordered[min(int(0.95 * n), n - 1)], 3),
        f"{prefix}max_s": round(ordered[-1], 3),
    }


def entity_freshness(settings: Any, producer: Producer, n: int) -> list[float]:
    """From an event produced to its user's memory, as a batch prediction reads it, holding it:
    the probe is a later event of the same user, asked with ``?features=true`` every 20 ms until
    the memory it was answered from counts one more event."""
    spec = get(USECASE)
    url = f"{settings.serve_url}/api/v1/{USECASE}/batch/predict?features=true"
    delays = []
    with httpx.Client(timeout=30) as client:
        deadline = time.monotonic() + 180  # the batch side loads the new champion on its own
        model_url = f"{settings.serve_url}/api/v1/{USECASE}/model"
        while client.get(model_url).json()["batch"].get("version") is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the batch side did not load the champion in 3 minutes")
            time.sleep(0.5)

        def held(probe: dict[str, Any]) -> int:
            answer = client.post(url, json=probe)
            if answer.status_code != 200:
                raise RuntimeError(f"{answer.status_code}: {answer.text[:300]}")
            memories = answer.json()["entities_as_of"]
            return sum(m["events"] for m in memories if m["field"] == spec.key)

        for i in range(n):
            event = setup.sample_event(USECASE, 5000 + i)
            probe = {**event, "transaction_id": "tx-probe"}
            before = held(probe)
            t0 = time.perf_counter()
            producer.produce(spec.topic, json.dumps(event).encode(), str(event[spec.key]).encode())
            producer.flush(10)
            while held(probe) <= before:
                time.sleep(0.02)
            delays.append(time.perf_counter() - t0)
            time.sleep(0.1)
    return delays


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
        figures = {"events": n, **quantiles("", delays)}
        print(
            f"event → served model: p50 {figures['p50_s']} s, p95 {figures['p95_s']} s, "
            f"max {figures['max_s']} s"
        )
        setup.register_champion(settings, USECASE, 2000)
        features = entity_freshness(settings, producer, n)
        figures.update(quantiles("features_", features))
        figures["seconds"] = round(time.monotonic() - t_start, 1)
        print(
            f"event → its user's features in a batch prediction: p50 "
            f"{figures['features_p50_s']} s, p95 {figures['features_p95_s']} s"
        )
    finally:
        setup.stop_stack(settings)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
