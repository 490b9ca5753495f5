"""Scaling: the highest event rate the whole stack holds, per learner shard and per Ray node, and
what each part costs per 1 000 events — a curve, not a point.

For each configuration (learner shards per use case × Ray nodes) it starts a complete stack in
its own sandbox slot from empty state (`rtml up`; two nodes: `--profile cluster`, whose second
Ray node takes half the learners), then raises the producers' rate step by step (all three use
cases at once: the producers part is restarted at each step's rate) while a client sends
prediction requests at a fixed rate (open loop, round robin over the use cases' incremental
routes). Over each step it samples, every few seconds:

- the learners' lag (Kafka's end offsets minus each shard's next offset, from its status), and
  the lakehouse's (its status file's ``offsets_behind``);
- the CPU seconds of every process of every part (bench/_footprint.py: `rtml status`'s trees,
  Ray's split by what runs in it), and how busy the whole machine was;
- each prediction's latency.

A part *holds* a step when its lag does not grow over it: the least-squares slope of its lag is
at most 5 % of the offered rate (bench/_scaling.py). The saturation step is the highest where
every part held (else the highest where the learners did). There, River's own loop is timed over
the same events (read back from the topics, entity features computed beforehand, the model
first warmed on the events before the step, untimed): **efficiency** = River's CPU-s per 1 000
events ÷ the whole stack's CPU-s per 1 000 events in that step.

    python bench/scale.py --quick                    # one configuration, < 10 minutes
    python bench/scale.py --shards 1,2,3 --nodes 1,2 # the curve; writes docs/scaling.md's table
    python bench/scale.py --configs 1:1,3:1,3:2      # a reduced grid (shards:nodes)

The last line is one JSON object: ``{"efficiency": ..., "saturation": {...}, ...}``. The full
run writes its table, projection and plot (docs/scaling.png) between the markers of
docs/scaling.md and keeps every figure in docs/scaling.json (``--docs-from`` redraws from it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import _scaling  # noqa: E402
from _footprint import (  # noqa: E402
    CpuMeter,
    busy_cores,
    machine_busy,
    rtml,
    stack_trees,
    up_failed,
)

from rtml.stack.sandbox import SLOTS, sandbox_env  # noqa: E402

SAMPLE_EVERY_S = 5.0
PARTS = ("learners", "lakehouse")
QUICK_RATES = (20.0, 80.0, 200.0)
FULL_RATES = (10.0, 40.0, 100.0, 200.0, 300.0, 450.0, 700.0)
PROJECT_AT = (10_000.0, 100_000.0)
DOC = ROOT / "docs" / "scaling.md"
BEGIN, END = "<!-- bench/scale.py: begin -->", "<!-- bench/scale.py: end -->"


def _slot() -> int:
    return int(os.environ.get("RTML_TEST_SLOT", SLOTS["bench-scale"]))


# -- what is sampled ------------------------------------------------------------------------------


class Ends:
    """Kafka's end offsets of every use case's topic, through one consumer held open."""

    def __init__(self, settings: Any) -> None:
        from confluent_kafka import Consumer

        from rtml.kafka import consumer_config
        from rtml.usecases import USECASES, get

        self.topics = {name: get(name).topic for name in USECASES}
        self.consumer = Consumer(consumer_config(settings, "rtml-bench-scale-ends"))
        self.partitions = {
            name: sorted(self.consumer.list_topics(t, timeout=30).topics[t].partitions)
            for name, t in self.topics.items()
        }

    def read(self) -> dict[str, dict[int, int]]:
        from confluent_kafka import TopicPartition

        return {
            name: {
                p: self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in self.partitions[name]
            }
            for name, topic in self.topics.items()
        }

    def close(self) -> None:
        self.consumer.close()


def total(ends: dict[str, dict[int, int]]) -> int:
    return sum(sum(parts.values()) for parts in ends.values())


def learner_lag(handles: dict[str, list[Any]], ends: dict[str, dict[int, int]]) -> tuple[int, int]:
    """(events behind, events learned) of every shard of every use case."""
    import ray

    from ray_apps.learning.actor import owned_partitions

    behind = learned = 0
    for name, shards in handles.items():
        statuses = ray.get([h.status.remote() for h in shards], timeout=60)
        for shard, st in enumerate(statuses):
            offsets = {int(p): o for p, o in (st.get("offsets") or {}).items()}
            learned += st.get("learned", 0) + st.get("dead_lettered", 0)
            # a fresh stack's topics start at 0: a partition not read yet is behind by its end
            for p in owned_partitions(len(ends[name]), shard, len(shards)):
                behind += max(ends[name].get(p, 0) - offsets.get(p, 0), 0)
    return behind, learned


def lake_lag(lakehouse: Any) -> tuple[int | None, int, Any]:
    """(records behind, records landed, micro-batch id) of the lakehouse's one query, from its
    status file."""
    status = lakehouse.job_status() or {}
    queries = status.get("queries", {})
    behind = [q.get("offsets_behind") for q in queries.values()]
    rows = sum(int(q.get("rows") or 0) + int(q.get("quarantined") or 0) for q in queries.values())
    batch = next(iter(queries.values()), {}).get("batch")
    return (None if not behind or None in behind else sum(behind)), rows, batch


class LakeWatch(threading.Thread):
    """The lakehouse's lag at each micro-batch's end: the foot of its sawtooth.

    Between batches its lag grows by the whole rate and each batch takes it back down, so lag
    read at any moment says more about the batch's phase than about a trend; read as each new
    batch is reported (the status file is rewritten every second), it is comparable from batch
    to batch. Also each batch's wall time, from the time between reports.
    """

    def __init__(self, lakehouse: Any) -> None:
        super().__init__(daemon=True)
        self.lakehouse = lakehouse
        self.points: list[tuple[float, float]] = []  # (time, records behind) at a batch's end
        self.stopping = threading.Event()

    def run(self) -> None:
        last = None
        while not self.stopping.wait(0.5):
            try:
                behind, _, batch = lake_lag(self.lakehouse)
            except OSError:
                continue
            if batch is not None and batch != last and behind is not None:
                if last is not None:
                    self.points.append((time.time(), float(behind)))
                last = batch

    def window(self, t0: float, t1: float) -> list[tuple[float, float]]:
        return [(t - t0, b) for t, b in list(self.points) if t0 <= t < t1]

    def batches(self, t0: float, t1: float) -> list[float]:
        """Wall seconds between successive batch ends in the window."""
        ends = [t for t, _ in list(self.points) if t0 <= t < t1]
        return [round(b - a, 1) for a, b in itertools.pairwise(ends)]


class Client(threading.Thread):
    """Prediction requests at a fixed rate (open loop: a slow answer does not delay the next
    request), round robin over the use cases' incremental predict routes."""

    def __init__(self, settings: Any, rate: float) -> None:
        super().__init__(daemon=True)
        from rtml.usecases import USECASES
        from rtml.usecases.generators import generator_for

        self.urls = [f"{settings.serve_url}/api/v1/{n}/incremental/predict" for n in USECASES]
        self.bodies: dict[str, list[str]] = {}
        for url, name in zip(self.urls, USECASES, strict=True):
            gen = generator_for(name, seed=77)
            self.bodies[url] = [json.dumps(dict(next(gen).event), default=str) for _ in range(50)]
        self.rate = rate
        self.done: list[tuple[float, float, bool]] = []  # (sent at, seconds, ok)
        self.stopping = threading.Event()

    def run(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        import httpx

        with httpx.Client(timeout=10) as http, ThreadPoolExecutor(8) as pool:

            def one(i: int) -> None:
                url = self.urls[i % len(self.urls)]
                body = self.bodies[url][i % 50]
                t0 = time.time()
                try:
                    r = http.post(url, content=body, headers={"content-type": "application/json"})
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.done.append((t0, time.time() - t0, ok))

            start, i = time.monotonic(), 0
            while not self.stopping.is_set():
                ahead = start + i / self.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                pool.submit(one, i)
                i += 1

    def window(self, t0: float, t1: float) -> dict[str, Any]:
        got = [(s, ok) for t, s, ok in list(self.done) if t0 <= t < t1]
        lat = sorted(1000 * s for s, ok in got if ok)
        if not lat:
            return {"requests": len(got), "errors": len(got)}

        def pct(q: float) -> float:
            return round(lat[min(len(lat) - 1, int(q * len(lat)))], 1)

        return {
            "requests": len(got),
            "errors": sum(1 for _, ok in got if not ok),
            "p50_ms": pct(0.5),
            "p95_ms": pct(0.95),
            "p99_ms": pct(0.99),
        }


# -- one configuration ----------------------------------------------------------------------------


def set_rate(settings: Any, rate: float) -> None:
    """The producers part again, at ``rate`` events/s per use case."""
    from rtml.stack import local

    local.down(settings, ["producers"])
    rows = local.up(settings.model_copy(update={"producer_rate": rate}), ["producers"])
    if any(r.state not in ("started", "running") for r in rows):
        raise RuntimeError(f"producers did not start at {rate}/s: {rows}")


def run_step(
    settings: Any,
    rate: float,
    seconds: float,
    handles: dict[str, list[Any]],
    ends: Ends,
    client: Client,
    lake: LakeWatch,
) -> dict[str, Any]:
    usecases = len(handles)
    set_rate(settings, rate)
    lakehouse = lake.lakehouse
    time.sleep(3)  # the producer's start-up (imports, first connection) is not the step's
    meter = CpuMeter(stack_trees(settings))
    machine0 = machine_busy()
    t0 = time.time()
    e0 = ends.read()
    l0, learned0 = learner_lag(handles, e0)
    k0, landed0, _ = lake_lag(lakehouse)
    lags: dict[str, list[tuple[float, float]]] = {"learners": [(0.0, l0)]}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(SAMPLE_EVERY_S, max(0.0, deadline - time.monotonic())))
        meter.sample()
        e = ends.read()
        t = time.time() - t0
        lags["learners"].append((t, learner_lag(handles, e)[0]))
    e1 = ends.read()
    l1, learned1 = learner_lag(handles, e1)
    k1, landed1, _ = lake_lag(lakehouse)
    t1 = time.time()
    lags["lakehouse"] = lake.window(t0, t1)
    elapsed = t1 - meter.t0
    events = total(e1) - total(e0)
    offered = events / (t1 - t0)
    cpu = dict(meter.spent)
    cpu_total = sum(cpu.values())
    step = {
        "rate_per_usecase": rate,
        "target_per_s": rate * usecases,
        "offered_per_s": round(offered, 1),
        "events": events,
        "learned_per_s": round((learned1 - learned0) / (t1 - t0), 1),
        "landed_per_s": round((landed1 - landed0) / (t1 - t0), 1),
        "lag": {
            "learners": [l0, l1],
            "lakehouse": [k0, k1],
        },
        "lag_slope_per_s": {p: round(_scaling.slope(s), 2) for p, s in lags.items()},
        # two batch ends are the least that shows a trend of the lakehouse's lag: batches
        # longer than half a step do not hold it
        "holds": {
            p: _scaling.holds(s, offered, min_samples=2 if p == "lakehouse" else 3)
            for p, s in lags.items()
        },
        "lake_batch_s": lake.batches(t0, t1),
        "predict": client.window(t0, t1),
        "cores": {g: round(c / elapsed, 3) for g, c in sorted(cpu.items(), key=lambda x: -x[1])},
        "cores_total": round(cpu_total / elapsed, 3),
        "cpu_s_per_1000": {
            g: round(v, 3)
            for g, c in cpu.items()
            if (v := _scaling.cpu_per_1000(c, events)) is not None
        },
        "stack_cpu_s_per_1000": _scaling.cpu_per_1000(cpu_total, events),
        "machine_busy_cores": round(busy_cores(machine0, machine_busy()), 2),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "seconds": round(t1 - t0, 1),
        "offsets": {"start": e0, "end": e1},
    }
    print(
        f"  {rate:g}/s per use case: offered {offered:.0f}/s, learned "
        f"{step['learned_per_s']:.0f}/s, landed {step['landed_per_s']:.0f}/s "
        f"(batches {step['lake_batch_s']} s); holds "
        f"{step['holds']}; slopes {step['lag_slope_per_s']}; stack {step['cores_total']:.2f} "
        f"cores (machine {step['machine_busy_cores']:.2f}); predict {step['predict']}",
        flush=True,
    )
    return step


