"""Entity features: what a user, a driver, a merchant did *before* an event, defined once.

An :class:`EntityFeature` aggregates one or more stateless :class:`~rtml.features.Feature` values
(or the label) over the earlier events of the same entity: the event's own key, or another field
such as ``merchant_id``. Each definition yields both paths:

- **the stream** (:class:`EntityState`): each entity keeps its recent events, sorted by event time;
  the learner asks for an event's features before it predicts and learns, then records the event;
- **the lake** (:func:`features_sql`): a DuckDB self-join of the bronze table that selects the same
  earlier events for every row, and the same aggregate over them.

**What "earlier" means** (both paths, exactly): an event ``p`` counts for an event ``e`` of the
same entity when

1. ``p`` is strictly before ``e`` in event time, ties broken by the event id: ``(t, id)`` order;
2. ``p`` was known when ``e`` was processed: for the partition key, ``p`` came before ``e`` in
   their Kafka partition (a late event never rewrites what an earlier one saw); for any other
   field, whose events are spread over partitions with no order between them, ``p`` is at least
   ``foreign_lag`` older than ``e`` (partitions read within that lag of each other agree);
3. ``p`` is among the entity's last ``history`` such events and within ``horizon`` of ``e``
   (memory is bounded), and within the feature's own ``window``;
4. for a label aggregate, ``p``'s label was available at ``e``'s time: ``p.t + label_delay <=
   e.t`` (a chargeback takes time to arrive; a trip's time is known when it ends).

An event never sees itself or its own label. Memory is bounded: an entity keeps its events of the
last ``lateness`` (event time, behind its newest) and ``history`` events before them, and is
forgotten ``horizon + lateness`` after its newest event. An event that arrives later than
``lateness`` is counted (``too_late``): its features may then differ from the lake's.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from rtml.features import Event, Feature, FeatureValue, feature_sql

if TYPE_CHECKING:
    from rtml.usecases.base import UseCase

Aggregation = Literal[
    "count",
    "sum",
    "mean",
    "std",
    "min",
    "max",
    "last",
    "since_last",
    "seen",
    "share_same",
    "distinct",
    "ratio_to_mean",
    "diff_to_mean",
    "distance",
]

#: What each aggregation needs of its inputs: none (counts, times), one value, or two (lat, lon).
_ARITY: dict[str, int] = {"count": 0, "since_last": 0, "distance": 2}

#: Aggregations that compare the event's own value with its entity's history.
OWN_RELATIVE = frozenset({"ratio_to_mean", "diff_to_mean", "seen", "share_same", "distance"})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
EARTH_KM = 6371.0


def micros(ts: datetime) -> int:
    """Event time as integer microseconds since the epoch: exact, the same as DuckDB's
    ``epoch_us``, and ordered without float rounding."""
    return (ts - _EPOCH) // _US


@dataclass(frozen=True)
class EntityFeature:
    """One aggregate over an entity's earlier events (see the module's rules)."""

    name: str
    agg: Aggregation
    #: The values aggregated: stateless features of each earlier event (the label is
    #: ``numeric(target)`` or ``flag(target)`` with ``label=True``).
    of: tuple[Feature, ...] = ()
    #: The field whose value names the entity; ``None`` is the spec's key.
    entity: str | None = None
    #: Only earlier events within this much event time count (``None``: the whole horizon).
    window: timedelta | None = None
    #: The value aggregates the label: each earlier event counts only once its label is known.
    label: bool = False
    #: The value when no earlier event counts.
    fill: float = 0.0
    doc: str = ""

    def __post_init__(self) -> None:
        want = _ARITY.get(self.agg, 1)
        if len(self.of) != want:
            raise ValueError(
                f"{self.name}: {self.agg} aggregates {want} value(s), not {len(self.of)}"
            )


#: An earlier event as an entity remembers it: (event time µs, id, label known from µs, values).
Observation = tuple[int, str, int, tuple[FeatureValue, ...]]


@dataclass(frozen=True)
class Entities:
    """A spec's entity features and the rules of their memory."""

    features: tuple[EntityFeature, ...]
    #: The event's unique id: it orders events of the same event time.
    id_field: str
    time_field: str = "timestamp"
    #: How long after an event its label is known: a duration, or a field of the event holding
    #: seconds (a trip's own duration); ``None``: labels are never aggregated.
    label_delay: timedelta | str | None = None
    #: The most earlier events an entity's features read (and, with a slack, keeps).
    history: int = 256
    #: The most event time an entity's features look back; an entity idle for longer is forgotten.
    horizon: timedelta = timedelta(days=30)
    #: How late (event time) an event may arrive and still read exactly what the lake reads.
    lateness: timedelta = timedelta(hours=1)
    #: Events of an entity other than the key count only once this much older (partitions run
    #: apart by less than this).
    foreign_lag: timedelta = timedelta(seconds=60)

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError(f"entity feature names repeat: {names}")
        if any(f.label for f in self.features) and self.label_delay is None:
            raise ValueError("a label aggregate needs the spec's label_delay")
        for f in self.features:
            if f.window is not None and f.window > self.horizon:
                raise ValueError(f"{f.name}: window {f.window} is longer than the horizon")

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def groups(self, key: str) -> dict[str, tuple[Feature, ...]]:
        """Entity field → the stateless inputs its observations store, in a fixed order."""
        out: dict[str, dict[str, Feature]] = {}
        for f in self.features:
            inputs = out.setdefault(f.entity or key, {})
            for i in f.of:
                inputs.setdefault(i.name, i)
        return {k: tuple(v.values()) for k, v in out.items()}

    def available_us(self, event: Event) -> int:
        """When an event's label becomes known, in event-time microseconds."""
        t = micros(event[self.time_field])
        if self.label_delay is None:
            return t
        if isinstance(self.label_delay, timedelta):
            return t + self.label_delay // _US
        return t + math.floor(float(event[self.label_delay]) * 1_000_000)


