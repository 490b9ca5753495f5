"""What both serving benches need: their own stack, a learner that has learned, a champion, the
API deployed (optionally beside the floor app), and a small asyncio load generator.

The stack runs on the bench's own ports and state folder (fresh each run) and is stopped after.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from rtml.stack.sandbox import SLOTS, sandbox_env  # noqa: E402

BENCH_ENV = sandbox_env(SLOTS["bench-serve"], ROOT / ".rtml-bench-serve")
for key, value in BENCH_ENV.items():
    os.environ.setdefault(key, value)

from rtml.ray_env import apply_ray_env  # noqa: E402
from rtml.settings import Settings, load_settings  # noqa: E402

apply_ray_env(load_settings())  # this process joins Ray as a driver: configured before Ray loads

import httpx  # noqa: E402
import ray  # noqa: E402

from ray_apps.learning import actor as learner  # noqa: E402
from ray_apps.serving import deploy  # noqa: E402
from rtml.stack import local  # noqa: E402
from rtml.usecases import get  # noqa: E402
from rtml.usecases.generators import generator_for  # noqa: E402
from streaming.producer import produce  # noqa: E402
from streaming.topics import ensure_topics  # noqa: E402

PARTS = ["kafka", "redis", "mlflow", "ray"]


def start_stack() -> Settings:
    settings = load_settings()
    local.down(settings, PARTS)
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    rows = local.up(settings, PARTS, report=lambda line: print(" ", line, flush=True))
    if any(r.state not in ("started", "running") for r in rows):
        sys.exit(f"stack did not start: {rows}")
    ensure_topics(settings)
    learner.connect(settings)
    return settings


def stop_stack(settings: Settings) -> None:
    ray.shutdown()
    local.down(settings, PARTS)


def learn(settings: Settings, usecase: str, n: int, seed: int = 11) -> Any:
    """A learner that has learned ``n`` events and checkpointed them."""
    produce(settings, [usecase], rate=0, count=n, seed=seed)
    addresses = {**learner.service_addresses(settings), "checkpoint_every_events": n}
    handle = learner.start(usecase, settings=addresses)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = ray.get(handle.status.remote())
        if status.get("learned", 0) >= n and status.get("checkpoint", {}).get("version"):
            return handle
        time.sleep(0.5)
    sys.exit(f"learner did not learn {n} events: {status}")


def register_champion(settings: Settings, usecase: str, n: int, seed: int = 12) -> int:
    import mlflow
    from catboost import CatBoostClassifier

    from rtml.batch import frames
    from rtml.store import registry

    spec = get(usecase)
    gen = generator_for(usecase, seed=seed)
    events = [spec.parse(next(gen).event) for _ in range(n)]
    frame = frames.feature_frame(spec, [spec.features_of(e) for e in events])
    model = CatBoostClassifier(
        iterations=200,
        depth=6,
        verbose=False,
        thread_count=1,
        cat_features=spec.categorical_names,
    )
    model.fit(frame, [bool(e.is_fraud) for e in events])
    registry.client(settings)
    mlflow.set_experiment("rtml-bench-serve")
    with mlflow.start_run():
        version = registry.log_and_register(settings, usecase, model, frame, {})
    registry.promote(settings, usecase, version)
    return version


def deploy_apps(settings: Settings, extra: dict[str, Any], floor: bool, wait: bool = True) -> None:
    """The rtml application as `rtml up` deploys it, plus (``floor``) the trivial app beside it;
    without ``wait`` it returns once Serve took the config (call :func:`wait_apps` later)."""
    config = deploy.local_config(settings, extra)
    if floor:
        rtml_app = config["applications"][0]
        config["applications"].append(
            {
                "name": "floor",
                "route_prefix": "/floor",
                "import_path": "serve_floor:build",
                "runtime_env": {"env_vars": {"PYTHONPATH": str(ROOT / "bench")}},
                # the same deployment options as rtml's ingress: only the work differs
                "deployments": [{**rtml_app["deployments"][0], "name": "Floor"}],
            }
        )
    answer = httpx.put(
        f"{settings.ray_dashboard_url}/api/serve/applications/", json=config, timeout=60
    )
    answer.raise_for_status()
    if wait:
        wait_apps(settings, len(config["applications"]))


def wait_apps(settings: Settings, count: int) -> None:
    deadline = time.monotonic() + 240
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        apps = httpx.get(
            f"{settings.ray_dashboard_url}/api/serve/applications/", timeout=10
        ).json()["applications"]
        states = {name: app["status"] for name, app in apps.items()}
        if any(s == "DEPLOY_FAILED" for s in states.values()):
            sys.exit(f"deploy failed: {apps}")
        if len(states) == count and all(s == "RUNNING" for s in states.values()):
            if deploy.api_ready(settings):  # the proxy listens (it starts after the first deploy)
                return
        time.sleep(1)
    sys.exit(f"apps not running: {states}")


def sample_event(usecase: str, seed: int) -> dict[str, Any]:
    return dict(next(generator_for(usecase, seed=seed)).event)


# -- load -----------------------------------------------------------------------------------------


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    events_per_request: int = 1

    def pct(self, q: float) -> float:
        """Percentile in ms."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(int(q / 100 * len(ordered)), len(ordered) - 1)]

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    @property
    def events_per_s(self) -> float:
        return self.rps * self.events_per_request

    def summary(self) -> dict[str, float]:
        return {
            "p50_ms": round(self.pct(50), 2),
            "p95_ms": round(self.pct(95), 2),
            "p99_ms": round(self.pct(99), 2),
            "rps": round(self.rps, 1),
            "events_per_s": round(self.events_per_s, 1),
            "errors": self.errors,
        }


