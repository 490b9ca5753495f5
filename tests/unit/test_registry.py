"""The registry's pure parts: one feature frame for every path, the time split, the gate's
comparison, and the KMeans explanations — no MLflow, no Ray.

The frame built from ``spec.features_of(event)`` (online, serving) and the one built from rows of
the batch feature SQL over a bronze-shaped table (training, batch scoring) must be identical: same
columns, order, dtypes and values. That is what keeps a served batch model honest.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from rtml.batch import frames, training
from rtml.batch.model import BatchModel
from rtml.entity import features_sql
from rtml.store import gate
from rtml.usecases import USECASES, UseCase
from rtml.usecases.generators import generator_for
from streaming.sample_lake import bronze_table

N = 300


@pytest.fixture(params=list(USECASES.values()), ids=list(USECASES))
def spec(request: pytest.FixtureRequest) -> UseCase:
    return request.param


def _records(spec: UseCase, n: int = N, seed: int = 7) -> list:
    gen = generator_for(spec.name, seed=seed)
    return [next(gen) for _ in range(n)]


def test_online_and_batch_rows_make_the_same_frame(spec: UseCase) -> None:
    records = _records(spec)
    rows = list(spec.features_in_order(spec.parse(r.event) for r in records))
    online = frames.feature_frame(spec, rows)
    con = duckdb.connect()
    con.register("bronze", bronze_table(spec.name, records))
    sql = features_sql(spec, "bronze", ["kafka_offset"])
    batch_rows = con.sql(f"{sql} ORDER BY kafka_offset").to_arrow_table()
    from_sql_dicts = frames.feature_frame(spec, batch_rows.to_pylist())
    from_sql_frame = frames.feature_frame(spec, batch_rows.to_pandas())

    assert list(online.columns) == spec.feature_names  # the spec's order, extras dropped
    for feature in spec.features:
        dtype = online[feature.name].dtype
        if feature.kind == "numeric":
            assert dtype == np.float64, feature.name
        else:  # strings for CatBoost's categorical features: never invented codes
            assert pd.api.types.is_string_dtype(dtype), (feature.name, dtype)
            assert set(online[feature.name]) <= {str(r.event[feature.name]) for r in records}
    pd.testing.assert_frame_equal(online, from_sql_dicts, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(online, from_sql_frame, check_exact=False, rtol=1e-12)


def test_a_missing_feature_is_named(spec: UseCase) -> None:
    row = spec.features_of(spec.parse(_records(spec, 1)[0].event))
    gone = spec.feature_names[-1]
    del row[gone]
    with pytest.raises(ValueError, match=gone):
        frames.feature_frame(spec, [row])
    categorical = spec.categorical_names[0]
    with pytest.raises(ValueError, match=categorical):
        frames.feature_frame(
            spec, [{**spec.features_of(spec.parse(_records(spec, 1)[0].event)), categorical: None}]
        )


def test_time_split_trains_on_the_past_and_holds_out_the_newest() -> None:
    times = pd.date_range("2026-01-01", periods=100, freq="min", tz="UTC")
    frame = pd.DataFrame({training.TIME: times[::-1], "x": range(100)})  # newest first on purpose
    split = training.time_split(frame)
    assert split.sizes() == {"train": 70, "valid": 15, "holdout": 15}
    assert split.train[training.TIME].max() < split.valid[training.TIME].min()
    assert split.valid[training.TIME].max() < split.holdout[training.TIME].min()
    with pytest.raises(ValueError):
        training.time_split(frame.head(3))


def test_the_gate_wants_strictly_better_in_the_metrics_direction() -> None:
    fraud, eta = USECASES["tfd"], USECASES["eta"]
    assert gate.beats(fraud, 0.5, 0.4) and not gate.beats(fraud, 0.4, 0.5)
    assert gate.beats(eta, 100.0, 120.0) and not gate.beats(eta, 120.0, 100.0)
    assert not gate.beats(eta, 100.0, 100.0)  # a tie keeps the champion
    assert not gate.beats(fraud, float("nan"), 0.1)


def test_kmeans_explanations_add_up_to_the_distance_to_the_centre() -> None:
    spec = USECASES["ecci"]
    records = _records(spec, 400)
    rows = [spec.features_of(spec.parse(r.event)) for r in records]
    frame = frames.feature_frame(spec, rows)
    model = spec.task.pipeline(spec, 4, "standard").fit(frame)
    batch = BatchModel("ecci", 1, {}, model)
    row = rows[0]
    contributions = batch.explain(row)
    assert list(contributions) == spec.feature_names
    x = model[:-1].transform(frames.feature_frame(spec, [row]))[0]
    centre = model[-1].cluster_centers_[batch.predict([row])[0]]
    assert sum(contributions.values()) == pytest.approx(float(((x - centre) ** 2).sum()))
    assert all(v >= 0 for v in contributions.values())
    importance = batch.feature_importance()
    assert sum(importance.values()) == pytest.approx(1.0)
    assert set(batch.predict(rows)) <= set(range(4))


def test_the_signature_of_a_model_folder_changes_with_any_file(tmp_path) -> None:
    from rtml.store.registry import files_signature

    key = b"k" * 16
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}")
    (folder / "sub" / "model.cb").write_bytes(b"\x00\x01trees")
    signed = files_signature(folder, key)
    assert files_signature(folder, key) == signed
    assert files_signature(folder, b"other-key-here") != signed
    (folder / "registered_model_meta").write_text("name: x")  # MLflow adds it when downloading
    assert files_signature(folder, key) == signed
    (folder / "sub" / "model.cb").write_bytes(b"\x00\x01treez")
    assert files_signature(folder, key) != signed
    (folder / "sub" / "model.cb").write_bytes(b"\x00\x01trees")
    (folder / "sub" / "model.cb").rename(folder / "model.cb")  # same bytes, another name
    assert files_signature(folder, key) != signed
