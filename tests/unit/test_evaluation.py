"""The champion's evaluation views (no services) and the sweep log a Ray job writes."""

from __future__ import annotations

import numpy as np
import pytest

from rtml.ray_jobs import parse_log, sweep_entrypoint
from rtml.tasks.base import MAX_POINTS
from rtml.tasks.classification import classification_view
from rtml.tasks.clustering import clustering_view
from rtml.tasks.regression import regression_view


def test_the_classification_view_counts_every_event_once() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random(1000) < 0.1
    probability = np.clip(truth * 0.3 + rng.random(1000) * 0.5, 0, 1)
    view = classification_view(truth.tolist(), probability.tolist(), threshold=0.5)
    c = view["confusion"]
    assert c["tp"] + c["fp"] + c["tn"] + c["fn"] == 1000 and c["tp"] + c["fn"] == truth.sum()
    assert c["tp"] == int(((probability >= 0.5) & truth).sum())
    assert (
        2 <= len(view["roc"]) <= MAX_POINTS
        and view["roc"][0]["fpr"] == 0
        and view["roc"][-1]["tpr"] == 1
    )
    recalls = [p["recall"] for p in view["pr"]]
    assert recalls == sorted(recalls, reverse=True)  # scikit-learn's order: from all to none


def test_one_class_has_a_confusion_matrix_but_no_curves() -> None:
    view = classification_view([False] * 10, [0.1] * 10, threshold=0.5)
    assert view["confusion"]["tn"] == 10 and "roc" not in view and "pr" not in view


def test_the_regression_view_thins_points_and_bins_every_residual() -> None:
    y = np.arange(5000, dtype=float)
    view = regression_view(y.tolist(), (y + 10).tolist())
    assert len(view["points"]) <= MAX_POINTS and view["points"][0] == {
        "actual": 0.0,
        "predicted": 10.0,
    }
    assert sum(view["residuals"]["counts"]) == 5000 and view["mean_residual"] == pytest.approx(10)


def test_the_clustering_view_sizes_and_projects() -> None:
    rng = np.random.default_rng(1)
    encoded = np.vstack([rng.normal(0, 1, (50, 6)), rng.normal(5, 1, (70, 6))])
    clusters = [0] * 50 + [1] * 70
    view = clustering_view(encoded, clusters, ["a"] * 50 + ["b"] * 70)
    assert view["sizes"] == {"0": 50, "1": 70}
    assert len(view["projection"]) == 120 and {p["cluster"] for p in view["projection"]} == {0, 1}
    assert view["explained_variance"][0] > 0.5  # the two blobs lie along the first component


def test_a_sweep_log_is_read_line_by_line() -> None:
    text = "\n".join(
        [
            "some Ray line",
            'SWEEP {"id": "20261203T081500"}',
            "rtml: eta: 1500 rows from the lake",
            'PROGRESS {"done": 1, "total": 2, "mae": 120.5}',
            'PROGRESS {"done": 2, "total": 2, "mae": 118.0}',
            'RESULT {"version": 3, "gate": {"decision": "promoted"}}',
            'PROGRESS {"done": 3',  # a line still being written
        ]
    )
    log = parse_log(text)
    assert log.sweep == "20261203T081500" and [p["done"] for p in log.progress] == [1, 2]
    assert log.result == {"version": 3, "gate": {"decision": "promoted"}}
    assert log.said == ["eta: 1500 rows from the lake"]


def test_the_sweep_entrypoint_is_the_job_command() -> None:
    assert sweep_entrypoint("eta", 8) == [
        "python",
        "-m",
        "jobs.tune",
        "--usecase",
        "eta",
        "--trials",
        "8",
    ]
    assert sweep_entrypoint("eta", 8, 500, "1h")[-4:] == ["--max-rows", "500", "--every", "1h"]
