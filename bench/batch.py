"""The batch path's figures: Delta → DuckDB → Arrow read rate, Ray Tune sweep wall time, and the
streaming job's ingest lag (event produced → row visible in Delta).

Starts Kafka, MLflow, Ray and the Spark lakehouse job on the bench's own ports and state folder
(fresh each run) and stops them after.

1. **Delta read**: 100k generated ``tfd`` events written as a bronze table 10 times over (1M rows,
   distinct Kafka offsets; ``--quick``: 5 times), then ``SELECT *`` through ``rtml.lake`` (deltalake
   → Arrow dataset → DuckDB) into an in-memory Arrow table, best of 3; the spec's feature SQL
   (the training read) beside it.
2. **Sweeps**: ``jobs.sweep.run_sweep`` on ``tfd`` with 8 and then 16 trials over the newest 100k
   rows (``--quick``: 10k), each from loading the table to the gated registration.
3. **Ingest lag**: events produced at a steady rate into Kafka while the real Spark job lands them
   (its default trigger, ``RTML_LAKE_TRIGGER_S``); a poller reads the bronze table through
   ``rtml.lake`` every ``POLL_S`` and records, per new row, now minus its Kafka timestamp (the
   producer's send time). The poller's period bounds the error (≤ ``POLL_S`` late).

Last line: one JSON object with the figures (``delta_rows_per_s``, ``sweep_8_s``, ``sweep_16_s``,
``ingest_lag_p50_s``, ``ingest_lag_p95_s``, ...).

    python bench/batch.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from rtml.stack.sandbox import SLOTS, sandbox_env  # noqa: E402

BENCH_ENV = sandbox_env(SLOTS["bench-batch"], ROOT / ".rtml-bench-batch")
for key, value in BENCH_ENV.items():
    os.environ.setdefault(key, value)

from rtml.ray_env import apply_ray_env  # noqa: E402
from rtml.settings import Settings, load_settings  # noqa: E402

apply_ray_env(load_settings())  # this process joins Ray as a driver: configured before Ray loads

import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
from deltalake import write_deltalake  # noqa: E402

from rtml.lake import Lake, table_uri  # noqa: E402
from rtml.stack import local  # noqa: E402
from rtml.usecases.generators import generator_for  # noqa: E402
from streaming.sample_lake import bronze_table  # noqa: E402

PARTS = ["kafka", "mlflow", "ray", "lakehouse"]
POLL_S = 0.25
USECASE = "tfd"


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def delta_read(settings: Settings, events: pa.Table, copies: int) -> dict[str, float]:
    """rows/s of SELECT * (and of the feature SQL) from a Delta table of ``copies`` × events."""
    read_settings = settings.model_copy(update={"lake_dir": settings.state_dir / "read-lake"})
    uri = table_uri(read_settings, USECASE)
    for i in range(copies):
        offsets = pc.add(events["kafka_offset"], pa.scalar(i * events.num_rows, pa.int64()))
        copy = events.set_column(
            events.schema.get_field_index("kafka_offset"), "kafka_offset", offsets
        )
        write_deltalake(uri, copy, mode="append", partition_by=["event_date"])
    lake = Lake(read_settings, [USECASE])
    rows = 0
    best_all, best_features = float("inf"), float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        rows = lake.query(f"SELECT * FROM {USECASE}").num_rows
        best_all = min(best_all, time.perf_counter() - t0)
        t0 = time.perf_counter()
        lake.features(USECASE)
        best_features = min(best_features, time.perf_counter() - t0)
    shutil.rmtree(read_settings.lake_local_dir, ignore_errors=True)
    return {
        "delta_rows": rows,
        "delta_rows_per_s": rows / best_all,
        "delta_feature_rows_per_s": rows / best_features,
    }


def sweeps(settings: Settings, events: pa.Table, rows: int) -> dict[str, float]:
    from jobs.sweep import run_sweep

    write_deltalake(
        table_uri(settings, USECASE),
        events.slice(0, rows),
        mode="overwrite",
        partition_by=["event_date"],
    )
    out: dict[str, float] = {"sweep_rows": rows}
    for trials in (8, 16):
        t0 = time.perf_counter()
        result = run_sweep(settings, USECASE, trials, say=lambda line: None)
        out[f"sweep_{trials}_s"] = time.perf_counter() - t0
        say(
            f"  {trials} trials: {out[f'sweep_{trials}_s']:.0f}s, best {result.best_config}, "
            f"holdout {result.holdout}, gate {result.gate['decision']}"
        )
        out[f"sweep_{trials}_holdout_fbeta"] = result.holdout["fbeta"]
    out["oracle_holdout_fbeta"] = result.oracle["fbeta"]
    return out


def ingest_lag(settings: Settings, seconds: float, rate: float) -> dict[str, float]:
    """Produce at ``rate`` events/s for ``seconds`` while polling bronze for the new rows."""
    from streaming.producer import produce

    lake = Lake(settings, [USECASE])
    lake.refresh()
    start = datetime.now(UTC)
    seen: dict[tuple[int, int], float] = {}
    stop = threading.Event()
    count = int(seconds * rate)

    def producer() -> None:
        produce(settings, [USECASE], rate=rate, count=count, seed=int(time.time()))

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    deadline = time.monotonic() + seconds + 60
    while time.monotonic() < deadline and not stop.is_set():
        lake.refresh()
        if USECASE in lake.tables:
            found = lake.query(
                f"SELECT kafka_partition, kafka_offset, kafka_timestamp FROM {USECASE} "
                "WHERE kafka_timestamp >= $1",
                [start],
            ).to_pylist()
            now = time.time()
            for row in found:
                key = (row["kafka_partition"], row["kafka_offset"])
                if key not in seen:
                    seen[key] = now - row["kafka_timestamp"].timestamp()
            if len(seen) >= count and not thread.is_alive():
                break
        time.sleep(POLL_S)
    thread.join(timeout=10)
    lags = sorted(seen.values())
    if not lags:
        raise RuntimeError("no produced event became visible in Delta")
    q = statistics.quantiles(lags, n=100, method="inclusive")
    return {
        "ingest_events": len(lags),
        "ingest_expected": count,
        "ingest_lag_p50_s": q[49],
        "ingest_lag_p95_s": q[94],
        "ingest_lag_max_s": lags[-1],
        "lake_trigger_s": settings.lake_trigger_s,
    }


def warm_lakehouse(settings: Settings) -> None:
    """The first micro-batch of a fresh Spark job compiles its plans; it is not steady state."""
    from streaming.producer import produce

    produce(settings, [USECASE], rate=0, count=20, seed=1)
    lake = Lake(settings, [USECASE])
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        lake.refresh()
        if USECASE in lake.tables and lake.dataset(USECASE).count_rows() >= 20:
            return
        time.sleep(1)
    raise RuntimeError("the lakehouse landed nothing in 3 minutes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller figures, under 5 minutes")
    args = parser.parse_args()
    settings = load_settings()
    figures: dict[str, float | bool] = {"quick": args.quick}
    local.down(settings, PARTS)
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    t_all = time.perf_counter()
    try:
        rows = local.up(settings, PARTS, report=lambda line: say(f"  {line}"))
        if any(r.state in ("failed", "unhealthy") for r in rows):
            sys.exit(
                f"the bench stack did not come up: {[(r.name, r.state, r.detail) for r in rows]}"
            )
        n = 100_000
        say(f"generating {n} {USECASE} events")
        gen = generator_for(USECASE, seed=42)
        events = bronze_table(USECASE, (next(gen) for _ in range(n)))

        say("ingest lag (Kafka → Spark → Delta)")
        warm_lakehouse(settings)
        figures.update(ingest_lag(settings, 15 if args.quick else 60, rate=20))
        say(f"  {json.dumps({k: v for k, v in figures.items() if k.startswith('ingest')})}")
        local.down(settings, ["lakehouse"])  # its JVM would compete with the sweeps for the cores

        say("Delta → DuckDB → Arrow")
        figures.update(delta_read(settings, events, 5 if args.quick else 10))
        say(f"  {figures['delta_rows_per_s']:,.0f} rows/s over {figures['delta_rows']:,} rows")

        say("Ray Tune sweeps")
        shutil.rmtree(table_uri(settings, USECASE), ignore_errors=True)  # the lag run's rows
        figures.update(sweeps(settings, events, 10_000 if args.quick else n))
    finally:
        import ray

        ray.shutdown()
        local.down(settings, PARTS)
    figures["bench_s"] = time.perf_counter() - t_all
    figures["cpus"] = os.cpu_count() or 0
    figures["load_avg_1m"] = os.getloadavg()[0]
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
