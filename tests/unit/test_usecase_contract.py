"""One contract, checked for every use case: a fourth spec gets all of these for free."""

from __future__ import annotations

import json
from collections import defaultdict
from functools import cache
from statistics import median

import duckdb
import pyarrow as pa
import pytest
from sklearn.metrics import roc_auc_score

from rtml.scoring import oracle_report
from rtml.tasks import Classification, Clustering, Regression
from rtml.usecases import USECASES, InvalidEvent, UseCase
from rtml.usecases.generators import generator_for
from rtml.usecases.world import Generated

SPECS = list(USECASES.values())
N = 20_000


@cache
def sample(name: str, seed: int = 42, n: int = N) -> tuple[Generated, ...]:
    gen = generator_for(name, seed=seed)
    return tuple(next(gen) for _ in range(n))


@pytest.fixture(params=SPECS, ids=lambda s: s.name)
def spec(request: pytest.FixtureRequest) -> UseCase:
    return request.param


def test_generated_events_validate_and_round_trip(spec: UseCase) -> None:
    for g in sample(spec.name)[:2000]:
        event = spec.parse(json.dumps(g.event))
        assert spec.parse(event.model_dump_json()) == event
        assert spec.key_of(event) == g.key
        spec.parse_truth(json.dumps(g.truth))


def test_generator_is_deterministic_under_a_seed(spec: UseCase) -> None:
    a, b = generator_for(spec.name, seed=7), generator_for(spec.name, seed=7)
    first = [next(a) for _ in range(500)]
    assert first == [next(b) for _ in range(500)]
    other = generator_for(spec.name, seed=8)
    assert first != [next(other) for _ in range(500)]


def test_every_partition_key_is_an_entity_with_history(spec: UseCase) -> None:
    keys = [g.key for g in sample(spec.name)]
    per_key = len(keys) / len(set(keys))
    assert len(set(keys)) >= 100, "too few entities to spread over partitions"
    assert per_key > 3, "returning entities: most keys recur"


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda e, k: e.pop(k), "Field required"),
        (lambda e, k: e.__setitem__(k, {"nested": True}), "Input should be"),
        (lambda e, k: e.__setitem__("surprise", 1), "Extra inputs are not permitted"),
    ],
    ids=["missing", "wrong_type", "unknown_field"],
)
def test_schema_rejects_bad_events_naming_the_field(spec: UseCase, mutate, expected) -> None:
    event = dict(sample(spec.name)[0].event)
    field = spec.key
    mutate(event, field)
    with pytest.raises(InvalidEvent) as caught:
        spec.parse(json.dumps(event))
    assert expected in caught.value.reason
    assert (field in caught.value.reason) or ("surprise" in caught.value.reason)


def test_schema_rejects_absurd_values_and_non_json(spec: UseCase) -> None:
    event = dict(sample(spec.name)[0].event)
    event["timestamp"] = "yesterday-ish"
    with pytest.raises(InvalidEvent, match="timestamp"):
        spec.parse(json.dumps(event))
    numeric = next(f for f in spec.features if f.kind == "numeric")
    field = numeric.name.removeprefix("log1p_")
    event = dict(sample(spec.name)[0].event)
    event[field] = -1e12
    with pytest.raises(InvalidEvent, match=field):
        spec.parse(json.dumps(event))
    with pytest.raises(InvalidEvent, match="not JSON"):
        spec.parse(b"\x00{not json")


def test_oracle_beats_trivial_baselines_by_a_wide_margin(spec: UseCase) -> None:
    report = oracle_report(spec, [(g.event, g.truth) for g in sample(spec.name)])
    metric = spec.primary_metric
    oracle = report.pop("oracle")[metric]
    for baseline, scores in report.items():
        if spec.higher_is_better:
            assert oracle > scores[metric] + 0.1, (baseline, oracle, scores[metric])
        else:
            assert oracle < 0.5 * scores[metric], (baseline, oracle, scores[metric])


def test_oracle_is_not_perfect(spec: UseCase) -> None:
    """The truth has noise the oracle cannot know; a perfect oracle means the label leaks."""
    report = oracle_report(spec, [(g.event, g.truth) for g in sample(spec.name)])["oracle"]
    if isinstance(spec.task, Classification):
        assert report["fbeta"] < 0.95 and report["roc_auc"] < 0.99
    elif isinstance(spec.task, Regression):
        assert report["mae"] > 0 and report["r2"] < 0.995
    else:
        assert report["silhouette"] < 0.9