def river_cost(settings: Any, step: dict[str, Any], cap: int, warm: int) -> dict[str, Any]:
    """River's own CPU-s per 1 000 events over (at most ``cap`` per use case of) the step's
    events, the model first warmed, untimed, on (at most ``warm``) events before them; features
    and entity features computed beforehand, as the learner computes them (in offset order per
    partition, partitions interleaved)."""
    from confluent_kafka import Consumer, TopicPartition

    from rtml.kafka import consumer_config
    from rtml.online import build_model, predict_then_learn
    from rtml.usecases import USECASES, get

    per_usecase: dict[str, float] = {}
    timed_total = 0
    for name in USECASES:
        spec = get(name)
        start, end = step["offsets"]["start"][name], step["offsets"]["end"][name]
        span = {p: end[p] - start[p] for p in end}
        share = {p: min(n, max(1, cap // max(1, len(end)))) for p, n in span.items()}
        first = {p: max(0, start[p] - warm // max(1, len(end))) for p in end}
        stop = {p: start[p] + share[p] for p in end}
        consumer = Consumer(consumer_config(settings, "rtml-bench-scale-river"))
        consumer.assign([TopicPartition(spec.topic, int(p), first[p]) for p in end])
        got: dict[int, list[tuple[int, Any]]] = {int(p): [] for p in end}
        want = sum(stop[p] - first[p] for p in end)
        seen, idle = 0, 0
        while seen < want and idle < 5:
            batch = consumer.consume(num_messages=2000, timeout=2)
            idle = idle + 1 if not batch else 0
            for msg in batch:
                if msg.error() is None and msg.offset() < stop[msg.partition()]:
                    got[msg.partition()].append((msg.offset(), spec.parse(msg.value())))
                    seen += 1
        consumer.close()
        # partitions interleaved by offset rank: roughly the order one shard consumes them
        ordered = sorted(
            ((rank, p, off, ev) for p, rows in got.items() for rank, (off, ev) in enumerate(rows)),
            key=lambda r: (r[0], r[1]),
        )
        state, warm_rows, timed_rows = spec.entity_state(), [], []
        for _, p, off, event in ordered:
            row = (spec.features_of(event, state), spec.label_of(event) if spec.target else None)
            (timed_rows if off >= start[p] else warm_rows).append(row)
            if state is not None:
                state.record(event.model_dump())
        model = build_model(spec, settings.learner_params.get(name, {}))
        for x, y in warm_rows:
            predict_then_learn(spec, model, x, y)
        c0 = time.process_time()
        for x, y in timed_rows:
            predict_then_learn(spec, model, x, y)
        spent = time.process_time() - c0
        per_usecase[name] = 1000.0 * spent / max(1, len(timed_rows))
        timed_total += len(timed_rows)
        print(
            f"  River {name}: {per_usecase[name]:.3f} CPU-s per 1000 events "
            f"({len(timed_rows)} timed after {len(warm_rows)} warm)",
            flush=True,
        )
    # the step's events are the use cases' in equal shares: the mix's cost is their mean
    return {
        "cpu_s_per_1000": round(statistics.fmean(per_usecase.values()), 4),
        "by_usecase": {k: round(v, 4) for k, v in per_usecase.items()},
        "events_timed": timed_total,
    }


def run_config(args: argparse.Namespace, shards: int, nodes: int) -> dict[str, Any]:
    """One stack from empty state: its steps, its saturation and River's cost there."""
    state = ROOT / f".rtml-bench-scale-{args.slot}"
    os.environ.update(sandbox_env(args.slot, state))
    os.environ["RTML_LEARNER_SHARDS"] = str(shards)
    os.environ["RTML_PRODUCER_RATE"] = str(args.rates[0])
    os.environ["RTML_PROFILE"] = "cluster" if nodes == 2 else "local"

    from rtml.ray_env import apply_ray_env
    from rtml.settings import load_settings

    settings = load_settings()
    apply_ray_env(settings)
    import ray

    from ray_apps.learning import actor as learner
    from rtml.stack.parts import Lakehouse
    from rtml.usecases import USECASES

    label = f"{shards} shard(s), {nodes} node(s)"
    print(f"== {label}", flush=True)
    rtml("down")
    shutil.rmtree(state, ignore_errors=True)
    t0 = time.monotonic()
    profile = ["--profile", "cluster"] if nodes == 2 else []
    up = rtml("up", *profile)
    for attempt in range(args.up_retries):
        if not up_failed(up):
            break
        # a shared machine's load can outlast a part's start timeout, or Ray's own (its GCS
        # "overloaded"): `up` again keeps what runs and starts the rest
        print(f"  `rtml up` failed (attempt {attempt + 1}), again:\n{up.stdout[-800:]}", flush=True)
        time.sleep(20)
        up = rtml("up", *profile)
    if up_failed(up):
        rtml("down")
        raise RuntimeError(f"`rtml up` failed:\n{up.stdout}\n{up.stderr}")
    print(f"  stack up in {time.monotonic() - t0:.0f}s", flush=True)
    steps: list[dict[str, Any]] = []
    client = Client(settings, args.predict_rate)
    ends: Ends | None = None
    lake: LakeWatch | None = None
    result: dict[str, Any] = {"shards": shards, "nodes": nodes}
    try:
        learner.connect(settings)
        handles = {n: [learner.find(n, s) for s in range(shards)] for n in USECASES}
        if any(h is None for hs in handles.values() for h in hs):
            raise RuntimeError(f"learners missing: {handles}")
        result["learner_nodes"] = placement(handles)
        ends = Ends(settings)
        lake = LakeWatch(Lakehouse(settings))
        lake.start()
        # warm-up: the lakehouse's first batches (a cold JVM's) land the start-up's backlog
        deadline = time.monotonic() + args.warmup
        while time.monotonic() < deadline and len(lake.points) < 2:
            time.sleep(1)
        client.start()
        for rate in args.rates:
            steps.append(run_step(settings, rate, args.step, handles, ends, client, lake))
            if not steps[-1]["holds"]["learners"]:
                break  # the models' part is saturated: a higher rate only grows its backlog
        client.stopping.set()
        sat = _scaling.saturation_index(steps, PARTS)
        river = river_cost(settings, steps[sat], args.river_cap, args.river_warm)
    finally:
        client.stopping.set()
        if lake is not None:
            lake.stopping.set()
        if ends is not None:
            ends.close()
        ray.shutdown()
        if not args.keep:
            rtml("down")
    stack = steps[sat]["stack_cpu_s_per_1000"]
    result.update(
        {
            "steps": steps,
            "saturation_step": sat,
            "held_per_s": {p: _scaling.highest_held(steps, p) for p in PARTS},
            "river": river,
            "efficiency": round(river["cpu_s_per_1000"] / stack, 4) if stack else None,
        }
    )
    print(
        f"  {label}: held {result['held_per_s']} events/s; efficiency "
        f"{result['efficiency']} at step {sat} ({steps[sat]['offered_per_s']}/s)",
        flush=True,
    )
    return result


def placement(handles: dict[str, list[Any]]) -> dict[str, int]:
    """How many learners run on each Ray node (node id's first 8 hex digits)."""
    from ray.util.state import list_actors

    nodes = {a.name: a.node_id for a in list_actors(filters=[("state", "=", "ALIVE")], limit=1000)}
    out: dict[str, int] = {}
    for name, shards in handles.items():
        for s in range(len(shards)):
            node = str(nodes.get(f"learner-{name}-{s}", "?"))[:8]
            out[node] = out.get(node, 0) + 1
    return out


# -- the doc --------------------------------------------------------------------------------------


def write_docs(configs: list[dict[str, Any]], started: str) -> None:
    """docs/scaling.json (every figure), docs/scaling.png (the curve) and the generated block of
    docs/scaling.md (the table and the projection); the page's prose around it is by hand."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.2))
    for c in configs:
        label = f"{c['shards']} shard(s), {c['nodes']} node(s)"
        x = [s["offered_per_s"] for s in c["steps"]]
        ax1.plot(x, [s["learned_per_s"] for s in c["steps"]], "o-", label=f"learned, {label}")
        ax1.plot(x, [s["landed_per_s"] for s in c["steps"]], "x--", label=f"landed, {label}")
        ax2.plot(x, [s["predict"].get("p95_ms") for s in c["steps"]], "o-", label=label)
        ax3.plot(x, [s["stack_cpu_s_per_1000"] for s in c["steps"]], "o-", label=label)
    top = max(s["offered_per_s"] for c in configs for s in c["steps"])
    ax1.plot([0, top], [0, top], ":", color="grey", label="offered")
    ax1.set(xlabel="offered events/s (all use cases)", ylabel="events/s", title="throughput")
    ax2.set(xlabel="offered events/s", ylabel="ms", title="prediction latency p95")
    ax3.set(xlabel="offered events/s", ylabel="CPU-s", title="stack CPU-s per 1000 events")
    ax3.set_yscale("log")
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=6)
    ax2.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "scaling.png", dpi=90)

    lines = [
        f"Measured {started} by `bench/scale.py` (generated: edit the bench, not this block).",
        "",
        "| shards | nodes | step: offered ev/s | learned ev/s | landed ev/s | learners hold |"
        " lakehouse holds | predict p50 / p95 ms (errors) | stack cores | stack CPU-s /1000 ev"
        " | machine busy cores, load |",
        "|---:|---:|---:|---:|---:|:-:|:-:|---:|---:|---:|---:|",
    ]
    for c in configs:
        for s in c["steps"]:
            p = s["predict"]
            lines.append(
                f"| {c['shards']} | {c['nodes']} | {s['offered_per_s']:.0f} |"
                f" {s['learned_per_s']:.0f} | {s['landed_per_s']:.0f} |"
                f" {'yes' if s['holds']['learners'] else 'no'} |"
                f" {'yes' if s['holds']['lakehouse'] else 'no'} |"
                f" {p.get('p50_ms', '—')} / {p.get('p95_ms', '—')} ({p['errors']}) |"
                f" {s['cores_total']:.2f} | {s['stack_cpu_s_per_1000'] or 0:.2f} |"
                f" {s['machine_busy_cores']:.2f}, {s['load_avg_1m']:.1f} |"
            )
    lines += [
        "",
        "| shards | nodes | learners held (ev/s) | lakehouse held (ev/s) | learners on nodes |"
        " River CPU-s /1000 ev | stack CPU-s /1000 ev at saturation | efficiency |",
        "|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for c in configs:
        s = c["steps"][c["saturation_step"]]
        held = c["held_per_s"]
        lines.append(
            f"| {c['shards']} | {c['nodes']} | {held['learners'] or 'none'} |"
            f" {held['lakehouse'] or 'none'} | {c['learner_nodes']} |"
            f" {c['river']['cpu_s_per_1000']:.3f} | {s['stack_cpu_s_per_1000']:.2f} |"
            f" {c['efficiency']} |"
        )
    # the projection's input: each part's marginal cost, from the first step to the saturation
    # step of the first configuration (its fixed cost at rest does not grow with the rate)
    base = configs[0]
    low, sat = base["steps"][0], base["steps"][base["saturation_step"]]
    marginal = _scaling.marginal_cpu_per_1000(low, sat)
    costs = {g: v for g, v in marginal.items() if v > 0}
    if not costs:  # one step held: its average is all there is
        costs = {g: v for g, v in sat["cpu_s_per_1000"].items() if v > 0}
    lines += [
        "",
        f"Marginal CPU-s per 1 000 events by part, {base['shards']} shard(s), {base['nodes']}"
        f" node(s), between {low['offered_per_s']:.0f} and {sat['offered_per_s']:.0f} ev/s"
        " offered (beside it, the average at the saturation step, fixed costs included):",
        "",
        "| part | marginal CPU-s /1000 ev | average at saturation | cores at 10 000 ev/s |"
        " cores at 100 000 ev/s |",
        "|---|---:|---:|---:|---:|",
    ]
    proj = _scaling.project(costs, PROJECT_AT, usecases=len(base["steps"][0]["offsets"]["end"]))
    for part, cost in sorted(costs.items(), key=lambda kv: -kv[1]):
        lines.append(
            f"| {part} | {cost:.3f} | {sat['cpu_s_per_1000'].get(part, 0):.3f} |"
            f" {proj[0]['cores'][part]} | {proj[1]['cores'][part]} |"
        )
    lines += [
        f"| **total** | {sum(costs.values()):.3f} | {sat['stack_cpu_s_per_1000'] or 0:.3f} |"
        f" {proj[0]['cores_total']} | {proj[1]['cores_total']} |",
        "",
        "| rate | learner shards per use case (= partitions per topic) | learner pods"
        f" ({proj[0]['pod_cpus']} CPUs) | cores, all parts |",
        "|---:|---:|---:|---:|",
    ]
    for p in proj:
        lines.append(
            f"| {p['rate']:,.0f} ev/s | {p['shards_per_usecase']} | {p['learner_pods']} |"
            f" {p['cores_total']} |"
        )
    text = DOC.read_text() if DOC.exists() else f"# Scaling\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(head + BEGIN + "\n" + "\n".join(lines) + "\n" + END + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 shard, 1 node, short steps")
    parser.add_argument("--shards", default="1", help="learner shards per use case, e.g. 1,2,3")
    parser.add_argument("--nodes", default="1", help="Ray nodes, e.g. 1,2 (2: cluster profile)")
    parser.add_argument(
        "--configs", default=None, help="shards:nodes pairs instead of the grid, e.g. 1:1,3:2"
    )
    parser.add_argument("--rates", default=None, help="events/s per use case, step by step")
    parser.add_argument("--step", type=float, default=None, help="seconds per step")
    parser.add_argument(
        "--warmup", type=float, default=None, help="most seconds to wait for two lake batches"
    )
    parser.add_argument("--predict-rate", type=float, default=5.0, help="requests/s")
    parser.add_argument("--river-cap", type=int, default=None, help="events timed per use case")
    parser.add_argument("--river-warm", type=int, default=None, help="events to warm the model")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/scaling.*")
    parser.add_argument(
        "--save", type=Path, default=None, help="every figure as JSON (full run: docs/scaling.json)"
    )
    parser.add_argument(
        "--docs-from", type=Path, default=None, help="write the docs from a saved run and exit"
    )
    parser.add_argument("--up-retries", type=int, default=3, help="`rtml up` again on failure")
    parser.add_argument("--keep", action="store_true", help="leave the last stack running")
    parser.add_argument("--slot", type=int, default=_slot(), help="sandbox slot")
    args = parser.parse_args()
    quick = args.quick
    args.rates = [float(r) for r in args.rates.split(",")] if args.rates else None
    args.rates = args.rates or list(QUICK_RATES if quick else FULL_RATES)
    args.step = args.step or (40.0 if quick else 60.0)
    args.warmup = args.warmup if args.warmup is not None else (45.0 if quick else 120.0)
    args.river_cap = args.river_cap or (1500 if quick else 5000)
    args.river_warm = args.river_warm if args.river_warm is not None else (3000 if quick else 20000)
    grid = [
        (s, n) for n in map(int, args.nodes.split(",")) for s in map(int, args.shards.split(","))
    ]
    if args.configs:
        grid = [(int(a), int(b)) for a, b in (c.split(":") for c in args.configs.split(","))]
    if args.docs_from:
        saved = json.loads(args.docs_from.read_text())
        write_docs(saved["configs"], saved["started"])
        return
    save = args.save or (None if quick else ROOT / "docs" / "scaling.json")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t0 = time.monotonic()
    configs: list[dict[str, Any]] = []
    for shards, nodes in grid:
        try:
            configs.append(run_config(args, shards, nodes))
        except Exception as exc:  # noqa: BLE001 - one configuration's failure ends only it
            print(f"  {shards} shard(s), {nodes} node(s) FAILED: {exc!r}", flush=True)
            continue
        if save is not None:  # after each configuration: a later failure keeps these
            save.write_text(json.dumps({"started": started, "configs": configs}, indent=1) + "\n")
    if not configs:
        sys.exit("no configuration ran")
    if not (quick or args.no_docs):
        write_docs(configs, started)
    best = max(configs, key=lambda c: c["efficiency"] or 0)
    figures = {
        "quick": quick,
        "efficiency": best["efficiency"],
        "saturation": {
            f"{c['shards']}shard_{c['nodes']}node": {
                **{f"{p}_held_per_s": c["held_per_s"][p] for p in PARTS},
                "efficiency": c["efficiency"],
                "stack_cpu_s_per_1000": c["steps"][c["saturation_step"]]["stack_cpu_s_per_1000"],
                "river_cpu_s_per_1000": c["river"]["cpu_s_per_1000"],
                "machine_busy_cores": c["steps"][c["saturation_step"]]["machine_busy_cores"],
            }
            for c in configs
        },
        "seconds": round(time.monotonic() - t0),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
