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
        ]
        used = {getattr(settings, n) for n in ports if "_min_" not in n and "_max_" not in n}
        used |= {settings.ray_metrics_export_port + 1, settings.ray_metrics_export_port + 2}
        for low, high in ranges:
            used |= set(range(low, high + 1))
        expected = len(ports) - 2 * len(ranges) + 2 + sum(high - low + 1 for low, high in ranges)
        assert len(used) == expected, f"slot {slot} uses a port twice"
        clash = {p: taken[p] for p in used if p in taken}
        assert not clash, f"slot {slot} overlaps {clash}"
        taken.update(dict.fromkeys(used, str(slot)))
        assert max(used) < 32_768, "inside the kernel's ephemeral port range"
    with pytest.raises(ValueError, match="outside"):
        sandbox_env(MAX_SLOT + 1, tmp_path)