# -- the stream: each entity's recent events, and the features of the next one --------------------


#: What :meth:`EntityState._derive` works out from the definitions (not pickled).
_DERIVED = ("_inputs", "_own", "_plans", "_horizon_us", "_lateness_us", "_foreign_lag_us")


@dataclass
class EntityState:
    """The entity memory of one learner: field → entity value → observations in ``(t, id)``
    order. It pickles with the model and the offsets, so a restore resumes it exactly (once
    :meth:`bind` has given it its definitions back)."""

    key: str
    entities: Entities
    memory: dict[str, dict[str, list[Observation]]] = field(default_factory=dict)
    #: The newest event time recorded (µs): what the memory's age is measured against.
    watermark: int = 0
    #: Events that arrived later than ``lateness`` (their features may differ from the lake's).
    too_late: int = 0

    def __post_init__(self) -> None:
        self._derive()
        for name in self._inputs:
            self.memory.setdefault(name, {})

    def _derive(self) -> None:
        ent = self.entities
        self._inputs = ent.groups(self.key)
        #: the inputs whose value in the event itself a feature compares with the history (an
        #: event to predict carries no label, and no feature needs its own)
        own = {i.name for f in ent.features if f.agg in OWN_RELATIVE for i in f.of}
        self._own = {
            name: tuple(i.name in own for i in inputs) for name, inputs in self._inputs.items()
        }
        #: each entity field's features, with their windows and inputs' places worked out once
        #: (they are read for every event)
        self._plans = {
            name: tuple(
                _Plan(
                    f.name,
                    f.agg,
                    None if f.window is None else _us(f.window),
                    f.label,
                    tuple(inputs.index(i) for i in f.of),
                    f.fill,
                )
                for f in ent.features
                if (f.entity or self.key) == name
            )
            for name, inputs in self._inputs.items()
        }
        self._horizon_us, self._lateness_us = _us(ent.horizon), _us(ent.lateness)
        self._foreign_lag_us = _us(ent.foreign_lag)

    def __getstate__(self) -> dict[str, Any]:
        """The memory without its definitions: they are code (a feature's Python function does
        not pickle) and belong to the spec that restores it, which :meth:`bind` attaches. What
        each stored observation's values are is kept, so a changed spec is noticed."""
        skip = {"entities", *_DERIVED}
        state = {k: v for k, v in self.__dict__.items() if k not in skip}
        state["layout"] = self._layout(self._inputs)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @staticmethod
    def _layout(inputs: Mapping[str, Sequence[Feature]]) -> dict[str, tuple[str, ...]]:
        return {name: tuple(i.name for i in group) for name, group in inputs.items()}

    def bind(self, entities: Entities) -> bool:
        """Attach the definitions to an unpickled memory; ``False`` when the memory was recorded
        for other inputs (a changed spec): it is then emptied, as its observations would be read
        as the wrong values."""
        self.entities = entities
        self._derive()
        layout = self.__dict__.pop("layout", None)
        if layout is None or layout == self._layout(self._inputs):
            return True
        self.memory = {name: {} for name in self._inputs}
        self.watermark = self.too_late = 0
        return False

    def features(self, event: Event) -> dict[str, float]:
        """The entity features of ``event`` from what this state has recorded (not ``event``)."""
        ent = self.entities
        t, event_id = micros(event[ent.time_field]), str(event[ent.id_field])
        out: dict[str, float] = {}
        for name, inputs in self._inputs.items():
            owner = event.get(name)
            needed = self._own[name]
            own = tuple(i.python(event) if n else None for i, n in zip(inputs, needed, strict=True))
            out.update(self._group(name, None if owner is None else str(owner), t, event_id, own))
        return out

    def next_features(
        self, name: str, value: str, t: int, own: Sequence[FeatureValue | None]
    ) -> dict[str, float]:
        """The features of entity ``name=value`` that an event at ``t`` (µs, after every event
        of that time) whose inputs are ``own`` (``entities.groups(key)[name]``'s order) gets: what
        a lookup shows of an entity without a raw event."""
        return self._group(name, value, t, "\U0010ffff", tuple(own))

    def _group(
        self,
        name: str,
        owner: str | None,
        t: int,
        event_id: str,
        own: tuple[FeatureValue | None, ...],
    ) -> dict[str, float]:
        seen = self.memory[name].get(owner, []) if owner is not None else []
        # Observations are (t, id, ...) tuples in that order: a shorter tuple sorts before every
        # observation it prefixes, so these bisections need no key function.
        until = (t - self._foreign_lag_us, "\U0010ffff") if name != self.key else (t, event_id)
        end = bisect.bisect_left(seen, until)
        start = max(0, end - self.entities.history)
        start = bisect.bisect_left(seen, (t - self._horizon_us,), start, end)
        prior = seen[start:end]
        # the rows of each (window, label) condition, shared by the features that read them
        selected: dict[tuple[int | None, bool], list[Observation]] = {(None, False): prior}
        out = {}
        for plan in self._plans[name]:
            rows = selected.get((plan.window_us, plan.label))
            if rows is None:
                rows = prior
                if plan.window_us is not None:
                    rows = rows[bisect.bisect_left(rows, (t - plan.window_us,)) :]
                if plan.label:
                    rows = [o for o in rows if o[2] <= t]
                selected[(plan.window_us, plan.label)] = rows
            out[plan.name] = _aggregate(plan, rows, own, t)
        return out

    def record(self, event: Event, fields: Collection[str] | None = None) -> None:
        """Remember ``event`` for the features of later events (after it was learned); only in
        the memories of ``fields`` when given (a shard that does not own the event's partition
        keeps it for the entities that span partitions only)."""
        ent = self.entities
        t = micros(event[ent.time_field])
        if t < self.watermark - self._lateness_us:
            self.too_late += 1
        self.watermark = max(self.watermark, t)
        available = ent.available_us(event)
        event_id = str(event[ent.id_field])
        for name, inputs in self._inputs.items():
            owner = event.get(name)
            if owner is None or (fields is not None and name not in fields):
                continue
            seen = self.memory[name].setdefault(str(owner), [])
            obs: Observation = (t, event_id, available, tuple(i.python(event) for i in inputs))
            if not seen or (seen[-1][0], seen[-1][1]) < (t, event_id):
                seen.append(obs)  # in order: the common case
            else:
                bisect.insort(seen, obs, key=lambda o: (o[0], o[1]))
            if len(seen) <= ent.history:
                continue
            # Keep what a later event may still read: everything within `lateness` (plus, for a
            # foreign entity, `foreign_lag`) of the entity's newest event, and the newest
            # `history` events before that.
            lag = self._lateness_us + (0 if name == self.key else self._foreign_lag_us)
            settled = bisect.bisect_right(seen, seen[-1][0] - lag, key=lambda o: o[0])
            if settled > ent.history:
                del seen[: settled - ent.history]

    def forget(self) -> int:
        """Drop entities idle for longer than the horizon plus lateness; how many were dropped."""
        ent = self.entities
        oldest = self.watermark - _us(ent.horizon) - _us(ent.lateness)
        dropped = 0
        for by_value in self.memory.values():
            for value in [v for v, seen in by_value.items() if seen[-1][0] < oldest]:
                del by_value[value]
                dropped += 1
        return dropped

    def entity(self, name: str, value: str) -> list[Observation]:
        """What this state holds of one entity (the online store's record)."""
        return list(self.memory.get(name, {}).get(value, []))

    def size(self) -> dict[str, int]:
        """Entities and observations held, per entity field."""
        return {name: len(by_value) for name, by_value in self.memory.items()} | {
            f"{name}_events": sum(map(len, v.values())) for name, v in self.memory.items()
        }


