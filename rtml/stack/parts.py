"""The parts of the local stack: how each starts, where it listens, how it proves it is healthy.

A part given as an existing service through settings (``RTML_KAFKA_BOOTSTRAP``, ...) is
*external*: the stack never starts or stops it, only checks it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path

import httpx
import redis

from rtml.kafka import broker_ready
from rtml.net import port_open
from rtml.ray_env import ray_env
from rtml.settings import LOOPBACK, Settings
from rtml.stack import kafka_dist
from rtml.stack.kafka_dist import PrerequisiteMissing
from rtml.stack.process import ProcessFiles, port_owner


class Part(ABC):
    name: str
    #: Seconds to wait for the part to become healthy after it is started.
    start_timeout_s: float = 60.0
    #: Parts that must be healthy (and provisioned) before this one starts, when they are in
    #: the same `up`.
    needs: tuple[str, ...] = ()
    #: The signal `down` stops it with (then SIGKILL after a grace period).
    stop_signal: signal.Signals = signal.SIGTERM

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.files = ProcessFiles(self.name, settings.state_dir)

    @property
    def home(self) -> Path:
        return self.settings.state_dir / self.name

    @property
    @abstractmethod
    def external(self) -> bool: ...

    @property
    @abstractmethod
    def address(self) -> str:
        """Where clients reach it, as shown to the person."""

    @property
    def ports(self) -> list[int]:
        """Local ports it will listen on, which must be free before it starts."""
        return []

    @abstractmethod
    def healthy(self) -> bool: ...

    @abstractmethod
    def command(self) -> list[str]:
        """Prepare what the part needs on disk and return its command line."""

    def env(self) -> Mapping[str, str]:
        return {}

    def provision(self) -> None:  # noqa: B027 - most parts have nothing to provision
        """Once healthy, create what others need inside it (buckets, a database); idempotent."""

    def check_ports_free(self) -> None:
        for port in self.ports:
            if port_open(LOOPBACK, port):
                owner = port_owner(port) or "another program"
                raise PrerequisiteMissing(
                    f"{self.name}: port {port} is taken by {owner}. Stop it, or move rtml's "
                    f"{self.name} with its RTML_*_PORT setting, or point rtml at an existing "
                    f"service with its address setting."
                )


def learner_resources(settings: Settings, head: bool) -> list[str]:
    """``--resources`` of a node under the cluster profile: the learners' resource split over
    the head and the second node (the head holds the smaller half), so they run on both.

    Like the chart's learner worker group, which offers ``rtml_learner`` per learner slot."""
    from rtml.usecases import USECASES

    if settings.profile != "cluster" or not settings.learner_resource:
        return []
    learners = len(USECASES) * settings.learner_shards
    slots = learners // 2 if head else learners - learners // 2
    return [f"--resources={json.dumps({settings.learner_resource: slots})}"]


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


class Kafka(Part):
    name = "kafka"

    @property
    def external(self) -> bool:
        return self.settings.kafka_bootstrap is not None

    @property
    def address(self) -> str:
        return self.settings.kafka_servers

    @property
    def ports(self) -> list[int]:
        return [self.settings.kafka_port, self.settings.kafka_controller_port]

    def healthy(self) -> bool:
        return broker_ready(self.settings, timeout=2.0)

    def command(self) -> list[str]:
        return kafka_dist.prepare(self.settings, self.home)


class Redis(Part):
    name = "redis"
    start_timeout_s = 20.0

    @property
    def external(self) -> bool:
        return self.settings.redis_url is not None

    @property
    def address(self) -> str:
        return self.settings.redis

    @property
    def ports(self) -> list[int]:
        return [self.settings.redis_port]

    def healthy(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.settings.redis, socket_timeout=2).ping())
        except redis.RedisError:
            return False

    def command(self) -> list[str]:
        server = shutil.which("redis-server")
        if server is None:
            raise PrerequisiteMissing(
                "redis-server is not installed (Debian: `apt-get install redis-server`; "
                "`make up` does it), or set RTML_REDIS_URL to an existing Redis."
            )
        self.home.mkdir(parents=True, exist_ok=True)
        # Append-only file: model checkpoints in Redis survive a restart of Redis.
        return [
            server,
            "--bind",
            LOOPBACK,
            "--port",
            str(self.settings.redis_port),
            "--dir",
            str(self.home.resolve()),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
        ]


