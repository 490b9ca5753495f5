"""One typed settings object for every address, port, path and tunable of rtml.

Values come from environment variables with the ``RTML_`` prefix (``RTML_KAFKA_PORT=19092``) or
from a ``.env`` file; the defaults serve the local stack on loopback. A service given as an
address (``RTML_KAFKA_BOOTSTRAP``, ``RTML_REDIS_URL``, ``RTML_MLFLOW_TRACKING_URI``,
``RTML_RAY_ADDRESS``) is an *existing* one: the local stack then leaves it alone and only checks it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "RTML_"
LOOPBACK = "127.0.0.1"
#: In the state folder: the profile `rtml up --profile` started it with, the default of every
#: later command on that folder.
PROFILE_FILE = "profile"

#: The ``cluster`` profile's buckets and Ray resource, the chart's defaults too
#: (``charts/rtml/values.yaml``: ``lake.s3``, ``mlflow.artifacts``, the learner worker group).
CLUSTER_LAKE_BUCKET = "rtml-lake"
CLUSTER_MLFLOW_ARTIFACTS = "s3://rtml-mlflow/artifacts"
CLUSTER_LEARNER_RESOURCE = "rtml_learner"
#: The local object store's identity under the ``cluster`` profile (like ``checkpoint_key``'s
#: default: for this machine only; a real cluster's keys come from a Secret).
LOCAL_S3_ACCESS_KEY_ID = "rtml-local"
LOCAL_S3_SECRET_ACCESS_KEY = "rtml-local-secret"


def _port(default: int, what: str) -> int:
    return Field(default, ge=1, le=65535, description=what)


class SettingsError(ValueError):
    """A setting has a bad value; the message names the environment variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", validate_default=True
    )

    # -- which stack ---------------------------------------------------------------------------
    # `local`: one Ray node, the lake and MLflow's artifacts in folders, MLflow on SQLite.
    # `cluster`: what a Kubernetes cluster has, run on this machine — an S3-compatible object
    # store (SeaweedFS) holding the lake, MLflow's artifacts and the learners' snapshots, MLflow on
    # PostgreSQL, and a second Ray worker node over which learners and Serve replicas spread.
    # The profile only fills defaults: any setting given explicitly wins (docs/cluster.md).
    # Unset, it is the one `rtml up --profile` last started in the state folder (PROFILE_FILE).
    profile: Literal["local", "cluster"] = Field("local", description="local or cluster")

    # -- where things live -------------------------------------------------------------------
    state_dir: Path = Field(Path(".rtml"), description="pids, logs and data of the local stack")
    checkout_dir: Path = Field(
        Path("."),
        description="the rtml checkout: the working folder of Ray jobs (jobs/, rtml/), and where "
        "monitoring/ and the UI's frontend/build are read; default: the folder rtml runs in",
    )
    cache_dir: Path = Field(
        Path.home() / ".cache" / "rtml", description="downloads kept across checkouts (jars)"
    )

    # -- use cases -------------------------------------------------------------------------
    # A user's own use cases beside the three rtml ships, each a `module:NAME` of a UseCase,
    # e.g. RTML_USECASE_SPECS='["mypkg.fraud:SPEC"]' (installed packages may instead declare an
    # entry point in the group `rtml.usecases`; README "Bring your own use case").
    usecase_specs: list[str] = Field(default_factory=list)

    # -- Kafka -------------------------------------------------------------------------------
    kafka_bootstrap: str | None = Field(None, description="an existing broker; unset: run one")
    kafka_version: str = Field("4.1.1", description="Apache Kafka release run from Maven Central")
    kafka_port: int = _port(9092, "local broker's client port")
    kafka_controller_port: int = _port(9093, "local broker's KRaft controller port")
    kafka_heap: str = Field("512m", description="JVM heap of the local broker")
    topic_partitions: int = Field(3, ge=1, le=64)
    topic_replication: int = Field(1, ge=1, description="1 for the local broker; 3 on a cluster")
    # A consumer group's first join waits for the session timeout of departed members; librdkafka's
    # default (45 s) made the first join take ~23 s here, 6 s keeps it at ~3 s.
    kafka_session_timeout_ms: int = Field(6000, ge=1000)

    # -- Redis -------------------------------------------------------------------------------
    redis_url: str | None = Field(None, description="an existing Redis; unset: run one")
    redis_port: int = _port(6379, "local Redis port")

    # -- MLflow ------------------------------------------------------------------------------
    mlflow_tracking_uri: str | None = Field(None, description="an existing server; unset: run one")
    mlflow_port: int = _port(5000, "local MLflow tracking server port")
    # Where the local server keeps artifacts (models, learner snapshots), proxied to clients as
    # mlflow-artifacts:/ so they need no storage credentials. Unset: <state_dir>/mlflow/artifacts,
    # or s3://rtml-mlflow/artifacts under the cluster profile (the chart's
    # mlflow.artifacts.destination); an s3:// destination uses the object store's endpoint and keys.
    mlflow_artifacts_destination: str | None = Field(
        None, description="folder or s3://bucket/prefix of MLflow's artifacts"
    )
    # MLflow's backend store: SQLite in the state folder, or PostgreSQL under the cluster profile
    # (the chart's mlflow.postgres), run by the stack unless postgres_url names an existing one.
    postgres_url: str | None = Field(
        None,
        description="an existing PostgreSQL for MLflow, postgresql+psycopg2://user:pw@host:port/db",
    )
    postgres_port: int = _port(5432, "local PostgreSQL port (cluster profile)")
    postgres_user: str = Field("mlflow", description="role of MLflow in the local PostgreSQL")
    postgres_password: SecretStr = Field(SecretStr("rtml-local-dev-pg"), min_length=8)
    postgres_database: str = Field("mlflow", description="MLflow's database")

    # -- Object store (cluster profile): SeaweedFS's S3 gateway on loopback -----------------------
    # Its master, volume server and filer listen on the next ports (s3_internal_ports).
    s3_port: int = _port(8333, "local S3-compatible object store (SeaweedFS) port")

    # -- Ray ---------------------------------------------------------------------------------
    ray_address: str | None = Field(None, description="an existing cluster; unset: run a head")
    ray_gcs_port: int = _port(6380, "local Ray head's GCS port (6379 is Redis')")
    ray_dashboard_port: int = _port(8265, "Ray dashboard and job API")
    ray_dashboard_address: str | None = Field(
        None,
        description="the dashboard (job API) of an existing cluster, e.g. http://head-svc:8265",
    )
    ray_client_port: int = _port(10001, "Ray client server port")
    ray_dashboard_agent_port: int = _port(52365, "Ray dashboard agent's HTTP port")
    ray_metrics_export_port: int = _port(8090, "Ray's Prometheus metrics of the head node")
    # Ray's default worker ports (10002-19999) swallow many of the ports above; a narrow,
    # explicit range keeps two local clusters (dev and tests) apart.
    ray_min_worker_port: int = _port(11000, "lowest port of Ray's worker processes")
    ray_max_worker_port: int = _port(11499, "highest port of Ray's worker processes")
    # Serve replicas, learners and Tune trials each reserve logical CPUs; with only the real cores
    # (2 here) a job asking for one CPU waited forever behind them. Logical CPUs are a scheduling
    # budget, not threads, so the head advertises more than it has.
    ray_num_cpus: int = Field(8, ge=1)
    ray_object_store_mb: int = Field(512, ge=78, description="Ray object store size")

    # -- Online learners ---------------------------------------------------------------------
    # HMAC key of learner checkpoints and of registered batch models: a checkpoint or a model
    # signed with another key (or altered) is refused, never unpickled. The default is for the
    # local stack only; set a secret one anywhere else.
    checkpoint_key: SecretStr = Field(SecretStr("rtml-local-dev-key"), min_length=8)
    # An ARF forest pickles to tens of MB after some 10k events (~2 s to dump), so checkpoints
    # are paced by time as well as by events to keep their share of learner time small.
    checkpoint_every_events: int = Field(5000, ge=1)
    checkpoint_every_s: float = Field(30.0, gt=0)
    # A self-pacing bound: after a checkpoint that took d seconds the next waits at least
    # d * (1 - share) / share, so checkpoints never take more than this share of learner time
    # however large the model grows (the replay window after a crash grows instead).
    checkpoint_max_share: float = Field(0.05, gt=0, lt=1)
    # Snapshots of the latest checkpoint to MLflow (the fallback when Redis loses it): rarer,
    # uploaded in the background, two artifact slots per learner so disk use stays bounded.
    snapshot_every_s: float = Field(600.0, gt=0)
    learner_batch: int = Field(500, ge=1, description="messages polled per micro-batch")
    learner_shards: int = Field(
        1, ge=1, description="learners per use case, each a partition subset"
    )
    # Online model hyperparameters over the spec's defaults, per use case, e.g.
    # RTML_LEARNER_PARAMS='{"tfd": {"n_models": 5}, "ecci": {"clustering_threshold": 2.0}}'
    learner_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    metrics_window: int = Field(
        1000, ge=10, description="events in a learner's recent metrics and shares"
    )
    # A Ray custom resource learners ask for (the chart's learner worker group offers
    # `rtml_learner`); unset locally, where any worker will do.
    learner_resource: str | None = Field(None, description="Ray resource that places learners")
    # The cluster profile's second Ray node on this machine (`ray start --address=...`): its own
    # agent and metrics ports (from ray_worker_node_port on) and its own range of worker ports.
    ray_worker_node_port: int = _port(52400, "second Ray node's agent port (+1: its metrics)")
    ray_worker_node_min_worker_port: int = _port(11500, "lowest worker port of the second node")
    ray_worker_node_max_worker_port: int = _port(11999, "highest worker port of the second node")

    # -- Serving -----------------------------------------------------------------------------
    serve_port: int = _port(8000, "Ray Serve HTTP API")
    # Serve's front door is HAProxy (rtml/ray_env.py SERVE_ENV): its own stats page and Prometheus
    # exporter, and the ports its replicas answer on behind it (Ray's default range is 30000-31000).
    serve_haproxy_stats_port: int = _port(8404, "HAProxy's stats page in front of Serve")
    serve_haproxy_metrics_port: int = _port(9103, "HAProxy's own Prometheus metrics")
    serve_replica_min_port: int = _port(30000, "lowest port a Serve replica answers HAProxy on")
    serve_replica_max_port: int = _port(30099, "highest port a Serve replica answers HAProxy on")
    # Unset: learner control (start/stop/reset) is open, fine on loopback; set it anywhere else.
    api_token: SecretStr | None = Field(
        None, description="bearer token of the API's control routes"
    )
    # `rtml up` on a laptop: one replica of the Api deployment (fixed, not autoscaled: a replica
    # started in the middle of an overload hurt more than it helped, docs/serving.md); the config
    # file's autoscaling (two replicas) is for clusters, tests and benches (docs/footprint.md).
    serve_local_replicas: int = Field(
        1, ge=1, description="Api replicas that `rtml up` deploys on the local stack"
    )
    serve_max_events: int = Field(
        1000, ge=1, description="most events in one predict/learn request"
    )
    serve_max_body_bytes: int = Field(
        2_000_000, ge=1024, description="larger request bodies get 413"
    )
    serve_cache_ttl_s: int = Field(
        3600, ge=0, description="batch prediction cache TTL; 0 = no cache"
    )
    # A learner answers between two events (~ms); longer means it is restarting or checkpointing,
    # and the replica's last loaded checkpoint answers instead.
    serve_learner_timeout_s: float = Field(0.25, gt=0, description="wait for a learner's answer")
    serve_champion_poll_s: float = Field(
        5.0, gt=0, description="how often to look for a new champion"
    )
    # Loading a checkpoint holds a replica's GIL ~2 s (a 90 MB forest), so the fallback copy that
    # answers while a learner restarts is refreshed on announcements, but at most this often.
    serve_fallback_refresh_s: float = Field(
        30.0, gt=0, description="least gap between fallback loads"
    )

    # -- Producers ---------------------------------------------------------------------------
    producer_rate: float = Field(5.0, ge=0, description="events/s per use case under `rtml up`")
    producer_metrics_port: int = _port(9101, "Prometheus metrics of the producers")
    seed: int = Field(42, description="seed of the event generators")

    # -- Observability -----------------------------------------------------------------------
    prometheus_port: int = _port(9090, "local Prometheus (scrapes Ray, producers, lakehouse)")
    prometheus_scrape_s: float = Field(10.0, gt=0, le=300, description="scrape/rule interval (s)")
    prometheus_retention: str = Field("7d", description="how long local Prometheus keeps samples")

    # -- Lakehouse: Kafka → Delta (Spark), DuckDB SQL over Delta -------------------------------
    lake_dir: Path | None = Field(
        None,
        description="folder of the Delta tables and stream checkpoints; unset: <state_dir>/lake",
    )
    lake_trigger_s: float = Field(
        6.0,
        gt=0,
        le=3600,
        description="micro-batch interval of the Kafka → Delta streams (seconds)",
    )
    lake_max_offsets_per_trigger: int = Field(
        100_000,
        ge=1,
        description="most Kafka records one micro-batch takes per topic (bounds memory)",
    )
    spark_driver_memory: str = Field("1g", description="JVM heap of the local Spark driver")
    lake_metrics_port: int = _port(9102, "Prometheus metrics of the lakehouse job's progress")
    # S3-compatible storage (AWS S3, SeaweedFS, R2): set the bucket and the lake lives there
    # instead of in lake_dir. Keys left unset fall back to the standard AWS_* variables /
    # credential chain. The cluster profile sets them all for its local SeaweedFS.
    lake_s3_bucket: str | None = Field(None, description="bucket of the lake; unset: local folder")
    lake_s3_prefix: str = Field("rtml", description="key prefix of the lake inside the bucket")
    lake_s3_endpoint: str | None = Field(
        None, description="endpoint of an S3-compatible store, e.g. http://127.0.0.1:8333"
    )
    lake_s3_region: str = Field("us-east-1", description="region of the bucket")
    lake_s3_access_key_id: SecretStr | None = Field(
        None, description="access key id (never logged)"
    )
    lake_s3_secret_access_key: SecretStr | None = Field(
        None, description="secret key (never logged)"
    )
    sql_row_limit: int = Field(10_000, ge=1, description="most rows one `rtml sql` query returns")
    sql_timeout_s: float = Field(10.0, gt=0, description="a SQL query is interrupted after this")
    sql_memory_limit: str = Field("512MB", description="DuckDB memory limit of one SQL query")

    @field_validator(
        "kafka_bootstrap",
        "redis_url",
        "mlflow_tracking_uri",
        "ray_address",
        "ray_dashboard_address",
        "lake_s3_bucket",
        "lake_s3_endpoint",
        "mlflow_artifacts_destination",
        "postgres_url",
    )
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("api_token", mode="before")
    @classmethod
    def _empty_token_is_unset(cls, value: object) -> object:
        """``RTML_API_TOKEN=`` means no token, not the empty token."""
        return value or None

    @model_validator(mode="before")
    @classmethod
    def _remembered_profile(cls, data: Any) -> Any:
        """Without RTML_PROFILE, the profile of the stack in the state folder, if it has one."""
        if isinstance(data, dict) and not data.get("profile"):
            remembered = Path(data.get("state_dir") or ".rtml") / PROFILE_FILE
            try:
                data = {**data, "profile": remembered.read_text().strip()}
            except OSError:
                pass
        return data

    @model_validator(mode="after")
    def _cluster_defaults(self) -> Settings:
        """The cluster profile fills what the person left unset: the lake and MLflow's artifacts
        in the local object store (its endpoint and identity), learners placed by resource."""
        if self.profile != "cluster":
            return self
        if self.lake_s3_bucket is None:
            self.lake_s3_bucket = CLUSTER_LAKE_BUCKET
            if self.lake_s3_endpoint is None:
                self.lake_s3_endpoint = self.local_s3_endpoint
        if self.lake_s3_endpoint == self.local_s3_endpoint:
            if self.lake_s3_access_key_id is None:
                self.lake_s3_access_key_id = SecretStr(LOCAL_S3_ACCESS_KEY_ID)
            if self.lake_s3_secret_access_key is None:
                self.lake_s3_secret_access_key = SecretStr(LOCAL_S3_SECRET_ACCESS_KEY)
        if self.mlflow_artifacts_destination is None:
            self.mlflow_artifacts_destination = CLUSTER_MLFLOW_ARTIFACTS
        if self.learner_resource is None:
            self.learner_resource = CLUSTER_LEARNER_RESOURCE
        return self

    @property
    def signing_key(self) -> bytes:
        """The HMAC key of checkpoints and models, as bytes."""
        return self.checkpoint_key.get_secret_value().encode()

    # -- resolved addresses: the one place that says where each part listens ----------------
    @property
    def kafka_servers(self) -> str:
        return self.kafka_bootstrap or f"{LOOPBACK}:{self.kafka_port}"

    @property
    def redis(self) -> str:
        return self.redis_url or f"redis://{LOOPBACK}:{self.redis_port}/0"

    @property
    def mlflow_uri(self) -> str:
        return self.mlflow_tracking_uri or f"http://{LOOPBACK}:{self.mlflow_port}"

    @property
    def ray(self) -> str:
        return self.ray_address or f"{LOOPBACK}:{self.ray_gcs_port}"

    @property
    def ray_dashboard_url(self) -> str:
        return self.ray_dashboard_address or f"http://{LOOPBACK}:{self.ray_dashboard_port}"

    @property
    def serve_url(self) -> str:
        return f"http://{LOOPBACK}:{self.serve_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{LOOPBACK}:{self.prometheus_port}"

    @property
    def local_s3_endpoint(self) -> str:
        """The endpoint of the object store the stack runs (cluster profile)."""
        return f"http://{LOOPBACK}:{self.s3_port}"

    @property
    def s3_internal_ports(self) -> dict[str, int]:
        """The object store's own ports beside its S3 gateway: SeaweedFS's master, volume server
        and filer, each with its gRPC port, and the gateway's gRPC port (SeaweedFS's default
        would be port + 10000, in the kernel's ephemeral range)."""
        names = ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3.grpc")
        return {name: self.s3_port + 1 + i for i, name in enumerate(names)}

    @property
    def postgres(self) -> str:
        """MLflow's backend store under the cluster profile (contains the password)."""
        if self.postgres_url:
            return self.postgres_url
        # The driver named: SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which
        # MLflow's image does not have (psycopg2-binary, the `cluster` extra).
        password = self.postgres_password.get_secret_value()
        return (
            f"postgresql+psycopg2://{self.postgres_user}:{password}@{LOOPBACK}:"
            f"{self.postgres_port}/{self.postgres_database}"
        )

    @property
    def lake_local_dir(self) -> Path:
        """The lake's local folder, absolute (Spark and DuckDB may run from other folders)."""
        return (self.lake_dir or self.state_dir / "lake").resolve()


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a validation error into one message per bad variable.

    Environment variables rtml does not know are ignored (other tools share the prefix), but an
    override passed here by name must be a setting: a misspelt one would silently do nothing.
    """
    unknown = sorted(set(overrides) - set(Settings.model_fields))
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            lines.append(f"{ENV_PREFIX}{field.upper()}={error.get('input')!r}: {error['msg']}")
        raise SettingsError("bad setting:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