def _us(delta: timedelta) -> int:
    return delta // _US


@dataclass(frozen=True)
class _Plan:
    """An entity feature as :meth:`EntityState._group` reads it."""

    name: str
    agg: Aggregation
    window_us: int | None
    label: bool
    #: the places of the feature's inputs in its entity's observations
    places: tuple[int, ...]
    fill: float


def _aggregate(
    plan: _Plan, rows: Sequence[Observation], own: tuple[FeatureValue | None, ...], t: int
) -> float:
    if plan.agg == "count":
        return float(len(rows))
    if not rows:
        return plan.fill
    if plan.agg == "since_last":
        return (t - rows[-1][0]) / 1_000_000
    if plan.agg == "distance":
        lat, lon = plan.places
        mlat = _mean([float(o[3][lat]) for o in rows])
        mlon = _mean([float(o[3][lon]) for o in rows])
        return haversine_km(float(own[lat] or 0.0), float(own[lon] or 0.0), mlat, mlon)
    (i,) = plan.places
    value = _AGGREGATES[plan.agg]([o[3][i] for o in rows], own[i])
    return plan.fill if value is None else value


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _std(values: Sequence[float]) -> float | None:
    if len(values) < 2:
        return None
    m = _mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (len(values) - 1))


def _ratio(values: Sequence[float], own: float) -> float | None:
    m = _mean(values)
    return own / m if m else None


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(math.sqrt(a))


