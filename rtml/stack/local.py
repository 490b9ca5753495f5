"""``rtml up | down | status``: the local stack as one unit.

``up`` starts every part that is not already running and not external, all at once, then waits
for each to be healthy (the slow ones, Ray and MLflow, overlap with Kafka's start), creates the
topics, and starts what reads or writes them (the lakehouse, the producers) last. It is
idempotent: a second call reports what already runs.
``down`` stops, by pid, what ``up`` started, in reverse order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from rtml.ray_env import apply_ray_env
from rtml.settings import Settings
from rtml.stack.parts import Part, all_parts
from rtml.stack.process import spawn, terminate, tree_memory

#: Parts that need the topics: started after Kafka is healthy and the topics exist.
AFTER_TOPICS = ("lakehouse", "producers")
#: What runs inside Ray rather than as a process: started by a short-lived driver once Kafka,
#: Redis, MLflow and Ray (both nodes under the cluster profile) are healthy, while the lakehouse
#: may still be starting. A plain `rtml up` starts them; `-p` names them.
ON_RAY = ("learners", "api")
ON_RAY_NEEDS = ("kafka", "redis", "mlflow", "ray", "ray-worker")

State = Literal["running", "started", "external", "stopped", "unhealthy", "failed"]


@dataclass(frozen=True)
class PartStatus:
    name: str
    state: State
    address: str
    pid: int | None = None
    memory_bytes: int = 0
    detail: str = ""


Report = Callable[[str], None]


def _select(
    settings: Settings, only: Sequence[str] | None, every_profile: bool = False
) -> list[Part]:
    parts = all_parts(settings, every_profile)
    if only:
        unknown = set(only) - {p.name for p in parts} - set(ON_RAY)
        if unknown:
            raise ValueError(f"unknown part(s) {sorted(unknown)}; parts: {[p.name for p in parts]}")
        parts = [p for p in parts if p.name in only]
    return parts


def _status(part: Part, state: State | None = None, detail: str = "") -> PartStatus:
    pid = None if part.external else part.files.running_pid()
    if state is None:
        if part.external:
            state = "external" if part.healthy() else "unhealthy"
        elif pid is None:
            state = "stopped"
        else:
            state = "running" if part.healthy() else "unhealthy"
    return PartStatus(part.name, state, part.address, pid, tree_memory(pid) if pid else 0, detail)


def _settled(part: Part, deadline: float) -> bool | None:
    """True once the part is healthy, False once it exited (its log says why) or ran out of
    time, None while it is still coming up."""
    if part.healthy():
        return True
    if part.files.running_pid() is None or time.monotonic() > deadline:
        return False
    return None


def up(
    settings: Settings, only: Sequence[str] | None = None, report: Report = lambda _: None
) -> list[PartStatus]:
    from streaming.topics import ensure_topics  # the composition root may reach the adapters

    parts = _select(settings, only)
    outcome: dict[str, PartStatus] = {}
    started: list[Part] = []

    since: dict[str, float] = {}

    def start(part: Part) -> None:
        if part.external or part.files.running_pid() is not None:
            outcome[part.name] = _status(part)
            report(f"{part.name}: already {outcome[part.name].state} at {part.address}")
            return
        part.check_ports_free()
        report(f"{part.name}: starting")
        spawn(part.files, part.command(), env=part.env())
        since[part.name] = time.monotonic()
        started.append(part)

    def settle_next() -> Part:
        """Wait for whichever started part settles first (healthy, exited or timed out)."""
        while True:
            for part in started:
                ok = _settled(part, since[part.name] + part.start_timeout_s)
                if ok is None:
                    continue
                took = f"{time.monotonic() - since[part.name]:.1f}s"
                detail = "" if ok else f"not healthy; see {part.files.log_file}"
                outcome[part.name] = _status(part, "started" if ok else "failed", detail)
                report(f"{part.name}: {'healthy' if ok else 'FAILED'} ({took})")
                started.remove(part)
                return part
            time.sleep(0.25)

    def provision(part: Part) -> None:
        if outcome[part.name].state not in ("running", "started", "external"):
            return
        try:
            part.provision()
        except RuntimeError as exc:
            outcome[part.name] = _status(part, "failed", f"provisioning failed: {exc}")
            report(f"{part.name}: FAILED (provisioning: {exc})")
        if part.name == "kafka":
            topics()  # what the readers need

    def topics() -> None:
        created = ensure_topics(settings)
        report("topics: " + ", ".join(f"{t} {what}" for t, what in created.items()))

    def settled(names: Sequence[str]) -> bool:
        return not busy().intersection(names)

    def busy() -> set[str]:
        return {p.name for p in waiting} | {p.name for p in started}

    selected = {p.name for p in parts}
    if "kafka" not in selected and any(p.name in AFTER_TOPICS for p in parts):
        topics()  # an existing broker, or one already running
    on_ray = [name for name in ON_RAY if only is None or name in only]
    # A part starts as soon as what it needs (of this `up`) is healthy and provisioned — the
    # topics' readers once Kafka is and the topics exist, what runs in Ray once Ray and the
    # services it talks to are — and the rest start at once: the slow ones come up side by side.
    waiting = list(parts)
    while waiting or started or on_ray:
        if on_ray and settled(ON_RAY_NEEDS):
            _start_on_ray(settings, on_ray, report)
            on_ray = []
            continue
        free = [p for p in waiting if settled(p.needs)]
        if not free and not started:
            free = list(waiting)  # a cycle of needs: start them all rather than hang
        for part in free:
            waiting.remove(part)
            failed = [n for n in part.needs if n in outcome and outcome[n].state == "failed"]
            if failed:
                detail = f"not started: {', '.join(failed)} failed"
                outcome[part.name] = _status(part, "failed", detail)
                report(f"{part.name}: FAILED ({detail})")
                continue
            start(part)
            if part not in started:
                provision(part)  # already running: its buckets or database may be missing
        if started:
            provision(settle_next())
    return [outcome[p.name] for p in parts]


def _start_on_ray(settings: Settings, names: Sequence[str], report: Report) -> None:
    """Start what lives in Ray (detached actors, Serve): they outlive this driver."""
    apply_ray_env(settings)  # this process joins Ray as a driver: configured before Ray loads
    from ray_apps.learning import actor as learner

    try:
        learner.connect(settings)
    except (ConnectionError, RuntimeError) as exc:
        report(f"{', '.join(names)}: not started: {exc}")
        return
    try:
        if "learners" in names:
            from rtml.usecases import USECASES

            shards = settings.learner_shards
            for usecase in USECASES:
                for shard in range(shards):
                    learner.start(
                        usecase, shard, shards, settings=learner.service_addresses(settings)
                    )
            report(
                f"learners: {', '.join(USECASES)} ({shards} shard(s) each) "
                "started or already running"
            )
        if "api" in names:
            import httpx

            from ray_apps.serving import (
                deploy,
            )  # ray_apps/serve_config.yaml, on settings.serve_port

            try:
                # a laptop's one replica; the cluster profile keeps the config's two (one a node)
                local_ = settings.profile == "local"
                replicas = {"num_replicas": settings.serve_local_replicas} if local_ else None
                report(f"api: {deploy.deploy(settings, deployment=replicas)}")
            except (RuntimeError, TimeoutError, httpx.HTTPError) as exc:
                report(f"api: FAILED: {exc}")
    finally:
        import ray

        ray.shutdown()


def down(
    settings: Settings, only: Sequence[str] | None = None, report: Report = lambda _: None
) -> list[str]:
    stopped = []
    # Every profile's parts: a stack started as `cluster` stops whatever the settings now say.
    for part in reversed(_select(settings, only, every_profile=True)):
        if part.external:
            continue
        t0 = time.monotonic()
        if terminate(part.files, sig=part.stop_signal):
            report(f"{part.name}: stopped ({time.monotonic() - t0:.1f}s)")
            stopped.append(part.name)
    return stopped


def status(settings: Settings, only: Sequence[str] | None = None) -> list[PartStatus]:
    rows = [_status(p) for p in _select(settings, only)]
    if only is None or "api" in only:
        rows.append(_api_status(settings))
    return rows


def _api_status(settings: Settings) -> PartStatus:
    """The Serve application, seen through the dashboard and one request to the API."""
    from ray_apps.serving import deploy

    app = deploy.app_status(settings)
    if app is None:
        return PartStatus("api", "stopped", settings.serve_url)
    ok = app.get("status") == "RUNNING" and deploy.api_ready(settings)
    detail = "" if ok else f"Serve says {app.get('status')}: {str(app.get('message', ''))[:80]}"
    return PartStatus(
        "api", "running" if ok else "unhealthy", f"{settings.serve_url}/api/v1", detail=detail
    )
