"""Bring River's Phishing dataset to a running rtml stack and check rtml against River.

    rtml up -p kafka -p redis -p mlflow -p ray     # or a whole `make up`
    python -m examples.phishing

1. The pages go, in the dataset's order, into a one-partition topic of the "user's"
   (``phishing.pages``), as a user's own service would have written them.
2. rtml starts a learner for the use case (named by the setting ``RTML_USECASE_SPECS``, which this
   script sets for the learner it starts) and learns the topic test-then-train.
3. River's own ``evaluate.progressive_val_score`` runs the same model over the same pages in the
   same order; the two log losses are printed side by side, and must be equal.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Producer

from rtml.kafka import producer_config
from rtml.online import build_model
from rtml.ray_env import apply_ray_env
from rtml.settings import Settings, get_settings
from rtml.usecases import USECASES
from rtml.usecases.base import dumps

from . import SPEC

#: How the use case is named to every process of the stack.
REFERENCE = "examples.phishing:SPEC"
#: When the first page was "seen"; each next one a second later.
START = datetime(2026, 1, 1, tzinfo=UTC)


def pages() -> list[dict[str, Any]]:
    """River's Phishing rows as the user's events, in the dataset's order."""
    from river import datasets

    return [
        {"page_id": f"page-{i}", "timestamp": (START + timedelta(seconds=i)).isoformat(), **x,
         "is_phishing": y}
        for i, (x, y) in enumerate(datasets.Phishing())
    ]  # fmt: skip


def load_topic(settings: Settings) -> int:
    """Write every page into the use case's own one-partition topic, made afresh (a rerun starts
    over); return how many."""
    from streaming.topics import recreate_topics

    recreate_topics(settings, [SPEC], topic_partitions=1)
    producer = Producer(producer_config(settings))
    rows = pages()
    for row in rows:
        producer.produce(SPEC.topic, dumps(row), row["page_id"].encode())
        producer.poll(0)
    if producer.flush(60):
        raise RuntimeError("pages not acknowledged by the broker")
    return len(rows)


def forget_learner(settings: Settings) -> None:
    """Stop the use case's learner, if one runs, and forget what it learned."""
    from ray_apps.learning import actor as learner
    from rtml.checkpoint import forget

    learner.connect(settings)
    learner.stop(SPEC.name)
    forget(settings, SPEC.name, 0)


def rtml_score(settings: Settings, expected: int, timeout_s: float = 300.0) -> dict[str, Any]:
    """Start the use case's learner and wait until it has learned ``expected`` events; its
    prequential report."""
    import ray

    from ray_apps.learning import actor as learner

    learner.connect(settings)
    handle = learner.start(SPEC.name, settings=learner.service_addresses(settings))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = ray.get(handle.status.remote())
        if status.get("error"):
            raise RuntimeError(f"the learner failed: {status['error']}")
        report = status.get("metrics") or {}
        if report.get("events", 0) >= expected:
            return report
        time.sleep(1.0)
    raise TimeoutError(f"the learner learned fewer than {expected} events in {timeout_s} s")


def river_score() -> float:
    """River's own progressive validation of the same model on the same stream."""
    from river import datasets, evaluate, metrics

    model = build_model(SPEC)  # the very builder the learner uses
    return float(
        evaluate.progressive_val_score(datasets.Phishing(), model, metrics.LogLoss()).get()
    )


def main() -> None:
    settings = get_settings().model_copy(update={"usecase_specs": [REFERENCE]})
    apply_ray_env(settings)  # this process joins Ray as a driver: configured before Ray loads
    USECASES.include([REFERENCE])
    forget_learner(settings)
    n = load_topic(settings)
    print(f"{n} pages in {SPEC.topic}")
    ours = rtml_score(settings, n)["overall"]["log_loss"]
    theirs = river_score()
    print(
        json.dumps({"rtml_log_loss": ours, "river_log_loss": theirs, "difference": ours - theirs})
    )


if __name__ == "__main__":
    main()
