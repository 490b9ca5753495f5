"""The serving pieces that need no services: request parsing, cache keys, batching, combining
shards, and the Serve config's shape."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ray.serve.schema import ServeDeploySchema

from ray_apps.serving import deploy
from ray_apps.serving.cache import cache_key
from ray_apps.serving.entities import EntityReader, version_of
from ray_apps.serving.incremental import Incremental
from ray_apps.serving.requests import BadRequest, parse_events, predict_model
from ray_apps.serving.routes import _labels
from ray_apps.serving.service import _grouped
from rtml.entity_store import EntityStore
from rtml.settings import load_settings
from rtml.usecases import USECASES, get
from rtml.usecases.generators import generator_for


def _event(usecase: str, seed: int = 0) -> dict[str, Any]:
    return dict(next(generator_for(usecase, seed=seed)).event)


@pytest.mark.parametrize("usecase", list(USECASES))
def test_a_predict_request_needs_no_label_and_a_learn_request_does(usecase: str) -> None:
    spec = get(usecase)
    event = _event(usecase)
    if spec.target:
        del event[spec.target]
    one = parse_events(event, predict_model(usecase), 10)
    assert not one.many and spec.features_of(one.events[0])
    if spec.target:
        with pytest.raises(BadRequest) as refused:
            parse_events(event, spec.event, 10)
        assert refused.value.status == 422 and refused.value.detail[0]["field"] == spec.target


def test_every_bad_field_of_every_event_is_reported_with_its_index() -> None:
    good, bad = _event("tfd", 1), {**_event("tfd", 2), "amount": -1, "currency": "XXX"}
    with pytest.raises(BadRequest) as refused:
        parse_events([good, bad, 7], predict_model("tfd"), 10)
    detail = refused.value.detail
    assert refused.value.status == 422
    assert {(e["index"], e["field"]) for e in detail} == {
        (1, "amount"),
        (1, "currency"),
        (2, "event"),
    }


@pytest.mark.parametrize(("body", "status"), [([], 422), ([{}] * 11, 413)])
def test_empty_and_oversized_lists(body: Any, status: int) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_events(body, predict_model("tfd"), 10)
    assert refused.value.status == status


def test_cache_key_is_canonical_and_versioned() -> None:
    a = {"amount": 1.5, "currency": "EUR"}
    b = {"currency": "EUR", "amount": 1.5}
    assert cache_key("tfd", 3, a) == cache_key("tfd", 3, b)
    assert cache_key("tfd", 3, a) != cache_key("tfd", 4, a)
    assert cache_key("tfd", 3, a) != cache_key("tfd", 3, {**a, "amount": 1.5000001})


class Memories:
    """Redis as the entity store uses it, in memory: the learner's side writes (sync pipeline),
    the replica's reads (async); ``reads`` counts the replica's round trips."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.reads = 0

    def pipeline(self, transaction: bool = False) -> Memories:
        return self

    def set(self, key: str, value: bytes, ex: int | None = None) -> None:
        self.data[key] = value

    def execute(self) -> None:
        return None

    async def get(self, key: str) -> bytes | None:
        self.reads += 1
        return self.data.get(key)

    async def mget(self, keys: list[str]) -> list[bytes | None]:
        self.reads += 1
        return [self.data.get(k) for k in keys]


def learned(usecase: str, memories: Memories, n: int = 300, seed: int = 2) -> list[Any]:
    """``n`` generated events recorded as a learner records them, their entities written to
    ``memories`` as the learner writes them; the events (parsed)."""
    spec = get(usecase)
    state = spec.entity_state()
    assert state is not None
    gen = generator_for(usecase, seed=seed)
    events, touched = [], set()
    for _ in range(n):
        event = spec.parse(next(gen).event)
        record = event.model_dump()
        state.record(record)
        touched |= {(f, str(record[f])) for f in state.memory if record.get(f) is not None}
        events.append(event)
    EntityStore(memories, spec).write(state, sorted(touched))  # type: ignore[arg-type]
    return events


@pytest.mark.parametrize("usecase", [n for n, s in USECASES.items() if s.entities is not None])
def test_a_request_reads_its_entities_once_and_computes_the_learners_features(
    usecase: str,
) -> None:
    spec = get(usecase)
    memories = Memories()
    seen = learned(usecase, memories)
    reader = EntityReader(memories, spec)  # type: ignore[arg-type]
    later = generator_for(usecase, seed=2)
    for _ in range(len(seen)):
        next(later)
    # events of entities the store holds (the next ones of the same world), and an unknown one
    asked = [spec.parse(next(later).event) for _ in range(20)]
    asked.append(spec.parse({**asked[0].model_dump(), spec.key: "never-seen-entity"}))
    done = asyncio.run(reader.featured(asked))
    assert memories.reads == 1  # one MGET for the whole list
    store: Any = EntityStore(_Sync(memories), spec)  # type: ignore[arg-type]
    for event, got in zip(asked, done, strict=True):
        state, records = store.state_for(event.model_dump())
        assert got.features == spec.features_of(event, state)
        assert [r.field for r in got.records] == [r.field for r in records]
    assert any(f.records for f in done), "no asked event has an entity in the store"
    assert not any(r.field == spec.key for r in done[-1].records)
    known = [f for f in done[:-1] if any(r.field == spec.key for r in f.records)]
    assert any(f.features != done[-1].features for f in known)


