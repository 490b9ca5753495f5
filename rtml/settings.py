"""One typed settings object for every address, port, path and tunable of rtml.

Values come from environment variables with the ``RTML_`` prefix (``RTML_KAFKA_PORT=19092``) or
from a ``.env`` file; the defaults serve the local stack on loopback. A service given as an
address (``RTML_KAFKA_BOOTSTRAP``, ``RTML_REDIS_URL``, ``RTML_MLFLOW_TRACKING_URI``,
``RTML_RAY_ADDRESS``) is an *existing* one: the local stack then leaves it alone and only checks it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "RTML_"
LOOPBACK = "127.0.0.1"



def _port(default: int, what: str) -> int:
    return Field(default, ge=1, le=65535, description=what)


class SettingsError(ValueError):
    """A setting has a bad value; the message names the environment variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", validate_default=True
    )

    # -- where things live -------------------------------------------------------------------
    state_dir: Path = Field(Path(".rtml"), description="pids, logs and data of the local stack")
    cache_dir: Path = Field(
        Path.home() / ".cache" / "rtml", description="downloads kept across checkouts (jars)"
    )

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

    # -- Ray ---------------------------------------------------------------------------------
    ray_address: str | None = Field(None, description="an existing cluster; unset: run a head")
    ray_gcs_port: int = _port(6380, "local Ray head's GCS port (6379 is Redis')")
    ray_dashboard_port: int = _port(8265, "Ray dashboard and job API")
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

    # -- Serving -----------------------------------------------------------------------------
    serve_port: int = _port(8000, "Ray Serve HTTP API")

    # -- Producers ---------------------------------------------------------------------------
    producer_rate: float = Field(5.0, ge=0, description="events/s per use case under `rtml up`")
    producer_metrics_port: int = _port(9101, "Prometheus metrics of the producers")
    seed: int = Field(42, description="seed of the event generators")

    @field_validator("kafka_bootstrap", "redis_url", "mlflow_tracking_uri", "ray_address")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

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
        return f"http://{LOOPBACK}:{self.ray_dashboard_port}"

    @property
    def serve_url(self) -> str:
        return f"http://{LOOPBACK}:{self.serve_port}"


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a validation error into one message per bad variable."""
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
