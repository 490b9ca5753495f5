"""Topic administration: every use case's event topic and its dead-letter topic.

Topics are created by rtml with an explicit partition count, never by broker auto-creation
(which would give whatever ``num.partitions`` the broker has, and hide a typo in a topic name).
"""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic

from rtml.kafka import admin_client
from rtml.settings import Settings
from rtml.usecases import USECASES, UseCase


def topic_names(specs: Iterable[UseCase]) -> list[str]:
    return [name for spec in specs for name in (spec.topic, spec.dlq_topic)]


def ensure_topics(
    settings: Settings, specs: Iterable[UseCase] = USECASES.values(), timeout: float = 30.0
) -> dict[str, str]:
    """Create missing topics; return what happened to each ("created" / "exists").

    An existing topic with another partition count is reported, not altered: repartitioning
    moves keys between partitions, which a running learner's offsets do not survive.
    """
    admin = admin_client(settings)
    names = topic_names(specs)
    existing = admin.list_topics(timeout=timeout).topics
    outcome: dict[str, str] = {}
    missing = []
    for name in names:
        if name in existing:
            have = len(existing[name].partitions)
            note = "" if have == settings.topic_partitions else f" with {have} partitions (!)"
            outcome[name] = "exists" + note
        else:
            missing.append(NewTopic(name, settings.topic_partitions, settings.topic_replication))
    for name, future in (
        admin.create_topics(missing, operation_timeout=timeout).items() if missing else ()
    ):
        try:
            future.result(timeout)
            outcome[name] = "created"
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            outcome[name] = "exists"
    return outcome


def delete_topics(settings: Settings, names: list[str], timeout: float = 30.0) -> None:
    admin = admin_client(settings)  # held until the futures resolve: its handle serves them
    for future in admin.delete_topics(names, operation_timeout=timeout).values():
        future.result(timeout)


def recreate_topics(
    settings: Settings, specs: Iterable[UseCase], timeout: float = 60.0, **overrides: object
) -> None:
    """Delete the use cases' topics and dead-letter topics and create them empty (``overrides``
    of settings, e.g. ``topic_partitions=4``). For benchmarks and `rtml verify`, never the stack:
    a learner's offsets and the lakehouse's checkpoints do not survive it."""
    import time

    specs = list(specs)
    names = topic_names(specs)
    existing = set(admin_client(settings).list_topics(timeout=timeout).topics)
    gone = [n for n in names if n in existing]
    if gone:
        delete_topics(settings, gone, timeout)
    target = settings.model_copy(update=overrides)
    deadline = time.monotonic() + timeout
    while True:  # deletion completes asynchronously: "marked for deletion" until then
        try:
            outcome = ensure_topics(target, specs, timeout)
            if all(outcome[n] == "created" for n in gone) or not gone:
                return
        except KafkaException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics {gone} were not recreated within {timeout:.0f}s")
        time.sleep(0.5)
