"""A second local stack beside a developer's own: its own ports and its own state folder.

The test suite, `rtml verify` and the benchmarks each bring up a complete stack from empty
state, and must never touch the one `rtml up` runs on the default ports, nor each other. A
*slot* is a block of 1000 ports below Linux's ephemeral range (32768+, where the kernel picks
client ports): slot ``k`` puts every service port at ``20000 + 1000·k + offset`` and gives Ray's
workers the block's upper half. Each user of a sandbox names its slot in :data:`SLOTS`.

The result is environment variables, not a :class:`~rtml.settings.Settings`: everything a
sandbox starts (Ray's head, the producers' process, Ray jobs) reads its settings from the
environment it inherits, so the variables go into ``os.environ`` before anything else runs.
"""

from __future__ import annotations

from pathlib import Path

from rtml.settings import ENV_PREFIX

FIRST_PORT = 20_000
SLOT_SIZE = 1000
#: The slots in use, so that none is given twice. A second test session on the same machine
#: takes another with ``RTML_TEST_SLOT``.
SLOTS = {
    "test": 0,
    "verify": 2,
    "bench-producer": 3,
    "bench-learner": 4,
    "bench-serve": 5,
    "bench-batch": 6,
    "bench-quality": 1,
    "bench-idle": 7,
    "bench-scale": 10,
}
MAX_SLOT = (32_768 - FIRST_PORT) // SLOT_SIZE - 1

#: Each port setting's place in a slot's block. Ray's metrics export port takes the next two as
#: well (its dashboard's and autoscaler's metrics, see rtml.stack.parts.Ray).
PORT_OFFSETS = {
    "serve_port": 0,
    "ray_client_port": 1,
    "mlflow_port": 50,
    "postgres_port": 32,
    "s3_port": 33,  # and the object store's own ports, 34-40 (Settings.s3_internal_ports)
    "ray_dashboard_port": 65,
    "ray_dashboard_agent_port": 66,
    "ray_metrics_export_port": 70,
    "redis_port": 79,
    "ray_gcs_port": 80,
    "prometheus_port": 90,
    "kafka_port": 92,
    "kafka_controller_port": 93,
    "producer_metrics_port": 101,
    "lake_metrics_port": 102,
    "serve_haproxy_stats_port": 103,
    "serve_haproxy_metrics_port": 104,
    "ray_worker_node_port": 110,  # and its metrics, 111
    "ray_worker_node_min_worker_port": 200,
    "ray_worker_node_max_worker_port": 299,
    "serve_replica_min_port": 400,
    "serve_replica_max_port": 449,
    "ray_min_worker_port": 500,
    "ray_max_worker_port": 999,
}
#: Existing services a sandbox must not inherit: it runs its own.
EXTERNAL = (
    "kafka_bootstrap",
    "redis_url",
    "mlflow_tracking_uri",
    "ray_address",
    "ray_dashboard_address",
    "postgres_url",
)


def sandbox_env(slot: int, state_dir: Path) -> dict[str, str]:
    """The ``RTML_*`` variables of a sandbox stack in ``slot`` with its data in ``state_dir``."""
    if not 0 <= slot <= MAX_SLOT:
        raise ValueError(f"sandbox slot {slot} is outside 0..{MAX_SLOT}")
    base = FIRST_PORT + SLOT_SIZE * slot
    env = {
        f"{ENV_PREFIX}{name.upper()}": str(base + offset) for name, offset in PORT_OFFSETS.items()
    }
    env[f"{ENV_PREFIX}STATE_DIR"] = str(state_dir)
    # The plain local stack, whatever profile the person's shell has; a cluster-profile sandbox
    # sets RTML_PROFILE=cluster over this (tests/cluster/).
    env[f"{ENV_PREFIX}PROFILE"] = "local"
    env.update({f"{ENV_PREFIX}{name.upper()}": "" for name in EXTERNAL})
    return env