class Mlflow(Part):
    name = "mlflow"
    # Under the cluster profile: its database and its artifacts' bucket (rtml.stack.cluster).
    needs = ("postgres", "s3")

    @property
    def external(self) -> bool:
        return self.settings.mlflow_tracking_uri is not None

    @property
    def address(self) -> str:
        return self.settings.mlflow_uri

    @property
    def ports(self) -> list[int]:
        return [self.settings.mlflow_port]

    def healthy(self) -> bool:
        return _http_ok(f"{self.settings.mlflow_uri}/health")

    def backend_store(self) -> str:
        """SQLite in the state folder, or PostgreSQL under the cluster profile (the chart's)."""
        s = self.settings
        if s.profile == "cluster" or s.postgres_url:
            return s.postgres
        return f"sqlite:///{self.home.resolve() / 'mlflow.db'}"

    def artifacts_destination(self) -> str:
        destination = self.settings.mlflow_artifacts_destination
        if destination and "://" in destination:
            return destination  # s3://bucket/prefix: the object store's
        folder = Path(destination) if destination else self.home / "artifacts"
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder.resolve())

    def command(self) -> list[str]:
        return [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            self.backend_store(),
            # Artifacts go through the server (mlflow-artifacts:/), so any client that reaches
            # the tracking URI can log models without sharing the folder or the bucket's keys.
            "--artifacts-destination",
            self.artifacts_destination(),
            "--host",
            LOOPBACK,
            "--port",
            str(self.settings.mlflow_port),
            "--workers",
            "1",
        ]

    def env(self) -> Mapping[str, str]:
        # The job runner (huey consumers) costs ~0.8 GB and rtml submits no MLflow jobs; with it
        # off and one worker the server is ~0.45 GB and healthy in ~6 s instead of ~13 s.
        env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        s = self.settings
        if (s.mlflow_artifacts_destination or "").startswith("s3://"):
            # The chart's mlflow.artifacts: endpoint and keys of the store (the lake's).
            env["AWS_DEFAULT_REGION"] = s.lake_s3_region
            if s.lake_s3_endpoint:
                env["MLFLOW_S3_ENDPOINT_URL"] = s.lake_s3_endpoint
            if s.lake_s3_access_key_id and s.lake_s3_secret_access_key:
                env["AWS_ACCESS_KEY_ID"] = s.lake_s3_access_key_id.get_secret_value()
                env["AWS_SECRET_ACCESS_KEY"] = s.lake_s3_secret_access_key.get_secret_value()
        return env


class Ray(Part):
    name = "ray"

    @property
    def external(self) -> bool:
        return self.settings.ray_address is not None

    @property
    def address(self) -> str:
        return self.settings.ray

    def healthy(self) -> bool:
        if self.external:
            host, _, port = self.settings.ray.rpartition(":")
            return port.isdigit() and port_open(host or LOOPBACK, int(port), timeout=2.0)
        return _http_ok(f"{self.settings.ray_dashboard_url}/api/version")

    @property
    def ports(self) -> list[int]:
        s = self.settings
        return [
            s.ray_gcs_port,
            s.ray_dashboard_port,
            s.ray_client_port,
            s.ray_dashboard_agent_port,
            s.ray_metrics_export_port,
            s.serve_haproxy_stats_port,
            s.serve_haproxy_metrics_port,
        ]

    def command(self) -> list[str]:
        s = self.settings
        return [
            str(Path(sys.executable).parent / "ray"),
            "start",
            "--head",
            "--block",
            f"--node-ip-address={LOOPBACK}",
            f"--port={s.ray_gcs_port}",
            f"--ray-client-server-port={s.ray_client_port}",
            "--include-dashboard=true",
            f"--dashboard-host={LOOPBACK}",
            f"--dashboard-port={s.ray_dashboard_port}",
            f"--dashboard-agent-listen-port={s.ray_dashboard_agent_port}",
            f"--metrics-export-port={s.ray_metrics_export_port}",
            f"--min-worker-port={s.ray_min_worker_port}",
            f"--max-worker-port={s.ray_max_worker_port}",
            f"--num-cpus={s.ray_num_cpus}",
            f"--object-store-memory={s.ray_object_store_mb * 1024 * 1024}",
            *learner_resources(s, head=True),
            "--disable-usage-stats",
        ]

    def env(self) -> Mapping[str, str]:
        venv_bin = str(Path(sys.executable).parent)
        return {
            **ray_env(self.settings),
            # Jobs run `python ...`: it must be this environment's, not the system's.
            "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            # The dashboard's and autoscaler's own metrics ports, which have no flag.
            "DASHBOARD_METRIC_PORT": str(self.settings.ray_metrics_export_port + 1),
            "AUTOSCALER_METRIC_PORT": str(self.settings.ray_metrics_export_port + 2),
            # `rtml down` of an idle head need not wait the default 30 s drain.
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "5",
            **self.haproxy_env(),
        }

    def haproxy_env(self) -> dict[str, str]:
        """Serve's HAProxy (SERVE_ENV) per stack: its ports, its replicas' ports and its files
        (Ray's defaults are fixed ports and /tmp/haproxy-serve, shared by every stack on the
        machine). The files stay in the temp folder, named by the stats port: Ray puts them under
        a 56-character node id, and HAProxy refuses a socket path over 97 characters, which a
        state folder inside a checkout can exceed. One HAProxy on the same host as the replicas
        needs no 30 s deregistration window before a replica stops; a second is ample."""
        s = self.settings
        files = Path(tempfile.gettempdir()) / f"rtml-haproxy-{s.serve_haproxy_stats_port}"
        return {
            "RAY_SERVE_HAPROXY_STATS_PORT": str(s.serve_haproxy_stats_port),
            "RAY_SERVE_HAPROXY_METRICS_PORT": str(s.serve_haproxy_metrics_port),
            "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(s.serve_replica_min_port),
            "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(s.serve_replica_max_port),
            "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(files / "haproxy.cfg"),
            "RAY_SERVE_HAPROXY_SOCKET_PATH": str(files / "admin.sock"),
            "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(files),
            "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(files / "server-state"),
            "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(files / "metrics.sock"),
            "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1",
        }


