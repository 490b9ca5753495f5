"""The ledger: what a topic holds, read back from Kafka, and whether a learner's state matches it.

The verdict of every scenario rests on the broker's own record, not on what the scenario meant
to send: a topic is read from its first offset to the end offsets taken when reading starts, each
message parsed with the spec exactly as a learner parses it. A learner is exact when its count of
events learned equals the valid events of its partitions, when its trace (the (partition, offset)
of every event the live model has learned, kept inside the checkpoint so that it rolls back with
the model) holds each of them once, in partition order, and nothing else.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from rtml.entity import EntityState
from rtml.kafka import consumer_config
from rtml.settings import Settings
from rtml.usecases import InvalidEvent, UseCase

Offset = tuple[int, int]  # (partition, offset)


@dataclass
class TopicLedger:
    topic: str
    #: partition -> end offset (the next offset to be written) when the topic was read
    ends: dict[int, int]
    valid: set[Offset] = field(default_factory=set)
    #: invalid event -> the spec's reason
    invalid: dict[Offset, str] = field(default_factory=dict)
    #: messages whose value is byte-identical to an earlier one (a producer's duplicate write)
    duplicates: int = 0
    #: valid event -> the event as the spec parses it (a dict); read only when asked for
    events: dict[Offset, dict[str, Any]] = field(default_factory=dict)

    @property
    def messages(self) -> int:
        return len(self.valid) + len(self.invalid)


def end_offsets(
    settings: Settings, topic: str, partitions: Iterable[int] | None = None
) -> dict[int, int]:
    consumer = Consumer(consumer_config(settings, "rtml-verify-ends"))
    try:
        if partitions is None:
            partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in partitions
        }
    finally:
        consumer.close()


def _read(settings: Settings, topic: str, ends: Mapping[int, int]) -> Iterable[Any]:
    """Every message of ``topic`` below ``ends``, partition by partition in offset order."""
    consumer = Consumer(consumer_config(settings, "rtml-verify-ledger"))
    try:
        wanted = {p: end for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in wanted])
        done: set[int] = set()
        idle = 0
        while len(done) < len(wanted):
            batch = consumer.consume(num_messages=2000, timeout=2)
            idle = idle + 1 if not batch else 0
            if idle > 15:
                raise TimeoutError(
                    f"{topic}: no messages for 30 s, {len(done)}/{len(wanted)} partitions read"
                )
            for msg in batch:
                p, o = msg.partition(), msg.offset()
                # both are set on a consumed message (their Optional is for one being produced)
                if msg.error() is not None or p is None or o is None:
                    continue
                if o < wanted[p]:
                    yield msg
                if o >= wanted[p] - 1:
                    done.add(p)
    finally:
        consumer.close()


def read_topic(
    settings: Settings,
    spec: UseCase,
    partitions: Iterable[int] | None = None,
    keep_events: bool = False,
) -> TopicLedger:
    """The ledger of a use case's topic (or of some of its partitions); with ``keep_events``,
    every valid event too (what an entity-memory replay reads)."""
    ends = end_offsets(settings, spec.topic, partitions)
    ledger = TopicLedger(spec.topic, ends)
    seen: Counter[bytes] = Counter()
    for msg in _read(settings, spec.topic, ends):
        value = msg.value() or b""
        seen[hashlib.blake2b(value, digest_size=16).digest()] += 1
        try:
            event = spec.parse(value)
        except InvalidEvent as exc:
            ledger.invalid[(msg.partition(), msg.offset())] = exc.reason
        else:
            ledger.valid.add((msg.partition(), msg.offset()))
            if keep_events:
                ledger.events[(msg.partition(), msg.offset())] = event.model_dump()
    ledger.duplicates = sum(n - 1 for n in seen.values())
    return ledger


@dataclass(frozen=True)
class DeadLetter:
    source: Offset
    reason: str


def read_dead_letters(settings: Settings, spec: UseCase) -> list[DeadLetter]:
    """Every record of the use case's dead-letter topic, with the source offset it names."""
    out = []
    for msg in _read(settings, spec.dlq_topic, end_offsets(settings, spec.dlq_topic)):
        headers = {k: v.decode(errors="replace") for k, v in (msg.headers() or [])}
        topic, _, place = headers.get("rtml-source", "").partition("/")
        partition, _, offset = place.partition("/")
        source = (
            (int(partition), int(offset)) if topic == spec.topic and offset.isdigit() else (-1, -1)
        )
        out.append(DeadLetter(source, headers.get("rtml-reason", "")))
    return out


