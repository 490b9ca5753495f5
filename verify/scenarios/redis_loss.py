"""Redis restart, then Redis loss. A restart (append-only file kept) costs nothing but failed
checkpoints that the learners retry. A loss (the data folder wiped while the learners crash) sends
every learner back to its latest MLflow snapshot: it replays from the snapshot's offsets and, after
the drain, has learned every valid event exactly once — the events learned after the snapshot
were forgotten with the lost checkpoints and learned again, once."""

from __future__ import annotations

import shutil
import time

from rtml.stack import local
from rtml.stack.parts import Redis
from rtml.stack.process import terminate
from rtml.usecases import USECASES
from verify.context import Context
from verify.fleet import Fleet, Stream
from verify.verdict import Verdict

NAME = "redis-loss"
SUMMARY = "restart Redis, then wipe it: learners come back from MLflow snapshots, exactly once"
NEEDS = ("kafka", "redis", "mlflow", "ray")


def _restart(ctx: Context, part: Redis, verdict: Verdict, wipe: bool, fleet: Fleet) -> bool:
    terminate(part.files)
    if wipe:
        for name in fleet.usecases:  # crash while Redis is gone: nothing left to come back from
            fleet.sigkill(name)
        shutil.rmtree(part.home, ignore_errors=True)
    time.sleep(2)
    rows = local.up(ctx.settings, ["redis"], report=lambda line: ctx.say(f"  {line}"))
    return verdict.expect(
        bool(rows) and rows[0].state in ("started", "running"), f"Redis did not come back: {rows}"
    )


def _wait(what: str, check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


def run(ctx: Context) -> Verdict:
    verdict = Verdict(NAME)
    part = Redis(ctx.settings)
    if part.external:
        verdict.problems.append(
            "Redis is external (RTML_REDIS_URL): rtml cannot restart or wipe it"
        )
        return verdict
    count, rate = ctx.size(1200, 10000), ctx.size(100, 300)
    fleet = Fleet(ctx.settings, say=ctx.say)
    fleet.begin()
    names = list(USECASES)
    stream = Stream(ctx.settings, names, count, rate, ctx.seed)
    span = count / rate

    # 1. A restart a third into the stream.
    time.sleep(span / 3)
    ctx.say("  restarting Redis")
    if not _restart(ctx, part, verdict, wipe=False, fleet=fleet):
        return verdict
    # 2. Every learner has a snapshot, then Redis is lost while they crash.
    snapshotted = _wait(
        "snapshots",
        lambda: all((fleet.status(n) or {}).get("snapshot", {}).get("version") for n in names),
        timeout=120,
    )
    if not verdict.expect(snapshotted, "not every learner had an MLflow snapshot within 120 s"):
        return verdict
    snapshots = {n: (fleet.status(n) or {}).get("snapshot", {}).get("version") for n in names}
    ctx.say(f"  wiping Redis and killing the learners (snapshots {snapshots})")
    if not _restart(ctx, part, verdict, wipe=True, fleet=fleet):
        return verdict
    stream.join(verdict)
    fleet.check(verdict, timeout=ctx.size(300, 3600))
    for name in names:
        restored = verdict.counts.get(name, {}).get("restored_from")
        verdict.expect(
            restored == "mlflow snapshot",
            f"{name}: restored from {restored!r}, not the MLflow snapshot",
        )
    fleet.stop()
    return verdict