class Prometheus(Part):
    """Debian's Prometheus, scraping Ray (through its service discovery), the producers and the
    lakehouse, and evaluating ``monitoring/rules/``. Its data lives in the state folder.

    It needs nothing else to be up: a target that is not there yet is just down until it is.
    """

    name = "prometheus"
    start_timeout_s = 30.0

    @property
    def external(self) -> bool:
        return False

    @property
    def address(self) -> str:
        return self.settings.prometheus_url

    @property
    def ports(self) -> list[int]:
        return [self.settings.prometheus_port]

    def healthy(self) -> bool:
        return _http_ok(f"{self.settings.prometheus_url}/-/ready")

    def command(self) -> list[str]:
        from rtml.stack.monitoring import find_tool, render_config

        binary = find_tool("prometheus")
        if binary is None:
            raise PrerequisiteMissing(
                "prometheus is not installed (Debian: `apt-get install prometheus`; "
                "`make up` does it)."
            )
        home = self.home.resolve()
        (home / "data").mkdir(parents=True, exist_ok=True)
        config = home / "prometheus.yml"
        config.write_text(render_config(self.settings))
        s = self.settings
        return [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--storage.tsdb.retention.time={s.prometheus_retention}",
            f"--web.listen-address={LOOPBACK}:{s.prometheus_port}",
        ]


class Producers(Part):
    """Generated events for every use case at a modest rate, so the stack has a live stream."""

    name = "producers"
    start_timeout_s = 30.0
    needs = ("kafka",)  # and its topics, which `up` creates once Kafka is healthy

    @property
    def external(self) -> bool:
        return False

    @property
    def address(self) -> str:
        return f"http://{LOOPBACK}:{self.settings.producer_metrics_port}/metrics"

    @property
    def ports(self) -> list[int]:
        return [self.settings.producer_metrics_port]

    def healthy(self) -> bool:
        return self.files.running_pid() is not None and _http_ok(self.address)

    def command(self) -> list[str]:
        s = self.settings
        return [
            sys.executable,
            "-m",
            "rtml.cli",
            "produce",
            "all",
            "--rate",
            str(s.producer_rate),
            "--count",
            "0",
            "--metrics-port",
            str(s.producer_metrics_port),
            "--no-progress",
        ]


class Lakehouse(Part):
    """The Spark job that lands every use case's topic in Delta (``streaming/lakehouse/``).

    It reports to a status file every second; it is healthy while that file is fresh and every
    streaming query in it is active.
    """

    name = "lakehouse"
    # The first start fetches the Kafka source and Delta jars (~100 MB) from Maven Central.
    start_timeout_s = 300.0
    #: A status older than this means the job hangs (it rewrites it every second).
    stale_after_s = 15.0
    needs = ("kafka", "s3")  # the topics; the bucket under the cluster profile

    @property
    def external(self) -> bool:
        return False

    @property
    def address(self) -> str:
        from rtml.lake import lake_uri

        return lake_uri(self.settings)

    @property
    def ports(self) -> list[int]:
        return [self.settings.lake_metrics_port]

    @property
    def status_file(self) -> Path:
        return self.home / "status.json"

    def job_status(self) -> dict | None:
        """What the running job last reported, or None when it does not run or not yet."""
        pid = self.files.running_pid()
        try:
            status = json.loads(self.status_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return status if pid is not None and status.get("pid") == pid else None

    def healthy(self) -> bool:
        status = self.job_status()
        if not status or time.time() - status.get("updated", 0) > self.stale_after_s:
            return False
        queries = status.get("queries", {})
        return bool(queries) and all(q.get("active") for q in queries.values())

    def command(self) -> list[str]:
        self.home.mkdir(parents=True, exist_ok=True)
        status = str(self.status_file.resolve())
        return [sys.executable, "-m", "streaming.lakehouse", "run", "--status-file", status]


def all_parts(settings: Settings, every_profile: bool = False) -> list[Part]:
    """Every part of the settings' profile (or of any profile: what `down` may have to stop),
    in start order."""
    from rtml.stack.cluster import ObjectStore, Postgres, RayWorker

    cluster = every_profile or settings.profile == "cluster"
    classes: list[type[Part]] = [Postgres, ObjectStore] if cluster else []
    classes += [Kafka, Redis, Mlflow, Ray]
    classes += [RayWorker] if cluster else []
    classes += [Prometheus, Lakehouse, Producers]
    return [cls(settings) for cls in classes]
