"""Entity features: the stream and the lake compute the same values, point in time.

The same events go through both paths: the stream (``EntityState``, in an arrival order that is
out of event-time order across partitions, with late events inside a partition) and DuckDB over a
bronze table holding the same events with their partition and offset (``features_sql``). Counts
must agree exactly, floats to 1e-9 relative. Then a leak check: an event's features must not
change when the event's own values and label, or anything that came after it, change. A planted
leak (an event recorded before it is read) proves that check can fail.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from rtml.entity import (
    OWN_RELATIVE,
    Entities,
    EntityFeature,
    EntityState,
    features_sql,
    micros,
    replay,
)
from rtml.features import numeric
from rtml.usecases import get
from rtml.usecases.base import UseCase
from rtml.usecases.generators import generator_for

PARTITIONS = 3
EVENTS = 2500
USECASES = ["tfd", "eta", "ecci"]

Arrival = list[tuple[int, int, dict[str, Any]]]  # (partition, offset, event)


def _events(spec: UseCase, n: int, seed: int) -> list[dict[str, Any]]:
    g = generator_for(spec.name, seed=seed, events_per_second=1.0)  # labels arrive meanwhile
    return [spec.parse(next(g).event).model_dump() for _ in range(n)]


def _arrival(spec: UseCase, events: list[dict[str, Any]], seed: int, late: int) -> Arrival:
    """Events keyed into partitions (as the producer does), some made late inside their partition
    (moved up to ``late`` places back), then the partitions interleaved at random."""
    rng = random.Random(seed)
    parts: list[list[dict[str, Any]]] = [[] for _ in range(PARTITIONS)]
    for e in events:
        parts[zlib.crc32(str(e[spec.key]).encode()) % PARTITIONS].append(e)
    for part in parts:
        for i in rng.sample(range(len(part)), len(part) // 20):  # 5 % arrive late
            j = min(len(part) - 1, i + rng.randint(1, late))
            part.insert(j, part.pop(i))
    cursors, out = [0] * PARTITIONS, []
    while any(c < len(p) for c, p in zip(cursors, parts, strict=True)):
        p = rng.choice([k for k in range(PARTITIONS) if cursors[k] < len(parts[k])])
        out.append((p, cursors[p], parts[p][cursors[p]]))
        cursors[p] += 1
    return out


def _lake(spec: UseCase, arrival: Arrival) -> duckdb.DuckDBPyConnection:
    rows = [{**e, "kafka_partition": p, "kafka_offset": o} for p, o, e in arrival]
    columns = {name: [r[name] for r in rows] for name in rows[0]}
    table = pa.table(
        {
            name: pa.array(v, pa.timestamp("us", tz="UTC")) if name == "timestamp" else v
            for name, v in columns.items()
        }
    )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/Sao_Paulo'")  # the session's zone changes nothing
    con.register("bronze", table)
    return con


def _batch(spec: UseCase, con: duckdb.DuckDBPyConnection, id_field: str) -> dict[str, dict]:
    table = con.sql(features_sql(spec, "bronze", [id_field])).to_arrow_table().to_pylist()
    return {str(r[id_field]): r for r in table}


def _assert_same(spec: UseCase, stream: dict[str, dict], batch: dict[str, dict]) -> None:
    assert spec.entities is not None
    assert stream.keys() == batch.keys()
    counts = {f.name for f in spec.entities.features if f.agg in ("count", "seen", "distinct")}
    for event_id, online in stream.items():
        for name in spec.entities.names:
            if name in counts:
                assert online[name] == batch[event_id][name], (event_id, name)
            else:
                assert online[name] == pytest.approx(batch[event_id][name], rel=1e-9, abs=1e-9), (
                    event_id,
                    name,
                    online[name],
                    batch[event_id][name],
                )


def _stream(spec: UseCase, arrival: Arrival) -> dict[str, dict]:
    assert spec.entities is not None
    features = replay(spec, [e for _, _, e in arrival])
    return {
        str(e[spec.entities.id_field]): x for (_, _, e), x in zip(arrival, features, strict=True)
    }


@pytest.mark.parametrize("usecase", USECASES)
def test_stream_and_lake_agree_out_of_order_with_late_events(usecase: str) -> None:
    spec = get(usecase)
    assert spec.entities is not None and spec.entities.features
    arrival = _arrival(spec, _events(spec, EVENTS, seed=11), seed=12, late=40)
    stream = _stream(spec, arrival)
    _assert_same(spec, stream, _batch(spec, _lake(spec, arrival), spec.entities.id_field))
    # and the features carry information: not one constant column
    for name in spec.entities.names:
        assert len({x[name] for x in stream.values()}) > 1, name


def _tiny(history: int = 4) -> UseCase:
    """A use case whose events are all one user's, at a handful of timestamps (many ties)."""
    from datetime import datetime, timedelta

    from rtml.tasks import Regression
    from rtml.usecases.base import EventModel

    class Reading(EventModel):
        reading_id: str
        meter: str
        timestamp: datetime
        kwh: float
        site: str

    amount = numeric("kwh")
    return UseCase(
        name="meters",
        title="Meters",
        task=Regression(),
        event=Reading,
        key="meter",
        target="kwh",
        features=(amount,),
        entities=Entities(
            id_field="reading_id",
            history=history,
            label_delay="kwh",  # a label known kwh seconds after its reading
            foreign_lag=timedelta(minutes=5),
            features=(
                EntityFeature("n", "count"),
                EntityFeature("total", "sum", (amount,)),
                EntityFeature("spread", "std", (amount,), fill=-1.0),
                EntityFeature("last", "last", (amount,)),
                EntityFeature("vs_mean", "ratio_to_mean", (amount,), fill=1.0),
                EntityFeature("above_mean", "diff_to_mean", (amount,)),
                EntityFeature("known", "count", (), label=True),
                EntityFeature("site_total", "sum", (amount,), entity="site"),
            ),
        ),
    )


