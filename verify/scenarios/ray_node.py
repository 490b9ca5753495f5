"""A second Ray node: a worker node joins the head on this machine (a second `ray start`), the
learners and one of two API replicas are placed on it, a stream flows and clients keep asking
for predictions; then the worker node is SIGKILLed. Everything comes back on the head: Ray
restarts the learners there from their checkpoints, Serve replaces the replica, and after the
drain every learner has learned every valid event exactly once. Serving answers throughout: the
only failed requests allowed are those in flight at the kill."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import Counter

import httpx
import ray

from ray_apps.learning import actor as learner
from rtml.ray_env import ray_env
from rtml.settings import LOOPBACK, Settings
from rtml.stack.process import ProcessFiles, kill_all, process_tree, spawn, terminate, wait_dead
from rtml.usecases import USECASES
from rtml.usecases.generators import generator_for
from verify.context import Context
from verify.fleet import Fleet, Stream
from verify.session import deploy_api
from verify.verdict import Verdict

NAME = "ray-node"
SUMMARY = "kill a second Ray node under learners and a replica: all back on the head, exact, served"
NEEDS = ("kafka", "redis", "mlflow", "ray", "api")
CLIENTS = 4


def worker_node_ports(settings: Settings) -> dict[str, int]:
    """The worker node's own ports, below the head's worker port range (nothing uses them)."""
    base = settings.ray_min_worker_port - 300
    return {"agent": base, "metrics": base + 1, "min_worker": base + 50, "max_worker": base + 299}


def start_worker_node(settings: Settings, num_cpus: int = 4) -> ProcessFiles:
    ports = worker_node_ports(settings)
    files = ProcessFiles("ray-worker-node", settings.state_dir)
    argv = [
        sys.executable,
        "-m",
        "verify.worker_node",
        f"--address={settings.ray}",
        "--block",
        f"--node-ip-address={LOOPBACK}",
        f"--num-cpus={num_cpus}",
        f"--dashboard-agent-listen-port={ports['agent']}",
        f"--metrics-export-port={ports['metrics']}",
        f"--min-worker-port={ports['min_worker']}",
        f"--max-worker-port={ports['max_worker']}",
        "--object-store-memory=100000000",
        "--disable-usage-stats",
    ]
    spawn(files, argv, env=ray_env(settings))
    return files


def _alive_nodes() -> list[dict]:
    return [n for n in ray.nodes() if n["Alive"]]


def _wait(check, timeout: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False


def _node_of_actor(name: str) -> str | None:
    from ray.util.state import list_actors

    rows = list_actors(filters=[("name", "=", name), ("state", "=", "ALIVE")])
    return rows[0].node_id if rows else None


def _replica_nodes(ctx: Context) -> list[str]:
    answer = httpx.get(
        f"{ctx.settings.ray_dashboard_url}/api/serve/applications/", timeout=10
    ).json()
    app = answer["applications"]["rtml"]
    return [
        r["node_id"]
        for d in app["deployments"].values()
        for r in d["replicas"]
        if r["state"] == "RUNNING"
    ]


class Clients:
    """Threads asking for incremental predictions of every use case, counting every outcome."""

    def __init__(self, ctx: Context, n: int) -> None:
        self.url = ctx.api
        self.events = {u: next(generator_for(u, seed=ctx.seed)).event for u in USECASES}
        #: (sent at, answered at, outcome) of every request
        self.outcomes: list[tuple[float, float, str]] = []
        #: who answered the predictions: the learner, or the replica's checkpoint copy
        self.sources: Counter[str] = Counter()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(n)
        ]
        for t in self.threads:
            t.start()

    def _loop(self, i: int) -> None:
        names = list(USECASES)
        with httpx.Client(base_url=self.url, timeout=30) as client:
            k = i
            while not self.stop.is_set():
                name = names[k % len(names)]
                k += 1
                sent = time.monotonic()
                try:
                    answer = client.post(f"/{name}/incremental/predict", json=self.events[name])
                    outcome = str(answer.status_code)
                    if answer.status_code == 200:
                        self.sources[answer.json().get("source", "?")] += 1
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                self.outcomes.append((sent, time.monotonic(), outcome))
                time.sleep(0.02)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def run(ctx: Context) -> Verdict:
    verdict = Verdict(NAME)
    settings = ctx.settings
    if settings.ray_address is not None:
        verdict.problems.append(
            "Ray is external (RTML_RAY_ADDRESS): the scenario starts nodes only beside its own head"
        )
        return verdict
    head = {n["NodeID"] for n in _alive_nodes()}
    files = start_worker_node(settings)
    try:
        if not verdict.expect(
            _wait(lambda: len(_alive_nodes()) > len(head), 90),
            "the worker node did not join within 90 s",
        ):
            return verdict
        worker = next(n["NodeID"] for n in _alive_nodes() if n["NodeID"] not in head)
        ctx.say(f"  worker node {worker[:12]} joined")
        # Two replicas, spread by Serve over the two nodes; learners preferring the worker node.
        deploy_api(ctx, deployment={"num_replicas": 2, "max_replicas_per_node": 1})
        fleet = Fleet(settings, say=ctx.say)
        fleet.begin(node_id=worker)
        names = list(USECASES)
        placed = {n: _node_of_actor(learner.actor_name(n, 0)) == worker for n in names}
        replicas = _replica_nodes(ctx)
        verdict.counts["on_worker"] = {
            "learners": sum(placed.values()),
            "replicas": replicas.count(worker),
        }
        verdict.expect(all(placed.values()), f"learners not placed on the worker node: {placed}")
        verdict.expect(worker in replicas, f"no API replica on the worker node: {replicas}")

        count, rate = ctx.size(1200, 10000), ctx.size(100, 300)
        clients = Clients(ctx, CLIENTS)
        stream = Stream(settings, names, count, rate, ctx.seed)
        time.sleep(count / rate * 0.4)
        # The raylet and every process under it (its workers, agents), SIGKILLed at once: the node
        # dies in a moment, as a machine would.
        pid = files.running_pid()
        tree = process_tree(pid) if pid is not None else []
        verdict.counts["processes_killed"] = len(tree)
        killed_at = time.monotonic()
        kill_all(tree)
        verdict.expect(wait_dead(tree), "the worker node's processes outlived SIGKILL by 5 s")
        killed_by = time.monotonic()  # the last of them is dead
        terminate(files, sig=signal.SIGKILL)  # anything started meanwhile, and the pid file
        ctx.say(
            f"  worker node SIGKILLed ({len(tree)} processes "
            f"in {(killed_by - killed_at) * 1000:.1f} ms)"
        )
        stream.join(verdict)
        back = _wait(
            lambda: all(_node_of_actor(learner.actor_name(n, 0)) in head for n in names), 180
        )
        verdict.expect(back, "learners not back on the head within 180 s")
        fleet.check(verdict, timeout=ctx.size(300, 3600))
        time.sleep(2)
        clients.close()

        # In flight at the kill: sent before the last process died, answered after the first signal
        # (from the requests' own times: a count sampled before the kill missed those sent since).
        def in_flight(sent: float, done: float) -> bool:
            return sent <= killed_by and done >= killed_at

        flying = sum(1 for sent, done, _ in clients.outcomes if in_flight(sent, done))
        failed = [(sent, done, o) for sent, done, o in clients.outcomes if o != "200"]
        unexplained = [
            (sent - killed_at, done - killed_at, o)
            for sent, done, o in failed
            if not in_flight(sent, done)
        ]
        verdict.counts["requests"] = len(clients.outcomes)
        verdict.counts["failed_requests"] = len(failed)
        verdict.counts["in_flight_at_kill"] = flying
        verdict.counts["answered_by"] = dict(clients.sources)
        verdict.figures["recovered_s"] = round(
            max((done - killed_at for _, done, _ in failed), default=0.0), 1
        )
        verdict.expect(
            not unexplained,
            f"{len(unexplained)} failed requests were not in flight at the kill "
            f"(sent, answered: s after it; outcome): {unexplained[:8]}",
        )
        fleet.stop()
    finally:
        terminate(files, sig=signal.SIGKILL)
        deploy_api(ctx)  # the API as the other scenarios have it
    return verdict
