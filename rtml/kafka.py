"""Kafka client configuration in one place, and the message boundary as a Protocol.

Producers and consumers everywhere in rtml take their librdkafka settings from here, so the
delivery guarantees (idempotent producer, manual offsets) are stated once.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from rtml.settings import Settings


class Message(Protocol):
    """The part of ``confluent_kafka.Message`` that rtml reads; unit tests fake it."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> list[tuple[str, bytes]] | None: ...


#: How long a producer keeps retrying a message before it reports it failed (librdkafka's default,
#: made explicit): an event waits through a broker outage up to this long, then fails loudly.
DELIVERY_TIMEOUT_S = 300


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka_servers,
        # acks=all + idempotence: a retried send is written once, in order, per partition.
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": "lz4",
        # A few ms of lingering fills batches at high rates and costs nothing at low ones.
        "linger.ms": 5,
        "batch.num.messages": 10_000,
        "delivery.timeout.ms": DELIVERY_TIMEOUT_S * 1000,
        **overrides,
    }


def consumer_config(settings: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka_servers,
        "group.id": group_id,
        # Offsets are committed by the application, after its own state is durable.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.kafka_session_timeout_ms,
        "heartbeat.interval.ms": max(settings.kafka_session_timeout_ms // 3, 500),
        **overrides,
    }


def admin_client(settings: Settings, **overrides: Any) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka_servers, **overrides})


def broker_ready(settings: Settings, timeout: float = 2.0) -> bool:
    """True when the broker answers a metadata request within ``timeout`` seconds."""
    try:
        # Quiet: while a broker starts, librdkafka would log every refused connection.
        admin_client(settings, log_level=0).list_topics(timeout=timeout)
        return True
    except KafkaException:
        return False


def wait_for_broker(settings: Settings, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not broker_ready(settings):
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"no Kafka broker answered at {settings.kafka_servers} in {timeout:.0f}s"
            )
        time.sleep(0.5)
