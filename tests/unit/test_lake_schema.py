"""The lakehouse's pure parts: pydantic → Spark types, the validation verdicts, lake locations.

No JVM starts here: ``pyspark.sql.types`` is plain Python.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pytest
from pydantic import AwareDatetime, BaseModel, Field
from pyspark.sql import types as T

from rtml.lake import checkpoint_uri, lake_uri, storage_options, table_uri
from rtml.settings import load_settings
from rtml.usecases import USECASES
from rtml.usecases.generators import generator_for
from streaming.lakehouse.schema import event_time_field, spark_schema
from streaming.lakehouse.session import s3_conf, spark_conf, spark_packages, spark_uri
from streaming.lakehouse.validation import verdicts, verdicts_by_topic


class Inner(BaseModel):
    score: float


class Everything(BaseModel):
    when: AwareDatetime
    naive: dt.datetime
    day: dt.date
    flag: bool
    count: int
    ratio: float
    name: str
    colour: Literal["red", "green"]
    level: Literal[1, 2, 3]
    maybe: float | None = None
    maybe_too: int | None = None
    defaulted: str = "x"
    tags: list[str] = Field(default_factory=list)
    inner: Inner


def test_every_pydantic_field_gets_a_real_spark_type() -> None:
    schema = spark_schema(Everything)
    types = {f.name: (f.dataType, f.nullable) for f in schema.fields}
    assert types == {
        "when": (T.TimestampType(), False),
        "naive": (T.TimestampType(), False),
        "day": (T.DateType(), False),
        "flag": (T.BooleanType(), False),
        "count": (T.LongType(), False),
        "ratio": (T.DoubleType(), False),
        "name": (T.StringType(), False),
        "colour": (T.StringType(), False),
        "level": (T.LongType(), False),
        "maybe": (T.DoubleType(), True),
        "maybe_too": (T.LongType(), True),
        "defaulted": (T.StringType(), True),
        "tags": (T.ArrayType(T.StringType(), False), True),
        "inner": (T.StructType([T.StructField("score", T.DoubleType(), False)]), False),
    }
    assert [f.name for f in schema.fields] == list(Everything.model_fields)


def test_an_unmappable_field_is_a_clear_error() -> None:
    class Odd(BaseModel):
        blob: bytes

    with pytest.raises(TypeError, match="bytes"):
        spark_schema(Odd)


@pytest.mark.parametrize("spec", USECASES.values(), ids=lambda s: s.name)
def test_every_spec_maps_with_typed_time_and_no_strings_for_numbers(spec) -> None:
    schema = spark_schema(spec.event)
    assert event_time_field(schema) == "timestamp"
    by_name = {f.name: f.dataType for f in schema.fields}
    assert by_name["timestamp"] == T.TimestampType()
    for name, info in spec.event.model_fields.items():
        if info.annotation is float:
            assert by_name[name] == T.DoubleType(), name
        elif info.annotation is bool:
            assert by_name[name] == T.BooleanType(), name
        elif info.annotation is int:
            assert by_name[name] == T.LongType(), name


def test_verdicts_use_the_specs_own_validation() -> None:
    spec = USECASES["tfd"]
    event = next(generator_for("tfd", seed=3)).event
    raw = [
        json.dumps(event).encode(),
        b"{not json",
        json.dumps({**event, "amount": "abc"}).encode(),
        json.dumps({k: v for k, v in event.items() if k != "user_id"}).encode(),
        json.dumps({**event, "surprise": 1}).encode(),
        json.dumps({**event, "amount": "12.5"}).encode(),  # lax JSON, valid for pydantic
        None,
    ]
    out = verdicts("tfd", pa.array(raw, pa.binary())).to_pylist()
    reasons = [v["reason"] for v in out]
    assert reasons[0] is None and reasons[5] is None
    assert reasons[1].startswith("not JSON")
    assert reasons[2].startswith("amount: Input should be a valid number")
    assert reasons[3] == "user_id: Field required"
    assert "surprise: Extra inputs are not permitted" in reasons[4]
    assert reasons[6] == "empty message (no value)"
    canonical = json.loads(out[5]["event"])
    assert canonical["amount"] == 12.5, "a lax value lands typed, as pydantic read it"
    assert spec.parse(out[0]["event"]) == spec.parse(raw[0])


def test_verdicts_by_topic_judge_each_record_by_its_own_use_case() -> None:
    """The one lakehouse query validates every topic's records in one UDF call: each by the spec
    of its topic, so an event valid for one use case is rejected for another."""
    tfd = next(generator_for("tfd", seed=3)).event
    eta = next(generator_for("eta", seed=3)).event
    topics = {USECASES[name].topic: name for name in ("tfd", "eta")}
    values = [json.dumps(tfd).encode(), json.dumps(eta).encode(), json.dumps(tfd).encode(), None]
    order = [USECASES[n].topic for n in ("tfd", "eta", "eta", "tfd")]
    out = verdicts_by_topic(topics, pa.array(order), pa.array(values, pa.binary())).to_pylist()
    assert out[:2] == [
        verdicts("tfd", pa.array(values[:1], pa.binary())).to_pylist()[0],
        verdicts("eta", pa.array(values[1:2], pa.binary())).to_pylist()[0],
    ]
    assert out[2]["reason"] is not None and out[2]["event"] is None, "a tfd event is no eta event"
    assert out[3]["reason"] == "empty message (no value)"


def test_the_lake_is_a_local_folder_by_default(tmp_path) -> None:
    settings = load_settings(state_dir=tmp_path / "state")
    root = str((tmp_path / "state" / "lake").resolve())
    assert lake_uri(settings) == root
    assert table_uri(settings, "tfd") == f"{root}/bronze/tfd"
    assert table_uri(settings, "quarantine") == f"{root}/quarantine"
    assert checkpoint_uri(settings, "eta") == f"{root}/_checkpoints/eta"
    assert storage_options(settings) == {} and s3_conf(settings) == {}
    with pytest.raises(KeyError, match="unknown use case"):
        table_uri(settings, "nope")
    assert not any("hadoop-aws" in p for p in spark_packages(settings))


def test_spark_keeps_its_warehouse_in_the_state_folder(tmp_path) -> None:
    settings = load_settings(state_dir=tmp_path / "state")
    warehouse = Path(spark_conf(settings)["spark.sql.warehouse.dir"])
    assert warehouse.is_absolute() and warehouse.is_relative_to((tmp_path / "state").resolve())


def test_s3_storage_when_a_bucket_is_set(monkeypatch) -> None:
    monkeypatch.setenv("RTML_LAKE_S3_BUCKET", "lake")
    monkeypatch.setenv("RTML_LAKE_S3_ENDPOINT", "http://127.0.0.1:9000")
    monkeypatch.setenv("RTML_LAKE_S3_ACCESS_KEY_ID", "id-from-env")
    monkeypatch.setenv("RTML_LAKE_S3_SECRET_ACCESS_KEY", "secret-from-env")
    settings = load_settings()
    assert table_uri(settings, "tfd") == "s3://lake/rtml/bronze/tfd"
    assert spark_uri(table_uri(settings, "tfd")) == "s3a://lake/rtml/bronze/tfd"
    options = storage_options(settings)
    assert options["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert options["AWS_ALLOW_HTTP"] == "true"
    assert options["AWS_SECRET_ACCESS_KEY"] == "secret-from-env"
    conf = s3_conf(settings)
    assert conf["spark.hadoop.fs.s3a.secret.key"] == "secret-from-env"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert any(p.startswith("org.apache.hadoop:hadoop-aws:") for p in spark_packages(settings))
    assert "secret-from-env" not in repr(settings), "keys are secrets: never printed"