_AGGREGATES: dict[str, Callable[[list[Any], Any], float | None]] = {
    "sum": lambda v, _: math.fsum(map(float, v)),
    "mean": lambda v, _: _mean(list(map(float, v))),
    "std": lambda v, _: _std(list(map(float, v))),
    "min": lambda v, _: float(min(map(float, v))),
    "max": lambda v, _: float(max(map(float, v))),
    "last": lambda v, _: float(v[-1]),
    "seen": lambda v, own: float(own in v),
    "share_same": lambda v, own: sum(1 for x in v if x == own) / len(v),
    "distinct": lambda v, _: float(len(set(v))),
    "ratio_to_mean": lambda v, own: _ratio(list(map(float, v)), float(own)),
    "diff_to_mean": lambda v, own: float(own) - _mean(list(map(float, v))),
}


# -- the lake: the same earlier events, selected by SQL ------------------------------------------


def _sql_aggregate(f: EntityFeature, inputs: Sequence[Feature]) -> str:
    """One aggregate over the pairs (``e_*`` the event, ``p_*`` an earlier one) of its entity."""
    conditions = ["p_t IS NOT NULL"]
    if f.window is not None:
        conditions.append(f"p_t >= e_t - {_us(f.window)}")
    if f.label:
        conditions.append("p_avail <= e_t")
    where = " AND ".join(conditions)
    col = {i.name: f"v{n}" for n, i in enumerate(inputs)}
    fill = repr(float(f.fill))

    def agg(expr: str) -> str:
        return f"{expr} FILTER (WHERE {where})"

    if f.agg == "count":
        return f"CAST({agg('count(p_t)')} AS DOUBLE)"
    if f.agg == "since_last":
        return f"coalesce((e_t - {agg('max(p_t)')}) / 1000000.0, {fill})"
    if f.agg == "distance":
        lat, lon = (col[i.name] for i in f.of)
        mean_lat, mean_lon = agg(f"favg(p_{lat})"), agg(f"favg(p_{lon})")
        return f"coalesce({_haversine_sql(f'e_{lat}', f'e_{lon}', mean_lat, mean_lon)}, {fill})"
    p, e = f"p_{col[f.of[0].name]}", f"e_{col[f.of[0].name]}"
    if f.agg == "std":  # fewer than two values have no spread: the fill, in both paths
        return f"CASE WHEN {agg('count(p_t)')} < 2 THEN {fill} ELSE {agg(f'stddev_samp({p})')} END"
    expr = {
        "sum": agg(f"fsum({p})"),
        "mean": agg(f"favg({p})"),
        "min": agg(f"min({p})"),
        "max": agg(f"max({p})"),
        "last": agg(f"arg_max({p}, p_rank_key)"),
        "seen": agg(f"bool_or({p} = {e})"),
        "share_same": agg(f"avg(CASE WHEN {p} = {e} THEN 1.0 ELSE 0.0 END)"),
        "distinct": agg(f"count(DISTINCT {p})"),
        "ratio_to_mean": f"{e} / nullif({agg(f'favg({p})')}, 0)",
        "diff_to_mean": f"{e} - {agg(f'favg({p})')}",
    }[f.agg]
    if f.agg == "distinct":
        expr = f"nullif({expr}, 0)"
    return f"coalesce(CAST({expr} AS DOUBLE), {fill})"


