from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from rtml.checkpoint import Checkpoint, CheckpointRefused, RedisCheckpoints, dumps, loads


def _checkpoint() -> Checkpoint:
    return Checkpoint(
        model={"w": 1.0}, metrics=None, offsets={0: 12, 2: 7}, learned=19, versions={}
    )


def test_round_trip_keeps_next_offsets() -> None:
    restored = loads(dumps(_checkpoint(), b"k" * 16), b"k" * 16)
    assert restored.offsets == {0: 12, 2: 7} and restored.learned == 19


@pytest.mark.parametrize("where", [0, 40, -1])
def test_any_altered_byte_is_refused(where: int) -> None:
    blob = bytearray(dumps(_checkpoint(), b"k" * 16))
    blob[where] ^= 0x01
    with pytest.raises(CheckpointRefused):
        loads(bytes(blob), b"k" * 16)


def test_another_key_is_refused() -> None:
    with pytest.raises(CheckpointRefused):
        loads(dumps(_checkpoint(), b"k" * 16), b"x" * 16)


@pytest.mark.parametrize("usecase", ["tfd", "eta", "ecci"])
def test_a_restored_model_predicts_and_learns_exactly_as_the_original(usecase: str) -> None:
    """The checkpoint pickler leaves River's distributions' unused generators out: what the model
    does after a restore must not change."""
    import pickle

    from rtml.online import build_model, predict_then_learn
    from rtml.usecases import get
    from rtml.usecases.generators import generator_for

    spec, gen = get(usecase), generator_for(usecase, seed=5)

    def rows(n: int) -> list:
        events = [spec.parse(next(gen).event) for _ in range(n)]
        return [(spec.features_of(e), spec.label_of(e) if spec.target else None) for e in events]

    model = build_model(spec)
    for x, y in rows(1500):
        predict_then_learn(spec, model, x, y)
    blob = dumps(
        Checkpoint(model=model, metrics=None, offsets={}, learned=1500, versions={}), b"k" * 16
    )
    restored = loads(blob, b"k" * 16).model
    later = rows(500)
    # Equal to the last bits: a set rebuilt by unpickling may iterate in another order under
    # another hash seed, which reorders a few float sums (plain pickle does the same).
    assert [predict_then_learn(spec, restored, x, y) for x, y in later] == pytest.approx(
        [predict_then_learn(spec, model, x, y) for x, y in later], rel=1e-12
    )
    if usecase == "tfd":  # a forest of Hoeffding trees: one generator per leaf statistic left out
        task = dataclasses.replace(spec.task, online="forest")
        forest = task.online_model(spec, {"n_models": 10, "seed": 42})
        for x, y in rows(1500):
            task.predict_then_learn(forest, x, y)
        blob = dumps(
            Checkpoint(model=forest, metrics=None, offsets={}, learned=1500, versions={}), b"k" * 16
        )
        assert len(blob) < len(pickle.dumps(forest, protocol=pickle.HIGHEST_PROTOCOL)) / 3


