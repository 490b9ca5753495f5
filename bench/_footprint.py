"""What the benches that measure the whole stack share: its CPU by part, its memory, the machine's
load, and `rtml` run as a command (bench/idle.py, bench/scale.py).

Ray's process tree is split by what its processes run (their command line names the actor or
the program): the learners, the Serve replicas, Serve's controller, proxy and HAProxy, and Ray's
own processes (GCS, raylet, dashboard, agents, idle workers). The cluster profile's second Ray
node (`ray-worker`) is split the same way: a learner is a learner on either node.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

#: Ray's processes, by what their command line says they run.
RAY_GROUPS = (
    ("OnlineLearner", "learners"),
    ("ServeReplica", "serve-replicas"),
    ("ServeController", "serve-control"),
    ("ProxyActor", "serve-control"),
    ("HAProxyManager", "serve-control"),
    ("haproxy", "serve-control"),
)
#: The parts whose processes are Ray's (the head and the cluster profile's second node).
RAY_PARTS = ("ray", "ray-worker")


def group_of(part: str, cmdline: str) -> str:
    """The group a process of ``part`` is counted in."""
    if part not in RAY_PARTS:
        return part
    for needle, group in RAY_GROUPS:
        if needle in cmdline:
            return group
    return "ray"


def stack_trees(settings: object) -> dict[str, int]:
    """Each running part of the stack (what `rtml status` lists) and its root process."""
    from rtml.stack.parts import all_parts

    return {
        p.name: pid
        for p in all_parts(settings)  # type: ignore[arg-type]
        if not p.external and (pid := p.files.running_pid()) is not None
    }


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
                group = group_of(part, cmdline)
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


def busy_cores(before: tuple[float, float], after: tuple[float, float]) -> float:
    """How many of the machine's cores were busy between two :func:`machine_busy` readings,
    whoever kept them busy."""
    import os

    return (after[0] - before[0]) / max(after[1] - before[1], 1e-9) * (os.cpu_count() or 1)


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
            out[group_of(part, cmdline)] += getattr(info, "pss", info.rss)
    return out


def rtml(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """`rtml ...` in a child process, with this process's environment (the bench's slot)."""
    return subprocess.run(
        [sys.executable, "-m", "rtml.cli", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def up_failed(up: subprocess.CompletedProcess[str]) -> bool:
    return up.returncode != 0 or "FAILED" in up.stdout or "not started" in up.stdout
