"""Batch training and scoring against real Ray (Tune, Data, Jobs), MLflow, DuckDB and Delta.

The lake's bronze tables are written directly with ``deltalake`` in the schema the Spark job
writes (``streaming.sample_lake``), from the generators, so these tests need no Spark and stay
small; the Kafka → Spark → Delta path has its own test. ``rtml train`` and ``rtml score`` run as a
person runs them: they submit real Ray jobs (working folder uploaded, ``python -m jobs.tune``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import mlflow
import pytest
from catboost import CatBoostRegressor

from rtml.batch import frames, training
from rtml.lake import Lake, predictions_table
from rtml.settings import Settings
from rtml.store import gate, registry
from rtml.tasks import LABEL
from streaming.sample_lake import write_bronze

ETA_ROWS = 1600
ECCI_ROWS = 1200
TRIALS = 3


def cli(*args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtml.cli", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def lake(stack: Settings) -> Iterator[Settings]:
    write_bronze(stack, "eta", ETA_ROWS, seed=11)
    write_bronze(stack, "ecci", ECCI_ROWS, seed=12)
    yield stack
    import ray

    ray.shutdown()  # this process was a driver too: leave before `rtml down` stops the cluster
    # The tables written here are not Spark's: later modules (the lakehouse's exact counts) start
    # from an empty lake, as a user's Spark job would.
    import shutil

    shutil.rmtree(stack.lake_local_dir, ignore_errors=True)
    client = registry.client(stack)  # and no champions: the serving tests start without one
    for name in ("eta", "ecci"):
        try:
            client.delete_registered_model(registry.model_name(name))
        except mlflow.exceptions.MlflowException:
            pass


@pytest.fixture(scope="module")
def eta_champion(lake: Settings) -> dict[str, Any]:
    """`rtml train eta` through the real Jobs API: the first version, champion unopposed."""
    done = cli("train", "eta", "--trials", str(TRIALS))
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "gate first" in done.stdout.replace("\n", " "), done.stdout
    champion = registry.champion(lake, "eta")
    assert champion is not None
    return {"version": champion.version, "metrics": champion.metrics}


def test_a_sweep_registers_a_champion_with_every_trial_tracked(
    lake: Settings, eta_champion: dict[str, Any]
) -> None:
    assert eta_champion["version"] == 1
    (version,) = registry.versions(lake, "eta")
    assert version.aliases == [registry.CHAMPION] and version.gate == "first"
    assert set(version.metrics) == {"mae", "rmse", "r2"}
    assert version.metrics["r2"] > 0.5  # it learned something: the median's R² is about 0
    client = registry.client(lake)
    trials = client.search_runs(
        [client.get_experiment_by_name("rtml-eta-tune").experiment_id], max_results=100
    )
    assert len(trials) == TRIALS  # one MLflow run per Tune trial
    model = registry.load(lake, "eta", 1)
    mv = client.get_model_version(registry.model_name("eta"), "1")
    info = mlflow.models.get_model_info(f"models:/{registry.model_name('eta')}/1")
    assert info.signature is not None and info.saved_input_example_info is not None
    assert [c.name for c in info.signature.inputs.inputs] == model.spec.feature_names
    assert mv.run_id == model.run_id


def test_a_worse_model_is_not_promoted(lake: Settings, eta_champion: dict[str, Any]) -> None:
    spec = registry.get("eta")
    split = training.time_split(training.load_frame(lake, "eta"))
    # Two shallow rounds: barely better than a constant, far worse than the sweep's champion.
    weak = CatBoostRegressor(
        iterations=2,
        depth=1,
        loss_function="MAE",
        verbose=False,
        cat_features=spec.categorical_names,
        allow_writing_files=False,
    )
    learn = frames.frame_of(spec, split.train)
    weak.fit(learn, split.train[LABEL])
    holdout_scores = training.scores(spec, weak, split.holdout)
    experiment = registry.experiment_id(lake, registry.model_name("eta"))
    with mlflow.start_run(experiment_id=experiment, run_name="deliberately weak"):
        version = registry.log_and_register(lake, "eta", weak, learn.head(20), holdout_scores)
    result = gate.gate(lake, "eta", version, split.holdout, split.holdout[LABEL].tolist())

    assert result.decision == "rejected"
    assert result.champion_version == eta_champion["version"]
    assert result.champion_score is not None and result.candidate_score > result.champion_score
    assert registry.champion(lake, "eta").version == eta_champion["version"]  # alias unmoved
    tags = {v.version: v.tags for v in registry.versions(lake, "eta")}[version]
    assert tags["gate.decision"] == "rejected" and tags["gate.metric"] == "mae"
    assert float(tags["gate.candidate_score"]) == pytest.approx(result.candidate_score)
    assert float(tags["gate.champion_score"]) == pytest.approx(result.champion_score)


def test_promote_by_hand_then_rollback_moves_the_alias_back(
    lake: Settings, eta_champion: dict[str, Any]
) -> None:
    first = eta_champion["version"]
    newest = max(v.version for v in registry.versions(lake, "eta"))
    assert newest != first
    registry.promote(lake, "eta", newest)  # by hand (`rtml models promote eta N`)
    assert registry.champion(lake, "eta").version == newest

    rolled = cli("models", "rollback", "eta")
    assert rolled.returncode == 0, rolled.stderr
    assert registry.champion(lake, "eta").version == first
    listed = json.loads(cli("models", "eta", "--json").stdout)
    by_version = {v["version"]: v for v in listed}
    assert by_version[first]["aliases"] == [registry.CHAMPION]
    assert by_version[newest]["tags"]["rollback.to"] == str(first)

    with pytest.raises(ValueError, match="no earlier champion"):  # none before the first
        registry.rollback(lake, "eta")
    assert registry.champion(lake, "eta").version == first


def test_batch_scoring_writes_the_champions_prediction_for_every_row(
    lake: Settings, eta_champion: dict[str, Any]
) -> None:
    from jobs.batch_score import scoring_sql

    version = registry.champion(lake, "eta").version
    done = cli("score", "eta", "--since", "2026-01-01")  # a Ray job: jobs.score on Ray Data
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert f"{ETA_ROWS:,} rows scored by version {version}" in done.stdout.replace("\n", " ")
    db = Lake(lake)
    table = predictions_table("eta")
    scored = db.query(
        f"SELECT kafka_partition, kafka_offset, prediction, model_version FROM {table}"
    ).to_pylist()
    assert len(scored) == ETA_ROWS
    assert len({(r["kafka_partition"], r["kafka_offset"]) for r in scored}) == ETA_ROWS
    assert {r["model_version"] for r in scored} == {version}

    # The model's own predictions on the same rows, read the same way.
    rows = db.query(scoring_sql(registry.get("eta"))).to_pandas()
    own = registry.load(lake, "eta", version).predict(rows)
    expected = dict(
        zip(zip(rows["kafka_partition"], rows["kafka_offset"], strict=True), own, strict=True)
    )
    for r in scored:
        assert r["prediction"] == pytest.approx(expected[(r["kafka_partition"], r["kafka_offset"])])
    assert table in {t.name for t in db.info()}  # the SQL surface lists it


def test_an_ecci_sweep_clusters_and_explains(lake: Settings) -> None:
    from jobs.sweep import run_sweep
    from rtml.ray_env import apply_ray_env

    apply_ray_env(lake)  # this process joins the test cluster as a driver

    result = run_sweep(lake, "ecci", trials=2, say=lambda line: None)
    assert result.gate["decision"] == "first" and set(result.holdout) == {"silhouette", "ari"}
    assert 2 <= result.best_config["k"] <= 8
    model = registry.load(lake, "ecci", result.version)
    rows = training.load_frame(lake, "ecci").head(5)
    clusters = model.predict(rows)
    assert all(0 <= c < result.best_config["k"] for c in clusters)
    contributions = model.explain(rows.iloc[0].to_dict())
    assert set(contributions) == set(model.spec.feature_names)
    assert sum(model.feature_importance().values()) == pytest.approx(1.0)
