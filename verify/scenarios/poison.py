"""Poison input: malformed events of every kind (not JSON, wrong types, missing fields, absurd
values, unknown fields, huge messages, empty messages) mixed into valid streams. Each is
dead-lettered exactly once with the spec's reason; the learners never stop and learn every valid
event exactly once."""

from __future__ import annotations

import json

from confluent_kafka import Producer

from rtml.kafka import producer_config
from rtml.usecases import USECASES, get
from rtml.usecases.base import dumps
from rtml.usecases.generators import generator_for
from verify.context import Context
from verify.fleet import Fleet, Stream
from verify.verdict import Verdict

NAME = "poison"
SUMMARY = (
    "malformed events of every kind: each dead-lettered once with a reason, learners never stop"
)
NEEDS = ("kafka", "redis", "mlflow", "ray")
#: A message near the broker's default limit (1 MB): it must travel to the dead-letter topic too.
HUGE_BYTES = 900_000


def poison_of(usecase: str, seed: int) -> dict[str, bytes]:
    """One malformed message of each kind, built from a valid event of the use case."""
    spec = get(usecase)
    event = next(generator_for(usecase, seed=seed)).event
    numeric = next(k for k, v in event.items() if isinstance(v, float))
    text = next(k for k, v in event.items() if isinstance(v, str) and k != "timestamp")
    missing = {k: v for k, v in event.items() if k != spec.key}
    return {
        "not_json": b"this is not json {",
        "empty": b"",
        "not_an_object": b"[1, 2, 3]",
        "wrong_types": dumps({**event, numeric: "many", text: 12345}),
        "missing_field": dumps(missing),
        "absurd_value": dumps({**event, numeric: 1e300}),
        "unknown_field": dumps({**event, "surprise": True}),
        "huge_message": dumps({**event, text: "x" * HUGE_BYTES}),
        "deep_nesting": json.dumps({**event, text: _nested(200)}).encode(),
        "bad_utf8": b'{"' + "\u00e9".encode("latin-1") + b'": 1}',
    }


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def run(ctx: Context) -> Verdict:
    verdict = Verdict(NAME)
    count, rounds = ctx.size(600, 5000), ctx.size(3, 20)
    fleet = Fleet(ctx.settings, say=ctx.say)
    fleet.reset()
    fleet.start()
    names = list(USECASES)
    stream = Stream(ctx.settings, names, count, rate=ctx.size(200, 400), seed=ctx.seed)
    producer = Producer(producer_config(ctx.settings, **{"message.max.bytes": 1_000_000}))
    sent = 0
    for r in range(rounds):
        for name in names:
            for kind, value in poison_of(name, ctx.seed + r).items():
                producer.produce(get(name).topic, value, f"poison-{kind}-{r}".encode())
                sent += 1
        producer.flush(30)
    verdict.counts["poison_sent"] = sent
    verdict.expect(producer.flush(30) == 0, "poison events not acknowledged by the broker")
    stream.join(verdict)
    fleet.check(verdict, timeout=ctx.size(300, 3600), dead_letters_once=True)
    for name in names:
        status = fleet.status(name) or {}
        verdict.expect(bool(status.get("running")), f"{name}: the learner stopped")
    fleet.stop()
    return verdict
