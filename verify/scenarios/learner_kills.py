"""Learner kills: SIGKILL learners' worker processes at seeded random moments while a stream of
known size flows, many times; after the drain every learner has learned every valid event of its
partitions exactly once (count, and a trace with no gap and no repeat)."""

from __future__ import annotations

import time

from rtml.usecases import USECASES
from verify.context import Context
from verify.fleet import Fleet, Stream
from verify.verdict import Verdict

NAME = "learner-kills"
SUMMARY = "SIGKILL learner workers mid-stream, many times: every valid event learned exactly once"
NEEDS = ("kafka", "redis", "mlflow", "ray")


def run(ctx: Context) -> Verdict:
    verdict = Verdict(NAME)
    count, kills = ctx.size(1500, 20000), ctx.size(6, 30)
    rate = ctx.size(150, 400)  # events/s per use case: the stream outlasts the kills
    fleet = Fleet(ctx.settings, say=ctx.say)
    fleet.begin()
    names = list(USECASES)
    ctx.say(f"  {count} events per use case at {rate}/s, {kills} SIGKILLs")
    stream = Stream(ctx.settings, names, count, rate, ctx.seed)
    span = count / rate
    killed: dict[str, int] = dict.fromkeys(names, 0)
    t0 = time.monotonic()
    for i in range(kills):
        # Moments spread over the stream and a little after it (a kill during the drain too).
        at = t0 + (i + ctx.rng.random()) * span * 1.2 / kills
        time.sleep(max(0.0, at - time.monotonic()))
        if i % len(names) == 0:  # every learner is killed as often as the others, in random order
            order = ctx.rng.sample(names, len(names))
        victim = order[i % len(names)]
        fleet.sigkill(victim)
        killed[victim] += 1
    verdict.counts["kills"] = killed
    stream.join(verdict)
    fleet.check(verdict, timeout=ctx.size(300, 3600))
    fleet.stop()
    return verdict