class FakeRedis:
    """The few Redis calls of ``RedisCheckpoints``, in memory (values as Redis returns them)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.published: list[tuple[str, str]] = []

    @staticmethod
    def _bytes(value: Any) -> bytes:
        return value if isinstance(value, bytes) else str(value).encode()

    def incr(self, name: str) -> int:
        self.data[name] = int(self.data.get(name, 0)) + 1
        return self.data[name]

    def get(self, name: str) -> bytes | None:
        return None if name not in self.data else self._bytes(self.data[name])

    def set(self, name: str, value: Any) -> None:
        self.data[name] = value

    def hset(self, name: str, mapping: dict[str, Any]) -> None:
        fields = self.data.setdefault(name, {})
        fields.update({k.encode(): self._bytes(v) for k, v in mapping.items()})

    def hget(self, name: str, key: str) -> bytes | None:
        return self.data.get(name, {}).get(key.encode())

    def hmget(self, name: str, *keys: str) -> list[bytes | None]:
        return [self.hget(name, k) for k in keys]

    def hgetall(self, name: str) -> dict[bytes, bytes]:
        return dict(self.data.get(name, {}))

    def publish(self, channel: str, message: str) -> None:
        self.published.append((channel, message))


#: A learner that started fresh 22 minutes ago and has checkpointed every few seconds since.
STARTED_AGO_S = 22 * 60


def _stored(client: FakeRedis) -> RedisCheckpoints:
    store = RedisCheckpoints(client, b"k" * 16)  # type: ignore[arg-type]
    old = _checkpoint()
    old.created = time.time() - STARTED_AGO_S
    for _ in range(3):
        version, _blob = store.save("eta", 0, old)
        store.announce("eta", 0, version)
    return store


def test_a_checkpoint_s_age_is_its_latest_save_not_its_learner_s() -> None:
    client = FakeRedis()
    store = _stored(client)
    info = store.info("eta", 0)
    assert info is not None and info["version"] == 3
    assert info["age_s"] < 60, f"{info['age_s']:.0f}s: the learner's age, not the save's"
    assert abs(info["saved_at"] - time.time()) < 60
    loaded = store.load("eta", 0)
    assert loaded is not None and loaded[1].saved_at == info["saved_at"]  # the blob carries it
    assert client.published[-1] == ("rtml:checkpoints:eta", "0:3")


def test_the_serving_side_reports_the_age_of_the_latest_save() -> None:
    from ray_apps.serving.incremental import Incremental
    from rtml.settings import load_settings
    from rtml.usecases import get

    store = _stored(FakeRedis())
    side = Incremental(get("eta"), load_settings(learner_shards=1), store)
    side.on_announcement(0)
    age = side.checkpoint_age([0])  # every prediction's checkpoint_age_s, and /model's ages
    assert age is not None and age < 60, f"{age:.0f}s: the learner's age, not the save's"
    assert side._refresh(0) and side.fallback[0].version == 3
    assert time.time() - (side.fallback[0].saved_at or 0) < 60


@pytest.mark.parametrize("usecase", ["tfd", "eta", "ecci"])
def test_a_restored_entity_memory_reads_and_records_exactly_as_the_original(usecase: str) -> None:
    """The entity memory rolls back with the offsets: after a restore the next events read the
    same features, and recording them leaves the same memory."""
    from rtml.usecases import get
    from rtml.usecases.generators import generator_for

    spec, gen = get(usecase), generator_for(usecase, seed=9)
    events = [spec.parse(next(gen).event).model_dump() for _ in range(1500)]
    state = spec.entity_state()
    assert state is not None
    for e in events[:1000]:
        state.record(e)
    checkpoint = Checkpoint(
        model=None, metrics=None, offsets={0: 1000}, learned=1000, versions={}, entities=state
    )
    restored = loads(dumps(checkpoint, b"k" * 16), b"k" * 16).entities
    assert restored.bind(spec.entities)
    assert restored.memory == state.memory and restored.watermark == state.watermark
    for e in events[1000:]:
        assert restored.features(e) == state.features(e)
        state.record(e)
        restored.record(e)
    assert restored.memory == state.memory and restored.too_late == state.too_late


def test_a_checkpoint_stored_before_entity_features_loads_without_them() -> None:
    """An older rtml pickled a checkpoint without the entity fields: it loads, and they read as
    absent (the learner then starts an empty memory)."""
    import pickle

    old = _checkpoint()
    del old.__dict__["entities"], old.__dict__["foreign_offsets"]
    payload = pickle.dumps(old, protocol=pickle.HIGHEST_PROTOCOL)
    from rtml.checkpoint import sign

    restored = loads(sign(payload, b"k" * 16), b"k" * 16)
    assert restored.entities is None and restored.foreign_offsets is None
    assert restored.offsets == {0: 12, 2: 7}


def test_an_entity_memory_recorded_for_other_inputs_is_not_resumed() -> None:
    """A spec whose entity features read other values than the stored observations hold: the
    memory starts empty rather than read them as the wrong values."""
    import dataclasses
    import pickle

    from rtml.usecases import get
    from rtml.usecases.generators import generator_for

    spec, gen = get("eta"), generator_for("eta", seed=3)
    state = spec.entity_state()
    assert state is not None and spec.entities is not None
    for _ in range(50):
        state.record(spec.parse(next(gen).event).model_dump())
    same = pickle.loads(pickle.dumps(state))
    assert same.bind(spec.entities) and same.memory == state.memory
    fewer = dataclasses.replace(
        spec.entities, features=tuple(f for f in spec.entities.features if f.agg == "count")
    )
    other = pickle.loads(pickle.dumps(state))
    assert not other.bind(fewer)
    assert other.memory == {spec.key: {}} and other.watermark == 0
