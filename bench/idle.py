"""Idle footprint: what the whole local stack costs with nothing but the default traffic.

Starts a complete stack (`rtml up`: every part, the learners and the API) in its own sandbox slot
from empty state, or attaches to the one running there (``--attach``), waits for the warm-up, then
samples every process of every part every few seconds and sums the CPU seconds each spent over
the window. Ray's process tree is split by what its processes run: the learners, the Serve
replicas, Serve's controller, proxy and HAProxy, and Ray's own processes (GCS, raylet,
dashboard, agents, idle workers). At the end: each part's PSS, and the lakehouse's ingest lag
over the window (``ingested_at - kafka_timestamp`` of every bronze row produced in it: the wait
for the trigger and the batch's planning, not the Delta commit that follows).

The machine may be shared: the table also shows how busy the whole machine was, so a figure
measured beside someone else's load can be read for what it is. Compare before/after back to back
on the same slot.

    python bench/idle.py [--window 300] [--warmup 60] [--attach] [--keep] [--slot N]

The last line is JSON: ``{"cores_total": ..., "cores_lakehouse": ..., "pss_gib": ..., ...}``.
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
from _footprint import (  # noqa: E402
    CpuMeter,
    busy_cores,
    machine_busy,
    pss_by_group,
    rtml,
    stack_trees,
    up_failed,
)

from rtml.stack.sandbox import SLOTS, sandbox_env  # noqa: E402

SAMPLE_EVERY_S = 5.0


def _slot() -> int:
    return int(os.environ.get("RTML_TEST_SLOT", SLOTS["bench-idle"]))


def ingest_lag(settings: object, since: float) -> dict[str, float | int]:
    from datetime import UTC, datetime

    from rtml.lake import Lake
    from rtml.usecases import USECASES

    lake = Lake(settings)  # type: ignore[arg-type]
    start = datetime.fromtimestamp(since, UTC)
    lags: list[float] = []
    for name in USECASES:
        if name not in lake.tables:
            continue
        rows = lake.query(
            f"SELECT epoch(ingested_at) - epoch(kafka_timestamp) AS lag FROM {name}"
            " WHERE kafka_timestamp >= $1",
            [start],
        ).to_pylist()
        lags.extend(float(r["lag"]) for r in rows)
    if not lags:
        return {"ingest_rows": 0}
    lags.sort()
    return {
        "ingest_rows": len(lags),
        "ingest_lag_p50_s": round(lags[len(lags) // 2], 2),
        "ingest_lag_p95_s": round(lags[min(len(lags) - 1, int(0.95 * len(lags)))], 2),
        "ingest_lag_max_s": round(lags[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--window", type=float, default=300.0, help="seconds sampled")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the window")
    parser.add_argument("--attach", action="store_true", help="measure the stack running there")
    parser.add_argument("--keep", action="store_true", help="leave the stack running after")
    parser.add_argument(
        "--slot", type=int, default=_slot(), help="sandbox slot (default: RTML_TEST_SLOT)"
    )
    args = parser.parse_args()
    state = ROOT / f".rtml-bench-idle-{args.slot}"
    os.environ.update(sandbox_env(args.slot, state))

    from rtml.settings import load_settings

    settings = load_settings()
    started = False
    if not args.attach:
        rtml("down")
        shutil.rmtree(state, ignore_errors=True)
        t0 = time.monotonic()
        up = rtml("up")
        print(up.stdout, file=sys.stderr)
        started = True
        if up_failed(up):
            rtml("down")
            sys.exit(f"`rtml up` failed:\n{up.stdout}\n{up.stderr}")
        print(f"stack up in {time.monotonic() - t0:.0f}s; warm-up {args.warmup:g}s", flush=True)
    try:
        time.sleep(args.warmup)
        trees = stack_trees(settings)
        since = time.time()
        busy0, all0 = machine_busy()
        meter = CpuMeter(trees)
        deadline = time.monotonic() + args.window
        while time.monotonic() < deadline:
            time.sleep(min(SAMPLE_EVERY_S, max(0.0, deadline - time.monotonic())))
            meter.sample()
        elapsed = time.time() - meter.t0
        busy1, all1 = machine_busy()
        cores_machine = busy_cores((busy0, all0), (busy1, all1))
        pss = pss_by_group(trees)
        lag = ingest_lag(settings, since)
    finally:
        if started and not args.keep:
            rtml("down")

    groups = sorted(set(meter.spent) | set(pss), key=lambda g: -meter.spent.get(g, 0.0))
    print(f"\n{'part':<16}{'cores':>8}{'PSS MiB':>10}")
    for group in groups:
        cores = meter.spent.get(group, 0.0) / elapsed
        print(f"{group:<16}{cores:>8.3f}{pss.get(group, 0) / 2**20:>10.0f}")
    total = sum(meter.spent.values()) / elapsed
    pss_total = sum(pss.values())
    print(f"{'total':<16}{total:>8.3f}{pss_total / 2**20:>10.0f}")
    print(f"whole machine busy: {cores_machine:.2f} cores over {elapsed:.0f}s (others included)")
    print(json.dumps(lag))
    figures = {
        "cores_total": round(total, 3),
        "cores_lakehouse": round(meter.spent.get("lakehouse", 0.0) / elapsed, 3),
        "pss_gib": round(pss_total / 2**30, 2),
        "cores_by_part": {g: round(meter.spent.get(g, 0.0) / elapsed, 3) for g in groups},
        "pss_mib_by_part": {g: round(pss.get(g, 0) / 2**20) for g in groups},
        "cores_machine": round(cores_machine, 2),
        "window_s": round(elapsed),
        **lag,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
