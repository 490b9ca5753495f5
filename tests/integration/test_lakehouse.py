"""The lakehouse against real Kafka, Spark and Delta: exact counts, real types, quarantine, and a
crash in the middle of a micro-batch that neither loses nor duplicates an event.

Counts are exact over a known range: the topics' end offsets are taken before this module
produces anything, and only rows at or after them are counted (the test stack's topics keep
events of earlier runs, and the lake keeps their rows).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pyarrow as pa
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from rtml.kafka import consumer_config, producer_config
from rtml.lake import Lake, checkpoint_uri
from rtml.settings import Settings
from rtml.stack.parts import Lakehouse
from rtml.usecases import USECASES
from rtml.usecases.generators import generator_for
from streaming.lakehouse.query import STREAM
from streaming.lakehouse.session import warehouse_dir
from streaming.producer import produce
from streaming.topics import ensure_topics
from tests.integration.test_stack import _listening_addresses, _loopback
from tests.stack import status_of

PER_USECASE = 300
BURST = 600
#: A short trigger: the test need not wait for the default 5 s one. (Batch size stays default:
#: the topics hold earlier tests' events, which the first start lands too.)
LAKE_ENV = {"RTML_LAKE_TRIGGER_S": "1"}


def cli(*args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtml.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **LAKE_ENV},
    )


Offsets = dict[str, dict[int, int]]  # topic → partition → offset


def end_offsets(settings: Settings) -> Offsets:
    consumer = Consumer(consumer_config(settings, "rtml-test-lakehouse-probe"))
    try:
        out: Offsets = {}
        for spec in USECASES.values():
            meta = consumer.list_topics(spec.topic, timeout=10).topics[spec.topic]
            out[spec.topic] = {
                p: consumer.get_watermark_offsets(TopicPartition(spec.topic, p), timeout=10)[1]
                for p in meta.partitions
            }
        return out
    finally:
        consumer.close()


def _since(offsets: dict[int, int]) -> str:
    return (
        "("
        + " OR ".join(
            f"(kafka_partition = {p} AND kafka_offset >= {o})" for p, o in offsets.items()
        )
        + ")"
    )


def landed(settings: Settings, since: Offsets) -> dict[str, tuple[int, int]]:
    """Per use case: (rows, distinct kafka positions) in bronze + quarantine since the offsets."""
    lake = Lake(settings)
    out = {}
    for name, spec in USECASES.items():
        where = _since(since[spec.topic])
        sql = (
            f"SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)) FROM ("
            f" SELECT kafka_partition, kafka_offset FROM {name} WHERE {where} UNION ALL"
            " SELECT kafka_partition, kafka_offset FROM quarantine"
            f" WHERE usecase = '{name}' AND {where})"
        )
        rows, distinct = lake.query(sql).to_pylist()[0].values()
        out[name] = (int(rows), int(distinct))
    return out


def expected(since: Offsets, until: Offsets) -> dict[str, int]:
    return {
        name: sum(until[spec.topic][p] - since[spec.topic][p] for p in since[spec.topic])
        for name, spec in USECASES.items()
    }


def wait_landed(
    settings: Settings, since: Offsets, want: dict[str, int], timeout: float = 180
) -> tuple[float, float]:
    """Seconds until the first of these rows is visible, and until all are."""
    t0 = time.monotonic()
    first: float | None = None
    got: dict[str, tuple[int, int]] = {}
    while time.monotonic() - t0 < timeout:
        got = landed(settings, since)
        if first is None and any(rows for rows, _ in got.values()):
            first = time.monotonic() - t0
        if all(got[name][0] >= n for name, n in want.items()):
            return first or 0.0, time.monotonic() - t0
        time.sleep(0.25)
    raise AssertionError(f"not landed in {timeout:.0f}s: want {want}, have {got}")


def send_malformed(settings: Settings) -> list[tuple[int, int, str]]:
    """Raw messages that fail the tfd schema; returns (partition, offset, expected reason)."""
    event = next(generator_for("tfd", seed=99)).event
    bad = [
        (b"{this is not json", "not JSON"),
        (
            json.dumps({**event, "amount": "lots"}).encode(),
            "amount: Input should be a valid number",
        ),
        (
            json.dumps({k: v for k, v in event.items() if k != "user_id"}).encode(),
            "user_id: Field required",
        ),
        (
            json.dumps({**event, "is_fraud": "perhaps"}).encode(),
            "is_fraud: Input should be a valid boolean",
        ),
        (json.dumps({**event, "admin": True}).encode(), "admin: Extra inputs are not permitted"),
        (None, "empty message"),
    ]
    delivered: list[tuple[int, int, str]] = []
    producer = Producer(producer_config(settings))
    for i, (value, reason) in enumerate(bad):

        def on_delivery(err, msg, reason=reason) -> None:
            assert err is None, err
            delivered.append((msg.partition(), msg.offset(), reason))

        producer.produce(USECASES["tfd"].topic, value, f"bad-{i}".encode(), on_delivery=on_delivery)
    assert producer.flush(30) == 0
    return delivered


def in_flight_batch(settings: Settings) -> bool:
    """A micro-batch with its offsets logged and its commit not: killing now forces a replay."""
    root = Path(checkpoint_uri(settings, STREAM))
    ids = lambda d: {int(p.name) for p in (root / d).glob("[0-9]*")}  # noqa: E731
    started, committed = ids("offsets"), ids("commits")
    return bool(started) and max(started) > max(committed, default=-1)


@pytest.fixture(scope="module")
def lake(stack: Settings) -> Iterator[dict]:
    """Produce known events and malformed messages, start the lakehouse, wait for all of it."""
    ensure_topics(stack)
    since = end_offsets(stack)
    report = produce(stack, list(USECASES), rate=0, count=PER_USECASE, seed=4242)
    assert report.failed == 0 and report.undelivered == 0
    malformed = send_malformed(stack)
    until = end_offsets(stack)
    want = expected(since, until)
    assert want["tfd"] == PER_USECASE + len(malformed) and want["eta"] == PER_USECASE

    t0 = time.monotonic()
    started = cli("lakehouse", "start")
    assert started.returncode == 0, started.stdout + started.stderr
    healthy_s = time.monotonic() - t0
    first_s, all_s = wait_landed(stack, since, want)
    print(
        f"\nlakehouse start: healthy {healthy_s:.1f}s, "
        f"first Delta rows {healthy_s + first_s:.1f}s, "
        f"all {sum(want.values())} rows {healthy_s + all_s:.1f}s"
    )
    yield {"since": since, "until": until, "want": want, "malformed": malformed}
    stopped = cli("lakehouse", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert status_of("lakehouse")["lakehouse"]["state"] == "stopped"


def test_every_event_lands_once_with_real_types(stack: Settings, lake: dict) -> None:
    got = landed(stack, lake["since"])
    assert got == {name: (n, n) for name, n in lake["want"].items()}, "exact, no duplicates"
    table = Lake(stack)
    for name, spec in USECASES.items():
        dataset = table.dataset(name)
        schema = dataset.schema
        assert schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
        assert schema.field("kafka_timestamp").type == pa.timestamp("us", tz="UTC")
        assert schema.field("kafka_offset").type == pa.int64()
        assert schema.field("kafka_partition").type == pa.int32()
        assert schema.field("truth").type == pa.string()
        assert schema.field("event_date").type == pa.date32()
        for field, info in spec.event.model_fields.items():
            want = {float: pa.float64(), int: pa.int64(), bool: pa.bool_(), str: pa.string()}.get(
                info.annotation
            )
            if want is not None:
                assert schema.field(field).type == want, f"{name}.{field}"
        assert table.tables[name].metadata().partition_columns == ["event_date"]
        where = _since(lake["since"][spec.topic])
        row = table.query(
            f"SELECT count(*) FILTER (truth IS NULL) AS no_truth,"
            f" count(*) FILTER (event_date <> CAST(timezone('UTC', timestamp) AS DATE))"
            " AS bad_date,"
            f" any_value(truth) AS truth FROM {name} WHERE {where}"
        ).to_pylist()[0]
        assert row["no_truth"] == 0 and row["bad_date"] == 0
        spec.parse_truth(row["truth"])
    # The batch features come from the same Delta rows, through the spec's one definition.
    features = table.features("tfd", where=_since(lake["since"]["tfd.events"]))
    assert features.num_rows == PER_USECASE
    assert features.column_names == USECASES["tfd"].feature_names


def test_malformed_events_are_quarantined_with_reasons(stack: Settings, lake: dict) -> None:
    rows = (
        Lake(stack)
        .query(
            "SELECT kafka_partition, kafka_offset, reason, value FROM quarantine"
            " WHERE usecase = 'tfd' AND " + _since(lake["since"]["tfd.events"])
        )
        .to_pylist()
    )
    found = {(r["kafka_partition"], r["kafka_offset"]): r for r in rows}
    assert len(rows) == len(found) == len(lake["malformed"])
    for partition, offset, reason in lake["malformed"]:
        assert reason in found[(partition, offset)]["reason"]
    assert any(r["value"] == "{this is not json" for r in rows), "the raw value is kept"


def test_sql_over_the_live_lake(stack: Settings, lake: dict) -> None:
    where = _since(lake["since"]["eta.events"])
    result = cli("sql", "--json", f"SELECT count(*) AS n FROM eta WHERE {where}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"n": PER_USECASE}
    tables = cli("sql", "--tables")
    assert (
        tables.returncode == 0
        and "quarantine" in tables.stdout
        and "TIMESTAMP WITH TIME ZONE" in tables.stdout
    )
    refused = cli("sql", "SELECT 1;\nCOPY tfd TO 'x.csv'")
    assert refused.returncode == 1 and "2 statements" in refused.stderr
    status = cli("lakehouse", "status", "--json")
    assert status.returncode == 0, status.stderr
    body = json.loads(status.stdout)
    assert body["part"]["state"] == "running" and set(body["queries"]) == set(USECASES)
    assert all(q["active"] for q in body["queries"].values())
    pid = body["part"]["pid"]
    exposed = {ip for ip in _listening_addresses(pid) if not _loopback(ip)}
    assert not exposed, f"the lakehouse listens beyond loopback: {exposed}"


def test_a_crash_mid_batch_and_a_restart_neither_lose_nor_duplicate(
    stack: Settings, lake: dict
) -> None:
    since = lake["since"]
    report = produce(stack, list(USECASES), rate=0, count=BURST, seed=777)
    assert report.failed == 0
    until = end_offsets(stack)
    want = expected(since, until)
    # Kill the whole job (python, JVM, workers) the moment a micro-batch is in flight.
    part = Lakehouse(stack)
    pid = part.files.running_pid()
    assert pid is not None
    deadline = time.monotonic() + 60
    while not in_flight_batch(stack) and time.monotonic() < deadline:
        time.sleep(0.02)
    replay = in_flight_batch(stack)
    os.killpg(pid, signal.SIGKILL)
    for _ in range(100):
        if part.files.running_pid() is None:
            break
        time.sleep(0.1)
    assert status_of("lakehouse")["lakehouse"]["state"] == "stopped"
    print(
        f"\nkilled with a micro-batch in flight: {replay}; "
        f"landed before restart: {landed(stack, since)}"
    )

    restarted = cli("lakehouse", "start")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    wait_landed(stack, since, want)
    time.sleep(3)  # a few more triggers: any duplicate would show up now
    assert landed(stack, since) == {name: (n, n) for name, n in want.items()}

    compacted = cli("lakehouse", "optimize")
    assert compacted.returncode == 0, compacted.stderr
    assert landed(stack, since) == {name: (n, n) for name, n in want.items()}, "OPTIMIZE keeps rows"


def test_spark_keeps_its_files_in_the_state_folder_not_the_working_directory(
    stack: Settings, lake: dict
) -> None:
    pid = Lakehouse(stack).files.running_pid()
    assert pid is not None
    cwd = Path(psutil.Process(pid).cwd())
    left = [
        name for name in ("spark-warehouse", "derby.log", "metastore_db") if (cwd / name).exists()
    ]
    assert not left, f"the lakehouse wrote {left} into its working directory {cwd}"
    assert warehouse_dir(stack).is_dir() and warehouse_dir(stack).is_relative_to(
        stack.state_dir.resolve()
    )