def _haversine_sql(lat1: str, lon1: str, lat2: str, lon2: str) -> str:
    dp, dl = f"radians({lat2} - {lat1})", f"radians({lon2} - {lon1})"
    cosines = f"cos(radians({lat1})) * cos(radians({lat2}))"
    a = f"pow(sin({dp} / 2), 2) + {cosines} * pow(sin({dl} / 2), 2)"
    return f"2 * {EARTH_KM} * asin(sqrt({a}))"


def _label_available_sql(ent: Entities, t: str) -> str:
    if ent.label_delay is None:
        return t
    if isinstance(ent.label_delay, timedelta):
        return f"{t} + {_us(ent.label_delay)}"
    return f"{t} + CAST(floor(CAST({ent.label_delay} AS DOUBLE) * 1000000) AS BIGINT)"


def _group_sql(
    spec: UseCase, ent: Entities, name: str, inputs: Sequence[Feature], table: str
) -> str:
    """A SELECT of ``_id`` and the entity features keyed by ``name``, one row per event: each
    event joined to the earlier events of its entity (the module's rules), then aggregated."""
    t = f"epoch_us({ent.time_field})"
    n = range(len(inputs))
    values = "".join(f", {i.sql} AS v{k}" for k, i in zip(n, inputs, strict=True))
    if name == spec.key:  # known: earlier in the same partition
        known = "p.kafka_partition = e.kafka_partition AND p.kafka_offset < e.kafka_offset"
    else:
        known = f"p._t <= e._t - {_us(ent.foreign_lag)}"
    e_values = "".join(f", v{k} AS e_v{k}" for k in n)
    p_values = "".join(f", p.v{k} AS p_v{k}" for k in n)
    aggregates = ", ".join(
        f"{_sql_aggregate(f, inputs)} AS {f.name}"
        for f in ent.features
        if (f.entity or spec.key) == name
    )
    return f"""
    WITH ev AS (
        SELECT CAST({ent.id_field} AS VARCHAR) AS _id, CAST({name} AS VARCHAR) AS _k, {t} AS _t,
               {_label_available_sql(ent, t)} AS _avail, kafka_partition, kafka_offset{values}
        FROM {table}
    ), pairs AS (
        SELECT e._id AS pair_of, p._t AS p_t, p._avail AS p_avail,
               struct_pack(t := p._t, id := p._id) AS p_rank_key{p_values}
        FROM ev e JOIN ev p
          ON p._k = e._k AND (p._t < e._t OR (p._t = e._t AND p._id < e._id))
         AND p._t >= e._t - {_us(ent.horizon)} AND {known}
        QUALIFY row_number() OVER (PARTITION BY e._id ORDER BY p._t DESC, p._id DESC)
                <= {ent.history}
    ), events AS (SELECT _id, _t AS e_t{e_values} FROM ev)
    SELECT _id, {aggregates}
    FROM events LEFT JOIN pairs ON pairs.pair_of = events._id
    GROUP BY _id, e_t{"".join(f", e_v{k}" for k in n)}
    """


