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
