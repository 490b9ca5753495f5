"""`rtml up | status | down` against the real services."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import subprocess
import sys
import time

import httpx
import psutil

from rtml.settings import Settings
from tests.integration.conftest import SERVICES
from tests.stack import rtml, status_of


def _listening_addresses(pid: int) -> set[str]:
    root = psutil.Process(pid)
    pids = {root.pid, *(c.pid for c in root.children(recursive=True))}
    return {
        c.laddr.ip
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    }


def _loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def test_every_service_is_healthy_and_on_loopback(stack: Settings) -> None:
    rows = status_of(*SERVICES)
    for name in SERVICES:
        row = rows[name]
        assert row["state"] == "running", row
        assert row["memory_bytes"] > 2**20, f"{name} memory not measured: {row}"
        exposed = {ip for ip in _listening_addresses(row["pid"]) if not _loopback(ip)}
        assert not exposed, f"{name} listens beyond loopback: {exposed}"


def test_up_again_reports_what_runs_and_restarts_nothing(stack: Settings) -> None:
    before = {n: r["pid"] for n, r in status_of(*SERVICES).items()}
    again = rtml("up", *[a for p in SERVICES for a in ("-p", p)])
    assert again.returncode == 0, again.stderr
    for name in SERVICES:
        assert re.search(rf"{name}: already running", again.stdout), again.stdout
    assert {n: r["pid"] for n, r in status_of(*SERVICES).items()} == before


def test_a_taken_port_stops_up_with_a_message(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "RTML_STATE_DIR": str(tmp_path), "RTML_REDIS_PORT": str(port)}
        result = subprocess.run(
            [sys.executable, "-m", "rtml.cli", "up", "-p", "redis"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} is taken" in result.stderr.replace("\n", " ")
    assert "RTML_" in result.stderr


def _produced(url: str, usecase: str) -> float:
    text = httpx.get(url, timeout=5).text
    match = re.search(rf'rtml_events_produced_total{{usecase="{usecase}"}} (\S+)', text)
    return float(match.group(1)) if match else 0.0


def test_producers_run_as_a_part_with_metrics(stack: Settings) -> None:
    started = rtml("up", "-p", "producers")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        row = status_of("producers")["producers"]
        assert row["state"] == "running"
        url = row["address"]
        first = {uc: _produced(url, uc) for uc in ("tfd", "eta", "ecci")}
        time.sleep(3)
        for uc, n in first.items():
            assert _produced(url, uc) > n, f"{uc}: no events acknowledged in 3 s"
    finally:
        stopped = rtml("down", "-p", "producers")
    assert "producers: stopped" in stopped.stdout
    assert status_of("producers")["producers"]["state"] == "stopped"
    assert status_of("kafka")["kafka"]["state"] == "running", "down -p producers stopped more"