async def _one(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], run: Run
) -> None:
    t0 = time.perf_counter()
    try:
        r = await client.post(url, content=body, headers=headers)
        ok = r.status_code == 200
    except httpx.HTTPError:
        ok = False
    if ok:
        run.latencies.append(time.perf_counter() - t0)
    else:
        run.errors += 1


def closed_loop(
    url: str,
    body: bytes,
    clients: int,
    seconds: float = 0.0,
    requests: int = 0,
    headers: dict[str, str] | None = None,
    events: int = 1,
    warmup: int = 5,
) -> Run:
    """``clients`` concurrent clients, each sending its next request when the last is answered,
    for ``seconds`` (or until ``requests`` in all)."""
    hdrs = {"content-type": "application/json", **(headers or {})}

    async def main() -> Run:
        limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            for _ in range(warmup):
                await client.post(url, content=body, headers=hdrs)
            run = Run(events_per_request=events)
            t0 = time.perf_counter()
            deadline = t0 + seconds if seconds else float("inf")
            sent = 0

            async def worker() -> None:
                nonlocal sent
                while time.perf_counter() < deadline and (not requests or sent < requests):
                    sent += 1
                    await _one(client, url, body, hdrs, run)

            await asyncio.gather(*(worker() for _ in range(clients)))
            run.seconds = time.perf_counter() - t0
            return run

    return asyncio.run(main())


def open_loop(
    url: str, body: bytes, rate: float, seconds: float, headers: dict[str, str] | None = None
) -> Run:
    """Poisson arrivals at ``rate``/s whatever the answers do: queueing shows as latency."""
    hdrs = {"content-type": "application/json", **(headers or {})}

    async def main() -> Run:
        rng = random.Random(1)
        async with httpx.AsyncClient(
            limits=httpx.Limits(max_connections=256), timeout=60
        ) as client:
            run = Run()
            tasks = []
            t0 = time.perf_counter()
            at = t0
            while at - t0 < seconds:
                at += rng.expovariate(rate)
                await asyncio.sleep(max(at - time.perf_counter(), 0))
                tasks.append(asyncio.create_task(_one(client, url, body, hdrs, run)))
            await asyncio.gather(*tasks)
            run.seconds = time.perf_counter() - t0
            return run

    return asyncio.run(main())


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
