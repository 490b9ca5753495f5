"""The lakehouse job's life: wait for Kafka, start Spark and the one query of every use case, report
its progress every second, and stop it on SIGTERM/SIGINT or when it fails."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import start_http_server

from rtml.kafka import wait_for_broker
from rtml.lake import lake_uri
from rtml.settings import LOOPBACK, Settings
from rtml.usecases import get as get_usecase
from streaming.lakehouse.progress import KafkaEnds, query_status, write_status
from streaming.lakehouse.query import start_query
from streaming.lakehouse.session import spark_packages, spark_session
from streaming.lakehouse.tables import ensure_tables

#: How often the job rewrites its status file (the stack's health check reads it).
STATUS_EVERY_S = 1.0
SUMMARY_EVERY_S = 60.0


def run(
    settings: Settings,
    usecases: Sequence[str],
    status_file: Path | None = None,
    metrics_port: int | None = None,
) -> int:
    """Run the streams until SIGTERM/SIGINT or a query fails; return the exit code.

    ``status_file``, when given, is rewritten every second with each query's progress;
    ``metrics_port``, when given, serves the same progress to Prometheus on loopback.
    """
    specs = [get_usecase(name) for name in usecases]
    if metrics_port:
        start_http_server(metrics_port, addr=LOOPBACK)
    if status_file is not None:
        status_file.parent.mkdir(parents=True, exist_ok=True)
        status_file.unlink(missing_ok=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    print(f"lakehouse: waiting for Kafka at {settings.kafka_servers}", flush=True)
    wait_for_broker(settings, timeout=120)
    t0 = time.monotonic()
    print(f"lakehouse: starting Spark ({', '.join(spark_packages(settings))})", flush=True)
    spark = spark_session(settings)
    ensure_tables(spark, settings, specs)
    query, writer = start_query(spark, settings, specs)
    kafka_ends = KafkaEnds(settings, [spec.topic for spec in specs])
    print(
        f"lakehouse: one query for {', '.join(writer.specs)} started in "
        f"{time.monotonic() - t0:.1f}s, "
        f"trigger {settings.lake_trigger_s:g}s, lake {lake_uri(settings)}",
        flush=True,
    )
    code, last_summary = 0, time.monotonic()
    try:
        while not stopping.is_set():
            try:
                ends = kafka_ends.refresh()
                statuses = query_status(query, writer, ends)
            except Exception:
                if stopping.is_set():  # SIGTERM reached the JVM too: it is going down already
                    break
                raise
            if stopping.is_set():
                break
            write_status(
                status_file, {"pid": os.getpid(), "updated": time.time(), "queries": statuses}
            )
            failed = {n: s["error"] for n, s in statuses.items() if not s["active"]}
            if failed:
                print(f"lakehouse: query failed: {failed}", file=sys.stderr, flush=True)
                code = 1
                break
            if time.monotonic() - last_summary >= SUMMARY_EVERY_S:
                last_summary = time.monotonic()
                print(
                    "lakehouse: "
                    + ", ".join(
                        f"{n} {s['rows']} rows / {s['quarantined']} quarantined"
                        for n, s in statuses.items()
                    ),
                    flush=True,
                )
            stopping.wait(STATUS_EVERY_S)
    finally:
        print("lakehouse: stopping", flush=True)
        try:
            query.stop()
        except Exception as exc:  # noqa: BLE001 - stopping: say it, go on stopping
            if not stopping.is_set():  # on SIGTERM the JVM is going down with the same signal
                print(f"lakehouse: stopping {query.name}: {exc}", file=sys.stderr, flush=True)
        with contextlib.suppress(Exception):  # the JVM may be gone already
            spark.stop()
        kafka_ends.close()
        if status_file is not None:
            status_file.unlink(missing_ok=True)
    return code
