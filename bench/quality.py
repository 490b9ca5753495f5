"""Quality: how much of each world's reachable ceiling the online learners and the batch
champions reach, on events from a seed the tests never use.

Starts a fresh stack (Kafka, Redis, MLflow, Ray and the Spark lakehouse) on the bench's own slot.
Produces ``--events`` events per use case from ``--seed`` (all three at once, as fast as Kafka
takes them), starts one learner per use case whose recent metrics span the last ``--tail``
events, and waits until each has learned every event: its recent primary metric, beside the
oracle's and the ceiling's over the same events, is the online figure. Then it waits until the
lake holds every event, stops the lakehouse (its JVM would compete with the sweeps for the two
cores) and runs a Ray Tune sweep per use case over the lake (``jobs.sweep.run_sweep``): the
champion's holdout score beside the holdout's oracle and ceiling is the batch figure.

A share is the model's score over the reference's (an error: the reference's over the model's).
For ``ecci`` the figure is the adjusted Rand index against the true segments, whose ceiling is 1.

Last line: one JSON object with, for each use case ``u`` and side ``s`` (online, batch),
``primary_s_u``, ``share_oracle_s_u`` and ``share_ceiling_s_u``, and the run's settings.

    python bench/quality.py --seed S --events N [--trials T] [--tail K]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from rtml.stack.sandbox import SLOTS, sandbox_env  # noqa: E402

BENCH_ENV = sandbox_env(SLOTS["bench-quality"], ROOT / ".rtml-bench-quality")
for key, value in BENCH_ENV.items():
    os.environ.setdefault(key, value)

from rtml.ray_env import apply_ray_env  # noqa: E402
from rtml.settings import Settings, load_settings  # noqa: E402

apply_ray_env(load_settings())  # this process joins Ray as a driver: configured before Ray loads

import ray  # noqa: E402

from ray_apps.learning import actor as learner  # noqa: E402
from rtml.lake import Lake  # noqa: E402
from rtml.stack import local  # noqa: E402
from rtml.usecases import get  # noqa: E402
from streaming.producer import produce  # noqa: E402
from streaming.topics import ensure_topics  # noqa: E402

PARTS = ["kafka", "redis", "mlflow", "ray", "lakehouse"]
USECASES = ["tfd", "eta", "ecci"]
#: Events per second of event time: a backlog of the worlds at their own pace (their bursts and
#: label delays are in event time), sent as fast as Kafka takes it.
EVENT_RATE = 20.0


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def figure(usecase: str, scores: dict[str, float], ceiling_share: float | None) -> float | None:
    """The share judged: of the ceiling, except for a clustering, where it is the ARI itself."""
    if usecase == "ecci":
        return scores.get("ari")
    return ceiling_share


def online(settings: Settings, n: int, tail: int) -> dict[str, Any]:
    """One learner per use case over the produced events; its figures over the last ``tail``."""
    addresses = {
        **learner.service_addresses(settings),
        "metrics_window": tail,
        "checkpoint_every_events": max(n // 5, 1000),
    }
    handles = {u: learner.start(u, settings=addresses) for u in USECASES}
    out: dict[str, Any] = {}
    t0 = time.monotonic()
    pending = set(USECASES)
    while pending:
        time.sleep(5)
        for u in sorted(pending):
            status = ray.get(handles[u].status.remote())
            if status.get("error"):
                sys.exit(f"{u} learner failed: {status['error']}")
            done = status.get("learned", 0) + status.get("dead_lettered", 0)
            if done >= n:
                pending.discard(u)
                out[u] = status
                say(f"  {u}: learned {status['learned']} in {time.monotonic() - t0:.0f}s")
        if time.monotonic() - t0 > 1800:
            sys.exit(f"learners did not finish in 30 minutes: {sorted(pending)}")
    figures: dict[str, Any] = {"online_s": time.monotonic() - t0}
    for u, status in out.items():
        spec = get(u)
        report = status["metrics"]
        primary = spec.primary_metric if spec.target else "ari"
        recent = report["recent"]
        figures[f"primary_online_{u}"] = recent.get(primary)
        figures[f"share_oracle_online_{u}"] = report["recent_share_of_oracle"].get(primary)
        ceiling = report["recent_share_of_ceiling"].get(primary)
        figures[f"share_ceiling_online_{u}"] = figure(u, recent, ceiling)
        if "entities" in status:
            figures[f"entity_state_online_{u}"] = status["entities"]
    for handle in handles.values():
        ray.kill(handle)
    return figures


def wait_for_lake(settings: Settings, n: int) -> None:
    lake = Lake(settings, USECASES)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        lake.refresh()
        rows = {u: lake.dataset(u).count_rows() if u in lake.tables else 0 for u in USECASES}
        if all(r >= n for r in rows.values()):
            return
        time.sleep(5)
    sys.exit(f"the lake did not land {n} events per use case in 15 minutes: {rows}")


def batch(settings: Settings, trials: int) -> dict[str, Any]:
    from jobs.sweep import run_sweep

    figures: dict[str, Any] = {}
    for u in USECASES:
        spec = get(u)
        t0 = time.monotonic()
        result = run_sweep(settings, u, trials, say=lambda line: say(f"    {line}"))
        primary = spec.primary_metric if spec.target else "ari"
        holdout = result.holdout
        ceiling_share = None
        if result.ceiling is not None:
            ceiling_share = spec.task.share(primary, holdout[primary], result.ceiling[primary])
        figures[f"primary_batch_{u}"] = holdout.get(primary)
        if result.oracle is not None:
            figures[f"share_oracle_batch_{u}"] = spec.task.share(
                primary, holdout[primary], result.oracle[primary]
            )
        figures[f"share_ceiling_batch_{u}"] = figure(u, holdout, ceiling_share)
        say(f"  {u}: holdout {holdout} in {time.monotonic() - t0:.0f}s")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", type=int, required=True, help="the worlds' seed")
    parser.add_argument("--events", type=int, default=50_000, help="events per use case")
    parser.add_argument("--tail", type=int, default=10_000, help="events the online figure spans")
    parser.add_argument("--trials", type=int, default=8, help="trials of each sweep")
    args = parser.parse_args()
    settings = load_settings()
    figures: dict[str, Any] = {"seed": args.seed, "events": args.events, "tail": args.tail}
    local.down(settings, PARTS)
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    t_all = time.perf_counter()
    try:
        rows = local.up(settings, PARTS, report=lambda line: say(f"  {line}"))
        if any(r.state in ("failed", "unhealthy") for r in rows):
            sys.exit(f"the stack did not come up: {[(r.name, r.state, r.detail) for r in rows]}")
        ensure_topics(settings)
        learner.connect(settings)
        say(f"producing {args.events} events per use case, seed {args.seed}")
        produce(
            settings, USECASES, rate=0, count=args.events, seed=args.seed, event_rate=EVENT_RATE
        )
        say("online: one learner per use case")
        figures.update(online(settings, args.events, min(args.tail, args.events)))
        say("landing the events in the lake")
        wait_for_lake(settings, args.events)
        local.down(settings, ["lakehouse"])
        say(f"batch: a sweep of {args.trials} trials per use case")
        figures.update(batch(settings, args.trials))
    finally:
        ray.shutdown()
        local.down(settings, PARTS)
    figures["bench_s"] = time.perf_counter() - t_all
    figures["load_avg_1m"] = os.getloadavg()[0]
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
