"""The parts that the ``cluster`` profile adds to the local stack (``RTML_PROFILE=cluster``): what
a Kubernetes cluster has and one machine normally does without, run for real on loopback.

- ``postgres``: PostgreSQL (Debian's package), MLflow's backend store, ``initdb`` into the state
  folder on first start.
- ``s3``: SeaweedFS (``weed server -s3``, built by ``scripts/install-tools.sh``), an
  S3-compatible object store with one static identity, holding the lake's bucket and MLflow's
  (artifacts, registered models, the learners' snapshots).
- ``ray-worker``: a second Ray node joined to the head (``ray start --address=...``), with its own
  ports and its share of the learners' resource, so learners and Serve replicas run on two nodes.

Each is external when its setting names an existing one (``RTML_POSTGRES_URL``, an
``RTML_LAKE_S3_ENDPOINT`` other than the local store's, ``RTML_RAY_ADDRESS``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from rtml.net import port_open
from rtml.settings import LOOPBACK, Settings
from rtml.stack.kafka_dist import PrerequisiteMissing
from rtml.stack.parts import Part, Ray, learner_resources

#: Where ``scripts/install-tools.sh`` puts the Go tools it builds (``weed`` among them).
TOOLS_BIN = Path(os.environ.get("RTML_TOOLS_BIN", Path.home() / ".cache" / "rtml" / "bin"))


def buckets(settings: Settings) -> list[str]:
    """The buckets the stack's object store must hold: the lake's and MLflow's artifacts'."""
    names = [settings.lake_s3_bucket] if settings.lake_s3_bucket else []
    destination = settings.mlflow_artifacts_destination or ""
    if destination.startswith("s3://"):
        names.append(urlsplit(destination).netloc)
    return list(dict.fromkeys(names))


def _run_as(user: str) -> list[str]:
    """PostgreSQL refuses to run as root: as root, its commands run as ``user`` (the Debian
    package's ``postgres``), whose files they are."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise PrerequisiteMissing("setpriv (util-linux) is needed to run PostgreSQL as root")
    return [setpriv, f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]


def postgres_bin(name: str) -> str | None:
    """``initdb``/``postgres``: on PATH, or in Debian's versioned folder (newest first)."""
    found = shutil.which(name)
    if found:
        return found
    folders = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in folders:
        if (folder / name).exists():
            return str(folder / name)
    return None


class Postgres(Part):
    """PostgreSQL for MLflow: a cluster of its own in ``<state>/postgres/data``, TCP on loopback
    only (no Unix socket), password authentication, the role and database of the settings."""

    name = "postgres"
    start_timeout_s = 30.0
    #: SIGINT is PostgreSQL's fast shutdown (SIGTERM waits for every client to leave).
    stop_signal = signal.SIGINT
    #: The system user that owns the data when the stack runs as root.
    system_user = "postgres"

    @property
    def external(self) -> bool:
        return self.settings.postgres_url is not None

    @property
    def address(self) -> str:
        url = urlsplit(self.settings.postgres)
        return f"postgresql://{url.hostname}:{url.port}{url.path}"  # no password shown

    @property
    def ports(self) -> list[int]:
        return [self.settings.postgres_port]

    def _connect(self, database: str | None = None) -> Any:
        try:
            import psycopg2
        except ImportError:
            raise PrerequisiteMissing(
                "psycopg2 is missing: pip install -e '.[cluster]' (`make install` does it)"
            ) from None
        url = urlsplit(self.settings.postgres)
        return psycopg2.connect(
            host=url.hostname,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            dbname=database or url.path.lstrip("/"),
            connect_timeout=2,
        )

    def healthy(self) -> bool:
        import psycopg2

        try:
            self._connect("postgres").close()
            return True
        except psycopg2.Error:
            return False

    def command(self) -> list[str]:
        initdb, postgres = postgres_bin("initdb"), postgres_bin("postgres")
        if initdb is None or postgres is None:
            raise PrerequisiteMissing(
                "PostgreSQL is not installed (Debian: `apt-get install postgresql`; "
                "`make install` does it), or set RTML_POSTGRES_URL to an existing one."
            )
        run_as = _run_as(self.system_user)
        home = self.home.resolve()
        data = home / "data"
        if not (data / "PG_VERSION").exists():
            self._initdb(initdb, run_as, home, data)
        return [
            *run_as,
            postgres,
            "-D",
            str(data),
            "-p",
            str(self.settings.postgres_port),
            "-c",
            f"listen_addresses={LOOPBACK}",
            "-c",
            "unix_socket_directories=",  # TCP only: no socket path to collide or to grow long
            "-c",
            "shared_buffers=32MB",
            "-c",
            "max_connections=40",
        ]

    def _initdb(self, initdb: str, run_as: list[str], home: Path, data: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        password = home / "pwfile"
        password.write_text(self.settings.postgres_password.get_secret_value() + "\n")
        if run_as:
            shutil.chown(home, self.system_user, self.system_user)
            shutil.chown(password, self.system_user, self.system_user)
        password.chmod(0o600)
        try:
            done = subprocess.run(
                [
                    *run_as,
                    initdb,
                    "-D",
                    str(data),
                    "-U",
                    self.settings.postgres_user,
                    f"--pwfile={password}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            password.unlink(missing_ok=True)
        if done.returncode != 0:
            raise PrerequisiteMissing(f"initdb failed: {done.stderr.strip() or done.stdout}")

    def provision(self) -> None:
        """MLflow's database (its tables MLflow makes itself on start)."""
        import psycopg2

        database = urlsplit(self.settings.postgres).path.lstrip("/")
        try:
            conn = self._connect("postgres")
            try:
                conn.autocommit = True  # CREATE DATABASE runs outside a transaction
                with conn.cursor() as cur:
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                    if cur.fetchone() is None:
                        cur.execute(f'CREATE DATABASE "{database}"')
            finally:
                conn.close()
        except psycopg2.Error as exc:
            raise RuntimeError(f"cannot create database {database!r}: {exc}") from None


def weed_binary() -> str | None:
    """SeaweedFS's ``weed``: on PATH, or where ``scripts/install-tools.sh`` builds it."""
    found = shutil.which("weed")
    if found:
        return found
    cached = TOOLS_BIN / "weed"
    return str(cached) if cached.exists() else None


class ObjectStore(Part):
    """SeaweedFS in one process (``weed server``: master, volume server, filer, S3 gateway), its
    data in ``<state>/s3``, every listener on loopback, one static S3 identity (the lake's keys)
    with the buckets created on start."""

    name = "s3"
    start_timeout_s = 60.0

    @property
    def external(self) -> bool:
        endpoint = self.settings.lake_s3_endpoint
        return endpoint is not None and endpoint != self.settings.local_s3_endpoint

    @property
    def address(self) -> str:
        return self.settings.lake_s3_endpoint or self.settings.local_s3_endpoint

    @property
    def ports(self) -> list[int]:
        return [self.settings.s3_port, *self.settings.s3_internal_ports.values()]

    def healthy(self) -> bool:
        if self.external:
            url = urlsplit(self.address)
            return port_open(url.hostname or LOOPBACK, url.port or 443, timeout=2.0)
        try:
            # An anonymous request: the gateway answers (403 without keys) once the filer is up.
            response = httpx.get(f"{self.address}/", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code in (200, 403)

    def _identity(self) -> dict:
        s = self.settings
        if s.lake_s3_access_key_id is None or s.lake_s3_secret_access_key is None:
            raise PrerequisiteMissing(
                "the object store needs RTML_LAKE_S3_ACCESS_KEY_ID and "
                "RTML_LAKE_S3_SECRET_ACCESS_KEY (the cluster profile sets local ones)"
            )
        return {
            "identities": [
                {
                    "name": "rtml",
                    "credentials": [
                        {
                            "accessKey": s.lake_s3_access_key_id.get_secret_value(),
                            "secretKey": s.lake_s3_secret_access_key.get_secret_value(),
                        }
                    ],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }

    def command(self) -> list[str]:
        weed = weed_binary()
        if weed is None:
            raise PrerequisiteMissing(
                "SeaweedFS's `weed` is not built: run `bash scripts/install-tools.sh` "
                f"(`make install` does it; it goes to {TOOLS_BIN}), or set RTML_LAKE_S3_ENDPOINT "
                "to an existing S3-compatible store."
            )
        home = self.home.resolve()
        (home / "data").mkdir(parents=True, exist_ok=True)
        config = home / "s3.json"
        config.touch(mode=0o600)
        config.write_text(json.dumps(self._identity()))
        s, port = self.settings, self.settings.s3_internal_ports
        return [
            weed,
            "server",
            f"-dir={home / 'data'}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            f"-master.port={port['master']}",
            f"-master.port.grpc={port['master.grpc']}",
            "-master.volumeSizeLimitMB=256",
            "-master.telemetry=false",
            f"-volume.port={port['volume']}",
            f"-volume.port.grpc={port['volume.grpc']}",
            # Each bucket is a collection that grows several volumes at once: room for them.
            "-volume.max=64",
            "-filer",
            f"-filer.port={port['filer']}",
            f"-filer.port.grpc={port['filer.grpc']}",
            "-s3",
            f"-s3.port={s.s3_port}",
            f"-s3.port.grpc={port['s3.grpc']}",
            # The Iceberg and Lance catalogs (8181, 9101 by default) are not used: off.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
        ]

    def provision(self) -> None:
        """Create the buckets (idempotent)."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = s3_client(self.settings)
        try:
            have = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
            for bucket in buckets(self.settings):
                if bucket not in have:
                    client.create_bucket(Bucket=bucket)
        except (BotoCoreError, ClientError) as exc:
            raise RuntimeError(f"cannot create the buckets at {self.address}: {exc}") from None


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client of the lake's store (path-style, the lake's keys)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise PrerequisiteMissing(
            "boto3 is missing: pip install -e '.[cluster]' (`make install` does it)"
        ) from None
    s = settings
    return boto3.client(
        "s3",
        endpoint_url=s.lake_s3_endpoint,
        region_name=s.lake_s3_region,
        aws_access_key_id=s.lake_s3_access_key_id.get_secret_value()
        if s.lake_s3_access_key_id
        else None,
        aws_secret_access_key=s.lake_s3_secret_access_key.get_secret_value()
        if s.lake_s3_secret_access_key
        else None,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )


class RayWorker(Part):
    """A second Ray node on this machine, joined to the stack's head: its own agent, metrics and
    worker ports, the same logical CPUs as the head, and its share of the learners' resource."""

    name = "ray-worker"
    needs = ("ray",)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.head = Ray(settings)

    @property
    def external(self) -> bool:
        return self.settings.ray_address is not None

    @property
    def address(self) -> str:
        return f"node of {self.settings.ray}"

    @property
    def ports(self) -> list[int]:
        port = self.settings.ray_worker_node_port
        return [port, port + 1]

    def alive_nodes(self) -> int:
        """How many Ray nodes the head's state API lists as alive (0 when it does not answer)."""
        try:
            response = httpx.get(
                f"{self.settings.ray_dashboard_url}/api/v0/nodes",
                params={"filter_keys": "state", "filter_predicates": "=", "filter_values": "ALIVE"},
                timeout=5.0,
            )
            result = response.json()["data"]["result"]["result"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return 0
        return len(result)

    def healthy(self) -> bool:
        if self.external:
            return True  # an existing cluster's nodes are its own business
        return self.files.running_pid() is not None and self.alive_nodes() >= 2

    def command(self) -> list[str]:
        s = self.settings
        return [
            sys.executable,
            "-m",
            "rtml.stack.ray_node",  # `ray start`, allowed a second node on loopback
            f"--address={s.ray}",
            "--block",
            f"--node-ip-address={LOOPBACK}",
            f"--dashboard-agent-listen-port={s.ray_worker_node_port}",
            f"--metrics-export-port={s.ray_worker_node_port + 1}",
            f"--min-worker-port={s.ray_worker_node_min_worker_port}",
            f"--max-worker-port={s.ray_worker_node_max_worker_port}",
            f"--num-cpus={s.ray_num_cpus}",
            f"--object-store-memory={s.ray_object_store_mb * 1024 * 1024}",
            *learner_resources(s, head=False),
            # Its own session folder: by default it shares the head's, and each node's runtime
            # env agent then deletes the other's unpacked working folders (a job's driver lost
            # its working directory when the trials on this node finished). Short, in the temp
            # folder: Ray's socket paths under it must stay below 108 characters.
            f"--temp-dir={self.temp_dir}",
            "--disable-usage-stats",
        ]

    @property
    def temp_dir(self) -> Path:
        return Path(tempfile.gettempdir()) / f"rtml-ray-{self.settings.ray_worker_node_port}"

    def env(self) -> Mapping[str, str]:
        return self.head.env()
