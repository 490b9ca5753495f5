"""Broker restart: stop the Kafka broker mid-stream and start it again (by the stack's own code);
alternately a clean stop (SIGTERM) and a crash (SIGKILL of its process group).
The producers retry without loss or duplication (idempotent, acks=all): the topic holds exactly
the events sent, each once. The learners wait, resume, and learn every valid event once."""

from __future__ import annotations

import signal
import time

from rtml.stack import local
from rtml.stack.parts import Kafka
from rtml.stack.process import terminate
from rtml.usecases import USECASES, get
from verify.context import Context
from verify.fleet import Fleet, Stream
from verify.ledger import read_topic
from verify.verdict import Verdict

NAME = "broker-restart"
SUMMARY = "stop and restart Kafka mid-stream: no event lost or duplicated, learners resume exactly"
NEEDS = ("kafka", "redis", "mlflow", "ray")


def run(ctx: Context) -> Verdict:
    verdict = Verdict(NAME)
    kafka = Kafka(ctx.settings)
    if kafka.external:
        verdict.problems.append(
            "the broker is external (RTML_KAFKA_BOOTSTRAP): rtml cannot restart it"
        )
        return verdict
    # the stream outlasts the outages (the long one: 6 × 15 s down over ~170 s of events)
    count, restarts, rate = ctx.size(1500, 10000), ctx.size(2, 6), ctx.size(120, 60)
    down_s = ctx.size(5, 15)
    fleet = Fleet(ctx.settings, say=ctx.say)
    fleet.begin()
    names = list(USECASES)
    stream = Stream(ctx.settings, names, count, rate, ctx.seed)
    span = count / rate
    outages, hows = [], []
    for i in range(restarts):
        at = (i + 0.5 + 0.3 * (ctx.rng.random() - 0.5)) * span / (restarts + 0.5)
        time.sleep(max(0.0, at - (time.monotonic() - stream.started)))
        how = "stop" if i % 2 == 0 else "kill"
        hows.append(how)
        ctx.say(
            f"  {'stopping' if how == 'stop' else 'killing'} the broker "
            f"({i + 1}/{restarts}) for {down_s}s"
        )
        t0 = time.monotonic()
        terminate(kafka.files, sig=signal.SIGTERM if how == "stop" else signal.SIGKILL)
        time.sleep(down_s)
        rows = local.up(ctx.settings, ["kafka"], report=lambda line: ctx.say(f"  {line}"))
        healthy = rows and rows[0].state in ("started", "running")
        outages.append(round(time.monotonic() - t0, 1))
        if not verdict.expect(bool(healthy), f"the broker did not come back: {rows}"):
            return verdict
    verdict.figures["outage_s"] = max(outages) if outages else 0.0
    verdict.counts["restarts"] = hows
    stream.join(verdict)
    # The broker's own record: every event exactly once.
    for name in names:
        ledger = read_topic(ctx.settings, get(name))
        verdict.counts[f"{name}_in_topic"] = ledger.messages
        verdict.expect(
            ledger.messages == count,
            f"{name}: the topic holds {ledger.messages} events, {count} were sent",
        )
        verdict.expect(ledger.duplicates == 0, f"{name}: {ledger.duplicates} events written twice")
    fleet.check(verdict, timeout=ctx.size(300, 3600))
    fleet.stop()
    return verdict
