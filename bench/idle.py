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
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from rtml.stack.sandbox import SLOTS, sandbox_env  # noqa: E402

#: Ray's processes, by what their command line says they run.
RAY_GROUPS = (
    ("OnlineLearner", "learners"),
    ("ServeReplica", "serve-replicas"),
    ("ServeController", "serve-control"),
    ("ProxyActor", "serve-control"),
    ("HAProxyManager", "serve-control"),
    ("haproxy", "serve-control"),
)
SAMPLE_EVERY_S = 5.0


def _slot() -> int:
    return int(os.environ.get("RTML_TEST_SLOT", SLOTS["bench-idle"]))


def _group(part: str, cmdline: str) -> str:
    if part != "ray":
        return part
    for needle, group in RAY_GROUPS:
        if needle in cmdline:
            return group
    return "ray"


class CpuMeter:
    """CPU seconds per group, from per-process deltas between samples: a process that starts in
    the window counts from zero, one that ends keeps what it had spent at its last sample."""

    def __init__(self, trees: dict[str, int]) -> None:
        self.trees = trees
        self.last: dict[tuple[int, float], tuple[str, float]] = {}
        self.spent: dict[str, float] = defaultdict(float)
        self.t0 = time.time()
        self.sample(first=True)

    def sample(self, first: bool = False) -> None:
        import psutil

        from rtml.stack.process import process_tree

        for part, pid in self.trees.items():
            for proc in process_tree(pid):
                try:
                    with proc.oneshot():
                        key = (proc.pid, proc.create_time())
                        times = proc.cpu_times()
                        cmdline = " ".join(proc.cmdline()) or proc.name()
                except psutil.Error:
                    continue
                total = times.user + times.system
                group = _group(part, cmdline)
                if key in self.last:
                    self.spent[group] += total - self.last[key][1]
                elif not first and key[1] >= self.t0:
                    self.spent[group] += total  # born in the window
                else:
                    self.spent[group] += 0.0
                self.last[key] = (group, total)


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def pss_by_group(trees: dict[str, int]) -> dict[str, int]:
    import psutil

    from rtml.stack.process import process_tree

    out: dict[str, int] = defaultdict(int)
    for part, pid in trees.items():
        for proc in process_tree(pid):
            try:
                cmdline = " ".join(proc.cmdline()) or proc.name()
                info = proc.memory_full_info()
            except psutil.Error:
                continue
            out[_group(part, cmdline)] += getattr(info, "pss", info.rss)
    return out


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


def rtml(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtml.cli", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=900,
    )


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
    from rtml.stack.parts import all_parts

    settings = load_settings()
    started = False
    if not args.attach:
        rtml("down")
        shutil.rmtree(state, ignore_errors=True)
        t0 = time.monotonic()
        up = rtml("up")
        print(up.stdout, file=sys.stderr)
        started = True
        if up.returncode != 0 or "FAILED" in up.stdout or "not started" in up.stdout:
            rtml("down")
            sys.exit(f"`rtml up` failed:\n{up.stdout}\n{up.stderr}")
        print(f"stack up in {time.monotonic() - t0:.0f}s; warm-up {args.warmup:g}s", flush=True)
    try:
        time.sleep(args.warmup)
        trees = {
            p.name: pid
            for p in all_parts(settings)
            if not p.external and (pid := p.files.running_pid()) is not None
        }
        since = time.time()
        busy0, all0 = machine_busy()
        meter = CpuMeter(trees)
        deadline = time.monotonic() + args.window
        while time.monotonic() < deadline:
            time.sleep(min(SAMPLE_EVERY_S, max(0.0, deadline - time.monotonic())))
            meter.sample()
        elapsed = time.time() - meter.t0
        busy1, all1 = machine_busy()
        cores_machine = (busy1 - busy0) / (all1 - all0) * (os.cpu_count() or 1)
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