class _Sync:
    """The same memories read synchronously (``EntityStore.state_for``'s way)."""

    def __init__(self, memories: Memories) -> None:
        self.memories = memories

    def mget(self, keys: list[str]) -> list[bytes | None]:
        return [self.memories.data.get(k) for k in keys]

    def get(self, key: str) -> bytes | None:
        return self.memories.data.get(key)


def test_cache_key_changes_with_the_entity_memory_it_was_read_from() -> None:
    spec = get("tfd")
    memories = Memories()
    events = learned("tfd", memories, n=50)
    store: Any = EntityStore(_Sync(memories), spec)  # type: ignore[arg-type]
    _, records = store.state_for(events[-1].model_dump())
    assert records
    x = spec.features_of(events[-1])
    before = cache_key("tfd", 1, x, version_of(records))
    assert before != cache_key("tfd", 1, x)
    rewritten = [type(r)(**{**r.__dict__, "written_at": r.written_at + 1}) for r in records]
    assert cache_key("tfd", 1, x, version_of(rewritten)) != before


def test_grouped_batches_answer_each_request_with_its_own_slice() -> None:
    calls: list[tuple[Any, list[int]]] = []

    async def call(key: tuple[Any, ...], rows: list[int]) -> dict[str, Any]:
        calls.append((key, rows))
        if key == ("bad",):
            raise LookupError("no model")
        return {
            "predictions": [r * 10 for r in rows],
            "cached": [False] * len(rows),
            "model_version": 1,
        }

    items = [("a", [1, 2]), ("bad", [5]), ("a", [3])]
    out = asyncio.run(_grouped(items, call))
    assert sorted(calls) == [(("a",), [1, 2, 3]), (("bad",), [5])]  # one call per key
    assert out[0] == {"predictions": [10, 20], "cached": [False, False], "model_version": 1}
    assert out[2] == {"predictions": [30], "cached": [False], "model_version": 1}
    assert isinstance(out[1], LookupError)


def test_shards_average_forests_and_clustering_asks_one_shard() -> None:
    settings = load_settings(learner_shards=2)
    tfd = Incremental(get("tfd"), settings, store=None)  # type: ignore[arg-type]
    assert tfd.asked_shards() == [0, 1]
    combined = tfd._combine([0.1, 0.3])
    assert (
        combined["probability"] == pytest.approx(0.2) and combined["is_fraud"] is True
    )  # threshold 0.1
    eta = Incremental(get("eta"), settings, store=None)  # type: ignore[arg-type]
    assert eta._combine([100.0, 300.0]) == {"travel_seconds": 200.0}
    ecci = Incremental(get("ecci"), settings, store=None)  # type: ignore[arg-type]
    assert ecci.asked_shards() == [0] and ecci._combine([4]) == {"cluster": 4}


def test_the_serve_config_is_valid_and_the_local_stack_fills_it_in() -> None:
    config = deploy.load_config()
    ServeDeploySchema.model_validate(config)  # what `serve deploy` and the RayService accept
    (app,) = config["applications"]
    assert app["import_path"] == "ray_apps.serve_app:build" and app["route_prefix"] == "/"
    (ingress,) = app["deployments"]
    assert ingress["name"] == "Api" and ingress["max_ongoing_requests"] > 5
    assert "max_queued_requests" in ingress and "autoscaling_config" in ingress

    settings = load_settings(serve_port=18123)
    local = deploy.local_config(settings, {"api_token": "t"})
    ServeDeploySchema.model_validate(local)
    assert local["http_options"]["host"] == "127.0.0.1" and local["http_options"]["port"] == 18123
    assert local["applications"][0]["args"]["settings"]["redis_url"] == settings.redis
    assert load_settings(**local["applications"][0]["args"]["settings"]).api_token is not None


def test_metric_labels_of_a_path() -> None:
    assert _labels("/api/v1/tfd/batch/predict") == ("tfd", "batch")
    assert _labels("/api/v1/eta/incremental/learn") == ("eta", "incremental")
    assert _labels("/api/v1/nope/batch/predict") == ("", "")
    assert _labels("/api/v1/sql") == ("", "")


def test_an_empty_api_token_means_no_token() -> None:
    assert load_settings(api_token="").api_token is None
    assert load_settings(api_token="s3cret").api_token.get_secret_value() == "s3cret"  # type: ignore[union-attr]