def learner_problems(
    name: str, ledger: TopicLedger, status: Mapping[str, Any], trace: Sequence[Offset] | None
) -> tuple[dict[str, int], list[str]]:
    """Compare one learner (its status and trace) with the ledger of the partitions it owns.

    Returns the counts and the broken promises: an event lost (valid, not learned), learned
    twice, learned out of order, an invalid one learned, counts that disagree with the topic.
    """
    problems = []
    trace = list(trace or [])
    learned_set = set(trace)
    repeats = len(trace) - len(learned_set)
    lost = ledger.valid - learned_set
    foreign = learned_set - ledger.valid
    out_of_order = 0
    last: dict[int, int] = {}
    for p, o in trace:
        if o <= last.get(p, -1):
            out_of_order += 1
        last[p] = o
    counts = {
        "events": ledger.messages,
        "valid": len(ledger.valid),
        "invalid": len(ledger.invalid),
        "learned": int(status.get("learned", -1)),
        "dead_lettered": int(status.get("dead_lettered", -1)),
        "trace": len(trace),
        "lost": len(lost),
        "repeated": repeats,
        "out_of_order": out_of_order,
    }
    if status.get("error"):
        problems.append(f"{name}: learner failed: {str(status['error']).strip().splitlines()[-1]}")
    if counts["learned"] != len(ledger.valid):
        problems.append(
            f"{name}: learned {counts['learned']} events, "
            f"the topic holds {len(ledger.valid)} valid ones"
        )
    if counts["dead_lettered"] != len(ledger.invalid):
        problems.append(
            f"{name}: dead-lettered {counts['dead_lettered']}, "
            f"the topic holds {len(ledger.invalid)} invalid events"
        )
    if trace is not None and len(trace) != counts["learned"]:
        problems.append(
            f"{name}: the trace holds {len(trace)} events, the count says {counts['learned']}"
        )
    if lost:
        problems.append(f"{name}: {len(lost)} valid events never learned, e.g. {sorted(lost)[:3]}")
    if repeats:
        problems.append(f"{name}: {repeats} events learned twice")
    if foreign:
        problems.append(
            f"{name}: {len(foreign)} learned events that are not valid events of the topic, "
            f"e.g. {sorted(foreign)[:3]}"
        )
    if out_of_order:
        problems.append(f"{name}: {out_of_order} events learned out of partition order")
    offsets = {int(p): int(o) for p, o in (status.get("offsets") or {}).items()}
    behind = {
        p: (offsets.get(p, 0), end) for p, end in ledger.ends.items() if offsets.get(p, 0) != end
    }
    if behind:
        problems.append(
            f"{name}: next offsets {behind} (learner, topic end) are not the topic's end"
        )
    return counts, problems


def dead_letter_problems(
    name: str, ledger: TopicLedger, letters: Sequence[DeadLetter], exactly_once: bool
) -> tuple[dict[str, int], list[str]]:
    """Every invalid event has a dead letter with a reason; with ``exactly_once`` (no crash
    replayed any), exactly one. Dead letters are written at least once: a learner that crashes
    after writing one and before its checkpoint writes it again when it replays."""
    per_source = Counter(letter.source for letter in letters)
    missing = set(ledger.invalid) - set(per_source)
    stray = set(per_source) - set(ledger.invalid)
    doubled = sum(n - 1 for n in per_source.values() if n > 1)
    unexplained = sum(1 for letter in letters if not letter.reason)
    counts = {
        "dead_letters": len(letters),
        "dead_letters_missing": len(missing),
        "dead_letters_doubled": doubled,
    }
    problems = []
    if missing:
        problems.append(
            f"{name}: {len(missing)} invalid events without a dead letter, "
            f"e.g. {sorted(missing)[:3]}"
        )
    if stray:
        problems.append(
            f"{name}: {len(stray)} dead letters for no invalid event, e.g. {sorted(stray)[:3]}"
        )
    if exactly_once and doubled:
        problems.append(f"{name}: {doubled} invalid events dead-lettered more than once")
    if unexplained:
        problems.append(f"{name}: {unexplained} dead letters without a reason")
    return counts, problems


def entity_memory_problems(
    name: str,
    spec: UseCase,
    ledger: TopicLedger,
    trace: Sequence[Offset],
    held: EntityState,
    forget_every: int,
) -> tuple[dict[str, int], list[str]]:
    """Compare a checkpoint's entity memory with a clean replay of the events its trace says the
    model learned, in that order (the ledger read with ``keep_events``): a restore that resumed
    the memory from an older checkpoint, or recorded an event twice, shows as a difference.

    ``forget_every`` is the learner's cadence of forgetting idle entities (every N events
    learned), which the replay repeats. One shard owning every partition: its foreign-keyed
    memories then hold the same events in the same order as its own.
    """
    replayed = spec.entity_state()
    if replayed is None:
        return {}, [f"{name}: the spec has no entity features, the checkpoint an entity memory"]
    missing = 0
    for n, at in enumerate(trace, 1):
        event = ledger.events.get(at)
        if event is None:
            missing += 1
            continue
        replayed.record(event)
        if n % forget_every == 0:
            replayed.forget()
    sizes = {key: len(by_value) for key, by_value in replayed.memory.items()}
    differ = {
        key: sum(
            1
            for value in set(by_value) | set(held.memory.get(key, {}))
            if held.memory.get(key, {}).get(value) != by_value.get(value)
        )
        for key, by_value in replayed.memory.items()
    }
    counts = {"entities": sum(sizes.values()), "entities_differ": sum(differ.values())}
    problems = []
    if missing:
        problems.append(f"{name}: {missing} traced events are not valid events of the topic")
    if held.watermark != replayed.watermark or held.too_late != replayed.too_late:
        problems.append(
            f"{name}: entity memory's watermark/too-late {held.watermark}/{held.too_late}, "
            f"a replay's {replayed.watermark}/{replayed.too_late}"
        )
    if any(differ.values()) or set(held.memory) != set(replayed.memory):
        problems.append(
            f"{name}: entity memory differs from a clean replay of its trace: "
            + ", ".join(f"{f} {d} of {sizes[f]}" for f, d in differ.items() if d)
        )
    return counts, problems
