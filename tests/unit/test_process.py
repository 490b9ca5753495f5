from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil

from rtml.stack.process import ProcessFiles, spawn, terminate, tree_memory


def test_spawn_and_terminate_a_process_tree(tmp_path: Path) -> None:
    files = ProcessFiles("sleeper", tmp_path)
    # a parent with a child: terminate must take the whole group
    code = "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
    pid = spawn(files, [sys.executable, "-c", code])
    time.sleep(0.5)
    assert files.running_pid() == pid
    children = psutil.Process(pid).children(recursive=True)
    assert children and tree_memory(pid) > 0
    assert terminate(files, grace_s=5)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    assert not any(c.is_running() and c.status() != "zombie" for c in children)
    assert files.running_pid() is None and not files.pid_file.exists()


def test_a_pid_file_of_another_process_is_not_ours(tmp_path: Path) -> None:
    """Pid reuse: a pid file whose process has another start time is stale, and never signalled."""
    other = subprocess.Popen(["sleep", "30"])
    try:
        files = ProcessFiles("ghost", tmp_path)
        files.pid_file.parent.mkdir(parents=True)
        files.pid_file.write_text(f"{other.pid} 12345.0")
        assert files.running_pid() is None
        assert not terminate(files)
        assert other.poll() is None, "down must not touch a process it did not start"
    finally:
        other.kill()
        other.wait()
