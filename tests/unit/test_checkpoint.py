from __future__ import annotations

import pytest

from rtml.checkpoint import Checkpoint, CheckpointRefused, dumps, loads


def _checkpoint() -> Checkpoint:
    return Checkpoint(model={"w": 1.0}, metrics=None, offsets={0: 12, 2: 7}, learned=19, versions={})


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
