"""The online model and prequential metrics, on generated events, without services."""

from __future__ import annotations

import dataclasses

import pytest

from rtml import tree_paths
from rtml.online import build_model, predict, predict_many, predict_then_learn, prequential
from rtml.tasks import Classification, Regression
from rtml.usecases import USECASES, UseCase
from rtml.usecases.generators import generator_for


@pytest.mark.parametrize("spec", list(USECASES.values()), ids=lambda s: s.name)
def test_test_then_train_beats_nothing_and_stays_below_the_oracle(spec: UseCase) -> None:
    model, metrics = build_model(spec), prequential(spec)
    gen = generator_for(spec.name, seed=3)
    for _ in range(1500):
        g = next(gen)
        event = spec.parse(g.event)
        x = spec.features_of(event)
        oracle = spec.oracle(spec.truth.model_validate(g.truth))
        y = spec.label_of(event) if spec.target else None
        pred = predict_then_learn(spec, model, x, y)
        metrics.observe(model, x, y, pred, oracle)
    report = metrics.report()
    assert report["events"] == 1500
    if isinstance(spec.task, Regression):
        assert report["oracle"]["mae"] < report["overall"]["mae"] < 520
    elif isinstance(spec.task, Classification):
        assert 0.5 < report["overall"]["roc_auc"] < report["oracle"]["roc_auc"]
    else:
        assert report["oracle"]["ari"] == pytest.approx(1.0)
        # better than chance, short of the truth, and neither one blob nor shattered
        assert 0.05 < report["overall"]["ari"] < 1.0
        assert 2 <= report["n_clusters"] <= 20
        assert -1.0 <= report["overall"]["silhouette"] <= 1.0 and report["oracle"]["silhouette"] > 0


@pytest.mark.parametrize("spec", list(USECASES.values()), ids=lambda s: s.name)
def test_predicting_a_list_answers_as_predicting_each_event(
    spec: UseCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``predict_many`` remembers the trees' fallback paths within one list, and only there: a
    model that learns between two lists is asked afresh."""
    model = build_model(spec)
    if spec.name == "tfd":  # its spec learns linearly: the forest a classification may choose
        forest = dataclasses.replace(spec.task, online="forest")
        model = forest.online_model(spec, {"n_models": 10, "seed": 42})
    learning, unseen = generator_for(spec.name, seed=4), generator_for(spec.name, seed=5)
    xs = [spec.features_of(spec.parse(next(unseen).event)) for _ in range(150)]
    searches = {"n": 0}
    river_search = tree_paths._RIVER_MOST_COMMON_PATH

    def counted(branch: object) -> object:
        searches["n"] += 1
        return river_search(branch)

    tree_paths.install()  # River's search goes through the memo, which counts it here
    monkeypatch.setattr(tree_paths, "_RIVER_MOST_COMMON_PATH", counted)
    for _ in range(2):
        for _ in range(1000):
            event = spec.parse(next(learning).event)
            predict_then_learn(
                spec, model, spec.features_of(event), spec.label_of(event) if spec.target else None
            )
        searches["n"] = 0
        each = [predict(spec, model, x) for x in xs]
        alone = searches["n"]
        searches["n"] = 0
        assert predict_many(spec, model, xs) == each
        if spec.name == "tfd":  # unseen merchants follow the most common path of nominal splits
            assert 0 < searches["n"] < alone / 5


def test_recent_shares_of_the_oracle_and_the_ceiling() -> None:
    """An error's share is reference ÷ model; the recent figures forget the early events."""
    spec = USECASES["eta"]
    metrics = prequential(spec, window=10)
    for _ in range(50):  # a poor start, forgotten by the window
        metrics.update(100.0, 400.0, 100.0, 120.0)
    for _ in range(10):
        metrics.update(100.0, 140.0, 100.0, 120.0)
    report = metrics.report()
    assert report["window"] == 10
    assert report["recent"]["mae"] == pytest.approx(40.0)
    assert report["recent_share_of_ceiling"]["mae"] == pytest.approx(20.0 / 40.0)
    assert "mae" not in report["recent_share_of_oracle"]  # a nil error: no share
    assert report["share_of_ceiling"]["mae"] == pytest.approx(20.0 / ((50 * 300 + 10 * 40) / 60))