def test_ties_history_cap_and_label_delay_agree() -> None:
    """Equal event times (ordered by id), more events than the history keeps, per-event label
    delays and a foreign key (its partitions within the foreign lag of each other): both paths
    still agree, exactly."""
    from datetime import UTC, datetime, timedelta

    spec = _tiny()
    rng = random.Random(3)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        {
            "reading_id": f"r-{rng.randrange(10**6):06d}",
            "meter": rng.choice("ab"),
            "timestamp": t0 + timedelta(seconds=rng.randrange(0, 1200, 4)),  # many ties
            "kwh": float(rng.randint(1, 60)),
            "site": rng.choice("xy"),
        }
        for _ in range(300)
    ]
    events.sort(key=lambda e: e["timestamp"])  # produced in time, then some arrive late
    arrival = _arrival(spec, events, seed=4, late=10)
    _assert_same(spec, _stream(spec, arrival), _batch(spec, _lake(spec, arrival), "reading_id"))


# -- point in time: nothing from the event itself, nothing from later ------------------------


def _leak_check(
    spec: UseCase, arrival: Arrival, features: Callable[[Arrival], list[dict[str, float]]]
) -> None:
    """For sampled events: flip the event's label, poison its own values, and drop everything
    that arrived after it or lies after it in event time. Its features must not move (those
    that compare the event's own value with the history are compared with its values intact)."""
    assert spec.entities is not None
    full = features(arrival)
    rng = random.Random(5)
    numeric_fields = [n for n, f in spec.event.model_fields.items() if f.annotation is float]
    relative = {f.name for f in spec.entities.features if f.agg in OWN_RELATIVE}
    for i in rng.sample(range(len(arrival)), 25):
        p, o, e = arrival[i]
        flipped = dict(e)
        if spec.target and isinstance(e[spec.target], bool):
            flipped[spec.target] = not e[spec.target]
        elif spec.target:
            flipped[spec.target] = e[spec.target] * 3 + 1
        poisoned = {**flipped, **{n: e[n] * 3 + 1 for n in numeric_fields}}
        key = (micros(e["timestamp"]), str(e[spec.entities.id_field]))
        before = [
            a
            for a in arrival[:i]
            if (micros(a[2]["timestamp"]), str(a[2][spec.entities.id_field])) < key
        ]
        own = features([*before, (p, o, flipped)])[-1]
        assert own == full[i], i
        history_only = features([*before, (p, o, poisoned)])[-1]
        for name in set(spec.entities.names) - relative:
            assert history_only[name] == full[i][name], (i, name)


def _stream_features(spec: UseCase) -> Callable[[Arrival], list[dict[str, float]]]:
    return lambda arrival: replay(spec, [e for _, _, e in arrival])


@pytest.mark.parametrize("usecase", USECASES)
def test_features_use_nothing_of_the_event_or_after_it(usecase: str) -> None:
    spec = get(usecase)
    arrival = _arrival(spec, _events(spec, 1500, seed=21), seed=22, late=20)
    _leak_check(spec, arrival, _stream_features(spec))


def test_the_leak_check_catches_a_leak() -> None:
    """Plant a leak (a learner that records an event before it reads its features, so a
    customer's averages include the event itself): the check catches it."""
    spec = get("ecci")
    assert spec.entities is not None
    entities = spec.entities

    def leaky(arrival: Arrival) -> list[dict[str, float]]:
        state = EntityState(spec.key, entities)
        out = []
        for _, _, e in arrival:
            state.record(e)
            out.append(state.features({**e, "event_id": "~"}))  # "~" sorts after every id
        return out

    arrival = _arrival(spec, _events(spec, 1500, seed=21), seed=22, late=20)
    with pytest.raises(AssertionError):
        _leak_check(spec, arrival, leaky)


def test_memory_is_bounded_and_forgets_idle_entities() -> None:
    spec = _tiny(history=4)
    assert spec.entities is not None
    from datetime import UTC, datetime, timedelta

    state = EntityState(spec.key, spec.entities)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(50):  # an hour apart: all but the newest are past the lateness
        at = t0 + i * spec.entities.lateness
        state.record(
            {"reading_id": f"r{i:03d}", "meter": "a", "timestamp": at, "kwh": 1.0, "site": "x"}
        )
    assert len(state.entity("meter", "a")) == 4 + 1  # the history, and the newest hour
    later = at + spec.entities.horizon + spec.entities.lateness + timedelta(seconds=1)
    state.record({"reading_id": "z", "meter": "b", "timestamp": later, "kwh": 1.0, "site": "y"})
    assert state.forget() == 2  # meter a and site x
    assert state.entity("meter", "a") == [] and len(state.entity("meter", "b")) == 1


def test_the_online_store_record_gives_the_learners_features() -> None:
    """What serving rebuilds from the store's JSON records of an event's entities gives the same
    features as the learner's whole state."""
    from rtml.entity_store import EntityRecord, state_of

    spec = get("tfd")
    assert spec.entities is not None
    events = _events(spec, 1500, seed=31)
    state = EntityState(spec.key, spec.entities)
    for e in events[:-50]:
        state.record(e)
    for e in events[-50:]:
        records = [
            EntityRecord.from_json(
                f, str(e[f]), EntityRecord(f, str(e[f]), obs, 0, state.watermark, 0.0).to_json()
            )
            for f in spec.entities.groups(spec.key)
            if (obs := state.entity(f, str(e[f])))
        ]
        assert state_of(spec, records).features(e) == state.features(e)
