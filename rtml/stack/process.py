"""Background processes that the local stack owns, tracked by pid files.

A part of the stack is started in its own session (process group) with its output in a log
file, and its pid is written under ``<state>/pids``. ``down`` signals exactly those process groups:
nothing that rtml did not start is touched. A pid file whose process is gone, or whose pid now
belongs to another program (pid reuse), counts as not running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class ProcessFiles:
    """Where one part keeps its pid and its log."""

    name: str
    state_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "pids" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "logs" / f"{self.name}.log"

    def running_pid(self) -> int | None:
        """The pid of our live process, or None (and a stale pid file is removed)."""
        try:
            pid, created = self.pid_file.read_text().split()
            proc = psutil.Process(int(pid))
            if abs(proc.create_time() - float(created)) < 1.0 and proc.status() != "zombie":
                return int(pid)
        except (FileNotFoundError, ValueError, psutil.Error):
            pass
        self.pid_file.unlink(missing_ok=True)
        return None


def spawn(
    files: ProcessFiles,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start ``argv`` detached from this process (own session), logging to the part's log."""
    files.pid_file.parent.mkdir(parents=True, exist_ok=True)
    files.log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(files.log_file, "ab") as log:
        log.write(f"\n--- {time.strftime('%F %T')} start: {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    files.pid_file.write_text(f"{proc.pid} {psutil.Process(proc.pid).create_time()}")
    return proc.pid


def process_tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants; empty when it is gone."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def kill_all(procs: list[psutil.Process]) -> None:
    """SIGKILL each process at once (one already gone is skipped)."""
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass


def wait_dead(procs: list[psutil.Process], timeout_s: float = 5.0) -> bool:
    """Wait until no process of ``procs`` runs: each gone or a zombie (it runs no code, its sockets
    are closed; reaping it is its parent's business). True if they all died in time."""

    def dead(proc: psutil.Process) -> bool:
        try:
            return proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    deadline = time.monotonic() + timeout_s
    while not all(dead(p) for p in procs):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def terminate(
    files: ProcessFiles, grace_s: float = 20.0, sig: signal.Signals = signal.SIGTERM
) -> bool:
    """Signal the part's process group (SIGTERM), SIGKILL what is left of its process tree after
    ``grace_s``; True if it ran. ``sig=SIGKILL`` is a crash: no process gets to clean up."""
    pid = files.running_pid()
    if pid is None:
        return False
    tree = process_tree(pid)
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    _, alive = psutil.wait_procs(tree, timeout=0 if sig == signal.SIGKILL else grace_s)
    kill_all(alive)
    psutil.wait_procs(alive, timeout=5)
    files.pid_file.unlink(missing_ok=True)
    return True


def tree_memory(pid: int) -> int:
    """Memory of a process and all its descendants, in bytes.

    PSS (proportional set size) where the kernel reports it: Ray's and MLflow's forked workers
    share most of their pages, and RSS would count those once per process (Ray's idle head: RSS
    ~2.0 GB, PSS ~0.8 GB). Falls back to RSS.
    """
    total = 0
    for proc in process_tree(pid):
        try:
            info = proc.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except psutil.AccessDenied:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        except psutil.Error:
            pass
    return total


def port_owner(port: int) -> str:
    """Who listens on a local port, as "name (pid N)", for error messages; "" if unknown."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                if conn.pid:
                    return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
    except (psutil.Error, PermissionError):
        pass
    return ""
