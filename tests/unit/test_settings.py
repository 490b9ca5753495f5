from __future__ import annotations

import pytest

from rtml.settings import SettingsError, load_settings


def test_defaults_serve_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RTML_KAFKA_PORT", "RTML_KAFKA_BOOTSTRAP", "RTML_REDIS_PORT", "RTML_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings()
    assert s.kafka_servers == "127.0.0.1:9092"
    assert s.redis == "redis://127.0.0.1:6379/0"
    assert s.kafka_bootstrap is None  # not external: `rtml up` runs the broker


def test_an_address_makes_a_part_external(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTML_KAFKA_BOOTSTRAP", "broker.example:9092")
    monkeypatch.setenv("RTML_REDIS_URL", "")  # empty is unset
    s = load_settings()
    assert s.kafka_servers == "broker.example:9092"
    assert s.redis_url is None


@pytest.mark.parametrize(
    "variable, value",
    [("RTML_KAFKA_PORT", "ninety"), ("RTML_REDIS_PORT", "70000"), ("RTML_TOPIC_PARTITIONS", "0")],
)
def test_a_bad_value_fails_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_a_misspelt_override_is_refused_not_ignored() -> None:
    assert load_settings(topic_partitions=4).topic_partitions == 4
    with pytest.raises(SettingsError, match="kafka_topic_partitions"):
        load_settings(kafka_topic_partitions=4)


def test_sandbox_slots_cover_every_port_and_never_overlap(tmp_path) -> None:
    from rtml.settings import Settings
    from rtml.stack.sandbox import MAX_SLOT, PORT_OFFSETS, SLOTS, sandbox_env

    ports = {name for name in Settings.model_fields if name.endswith("_port")}
    assert ports == set(PORT_OFFSETS), "a port setting without a place in the sandbox's block"
    assert len(set(SLOTS.values())) == len(SLOTS)
    taken: dict[int, str] = {}
    for slot in range(MAX_SLOT + 1):
        env = sandbox_env(slot, tmp_path)
        settings = Settings(**{k.removeprefix("RTML_").lower(): v for k, v in env.items()})
        ranges = [
            (settings.ray_min_worker_port, settings.ray_max_worker_port),
            (settings.serve_replica_min_port, settings.serve_replica_max_port),
            (settings.ray_worker_node_min_worker_port, settings.ray_worker_node_max_worker_port),
        ]
        used = {getattr(settings, n) for n in ports if "_min_" not in n and "_max_" not in n}
        derived = {
            settings.ray_metrics_export_port + 1,
            settings.ray_metrics_export_port + 2,
            settings.ray_worker_node_port + 1,
            *settings.s3_internal_ports.values(),
        }
        used |= derived
        for low, high in ranges:
            used |= set(range(low, high + 1))
        expected = (
            len(ports)
            - 2 * len(ranges)
            + len(derived)
            + sum(high - low + 1 for low, high in ranges)
        )
        assert len(used) == expected, f"slot {slot} uses a port twice"
        clash = {p: taken[p] for p in used if p in taken}
        assert not clash, f"slot {slot} overlaps {clash}"
        taken.update(dict.fromkeys(used, str(slot)))
        assert max(used) < 32_768, "inside the kernel's ephemeral port range"
    with pytest.raises(ValueError, match="outside"):
        sandbox_env(MAX_SLOT + 1, tmp_path)


def test_the_cluster_profile_fills_the_object_store_postgres_and_placement(monkeypatch) -> None:
    for name in (
        "RTML_LAKE_S3_BUCKET",
        "RTML_LAKE_S3_ENDPOINT",
        "RTML_LAKE_S3_ACCESS_KEY_ID",
        "RTML_LAKE_S3_SECRET_ACCESS_KEY",
        "RTML_MLFLOW_ARTIFACTS_DESTINATION",
        "RTML_LEARNER_RESOURCE",
        "RTML_POSTGRES_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RTML_PROFILE", "local")
    local = load_settings(s3_port=8333)
    assert local.lake_s3_bucket is None and local.mlflow_artifacts_destination is None
    assert local.learner_resource is None

    s = load_settings(profile="cluster", s3_port=8333, postgres_port=5433)
    # The chart's defaults (charts/rtml/values.yaml): the same buckets, prefix and resource.
    assert (s.lake_s3_bucket, s.lake_s3_prefix) == ("rtml-lake", "rtml")
    assert s.lake_s3_endpoint == "http://127.0.0.1:8333"
    assert s.lake_s3_access_key_id is not None and s.lake_s3_secret_access_key is not None
    assert s.mlflow_artifacts_destination == "s3://rtml-mlflow/artifacts"
    assert s.learner_resource == "rtml_learner"
    assert s.postgres == "postgresql+psycopg2://mlflow:rtml-local-dev-pg@127.0.0.1:5433/mlflow"
    assert "rtml-local-dev-pg" not in repr(s)

    # What is given explicitly wins: another store's endpoint brings its own keys.
    other = load_settings(profile="cluster", lake_s3_endpoint="https://s3.example")
    assert other.lake_s3_bucket == "rtml-lake" and other.lake_s3_access_key_id is None