def _single_field_scores(spec: UseCase, events: list[dict], target: list) -> dict[str, float]:
    """For each field: how well a lookup of the target by that field's value alone predicts it.

    A field that is a function of the target alone would make this lookup (nearly) perfect.
    Numeric fields are bucketed into quantiles so that floats do not trivially memorise.
    Identifiers (``*_id``) are left out: an entity's id standing for its latent type (a customer's
    segment) is what "returning entities" means, and ids are never features.
    """
    scores = {}
    half = len(events) // 2
    for field in spec.event.model_fields:
        if field == spec.target or field.endswith("_id"):
            continue
        values = [e[field] for e in events]
        if isinstance(values[0], float):
            cuts = sorted(values)[:: max(len(values) // 50, 1)]
            values = [sum(v > c for c in cuts) for v in values]
        values = [json.dumps(v) for v in values]
        table: dict[str, list] = defaultdict(list)
        for v, t in zip(values[:half], target[:half], strict=True):
            table[v].append(t)
        fallback = median(target[:half]) if not isinstance(target[0], str) else None
        if isinstance(spec.task, Regression):
            lookup = {k: median(ts) for k, ts in table.items()}
            err = [
                abs(lookup.get(v, fallback) - t)
                for v, t in zip(values[half:], target[half:], strict=True)
            ]
            scores[field] = sum(err) / len(err)
        elif isinstance(spec.task, Classification):  # ROC AUC of the per-value positive rate
            prior = sum(target[:half]) / half
            lookup = {k: (sum(ts) + prior) / (len(ts) + 1) for k, ts in table.items()}
            scores[field] = roc_auc_score(
                target[half:], [lookup.get(v, prior) for v in values[half:]]
            )
        else:  # share of held-out events whose segment a per-value majority vote gets right
            lookup = {k: max(set(ts), key=ts.count) for k, ts in table.items()}
            hits = [lookup.get(v) == t for v, t in zip(values[half:], target[half:], strict=True)]
            scores[field] = sum(hits) / len(hits)
    return scores


def test_no_emitted_field_gives_the_target_away(spec: UseCase) -> None:
    events = [g.event for g in sample(spec.name)]
    if isinstance(spec.task, Clustering):
        assert "segment" not in spec.event.model_fields
        target = [g.truth["segment"] for g in sample(spec.name)]
    else:
        target = [e[spec.target] for e in events]
    scores = _single_field_scores(spec, events, target)
    report = oracle_report(spec, [(g.event, g.truth) for g in sample(spec.name)])["oracle"]
    for field, score in scores.items():
        if isinstance(spec.task, Regression):
            assert score > 1.5 * report["mae"], f"{field} alone predicts {spec.target} too well"
        elif isinstance(spec.task, Classification):
            assert score < report["roc_auc"] - 0.1, f"{field} alone ranks {spec.target} too well"
        else:
            assert score < 0.9, f"{field} alone recovers the segment"


def test_features_read_only_event_fields_never_the_target(spec: UseCase) -> None:
    event = sample(spec.name)[0].event
    assert spec.key not in spec.feature_names
    parsed = spec.parse(event).model_dump()
    if spec.target:
        poisoned = {**parsed, spec.target: None}
        own = {f.name: f.python(poisoned) for f in spec.features}
        features = spec.features_of(spec.parse(event))
        assert {name: features[name] for name in own} == own  # entity features: their own test
        assert spec.target not in " ".join(f.sql for f in spec.features)
    assert len(set(spec.feature_names)) == len(spec.feature_names)


def test_online_and_batch_features_agree(spec: UseCase) -> None:
    """The Python function and the SQL expression of every feature give the same values."""
    events = [spec.parse(g.event).model_dump() for g in sample(spec.name)[:3000]]
    columns = {name: [e[name] for e in events] for name in spec.event.model_fields}
    table = pa.table(
        {
            name: pa.array(values, pa.timestamp("us", tz="UTC")) if name == "timestamp" else values
            for name, values in columns.items()
        }
    )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Tokyo'")  # a session time zone must not change a feature
    con.register("bronze", table)
    from rtml.features import feature_sql

    rows = con.execute(feature_sql(spec.features, "bronze")).fetchall()
    for event, row in zip(events, rows, strict=True):
        online = spec.features_of(spec.parse(event))
        for feature, batch_value in zip(spec.features, row, strict=True):
            value = online[feature.name]
            if feature.kind == "numeric":
                assert value == pytest.approx(batch_value, rel=1e-9, abs=1e-9), feature.name
            else:
                assert value == batch_value, feature.name


def test_the_leak_check_catches_a_leak(spec: UseCase) -> None:
    """The check above can fail: emit the oracle's own prediction as a field and it is caught."""
    from dataclasses import replace

    from pydantic import create_model

    records = sample(spec.name)
    oracle = [spec.oracle(spec.truth.model_validate(g.truth)) for g in records]
    leaky = replace(
        spec, event=create_model("Leaky", __base__=spec.event, leak=(type(oracle[0]), ...))
    )
    events = [{**g.event, "leak": o} for g, o in zip(records, oracle, strict=True)]
    target = oracle if isinstance(spec.task, Clustering) else [e[spec.target] for e in events]
    score = _single_field_scores(leaky, events, target)["leak"]
    report = oracle_report(spec, [(g.event, g.truth) for g in records])["oracle"]
    if isinstance(spec.task, Regression):
        assert score <= 1.5 * report["mae"]
    elif isinstance(spec.task, Classification):
        assert score >= report["roc_auc"] - 0.1
    else:
        assert score >= 0.9