def features_sql(
    spec: UseCase, table: str, extra_columns: Sequence[str] = (), where: str = ""
) -> str:
    """A SELECT of every feature of ``spec`` (stateless and entity) as columns of ``table``,
    point-in-time correct, plus ``extra_columns``, for the rows that match ``where`` (a condition
    on ``table``'s columns; their entity features still read every earlier row): the batch
    path's one query."""
    condition = f" WHERE {where}" if where else ""
    ent = spec.entities
    if ent is None or not ent.features:
        return feature_sql(spec.features, table, extra_columns) + condition
    stateless = [*extra_columns, *(f"{f.sql} AS {f.name}" for f in spec.features)]
    joins, columns = [], []
    for g, (name, inputs) in enumerate(ent.groups(spec.key).items()):
        group = _group_sql(spec, ent, name, inputs, table)
        joins.append(f"LEFT JOIN ({group}) g{g} ON g{g}._id = b._rtml_id")
        columns += [f"g{g}.{f.name}" for f in ent.features if (f.entity or spec.key) == name]
    rows = f"SELECT CAST({ent.id_field} AS VARCHAR) AS _rtml_id, {', '.join(stateless)}"
    base = f"{rows} FROM {table}{condition}"
    select = ", ".join(["b.* EXCLUDE (_rtml_id)", *columns])
    return f"SELECT {select} FROM ({base}) b {' '.join(joins)}"


def replay(spec: UseCase, events: Iterable[Mapping[str, Any]]) -> list[dict[str, float]]:
    """The entity features of ``events`` (validated, as dicts) in the order given, each recorded
    after it is read: what a learner that reads them in that order computes."""
    if spec.entities is None:
        return [{} for _ in events]
    state = EntityState(spec.key, spec.entities)
    out = []
    for event in events:
        out.append(state.features(event))
        state.record(event)
    return out
