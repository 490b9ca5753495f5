"""A user's own use case on the real stack: River's Phishing dataset in a topic of the user's,
learned by an rtml learner, scores exactly what River's own progressive validation scores."""

from __future__ import annotations

import pytest
import ray

from examples.phishing import SPEC
from examples.phishing.__main__ import (
    REFERENCE,
    forget_learner,
    load_topic,
    river_score,
    rtml_score,
)
from ray_apps.learning import actor as learner
from rtml.checkpoint import forget
from rtml.settings import Settings
from rtml.usecases import USECASES


def test_rtml_learns_the_users_topic_as_rivers_own_loop_does(
    stack: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = stack.model_copy(update={"usecase_specs": [REFERENCE]})
    # registered for this test only: the other modules' stacks know the three built-in use cases
    monkeypatch.setattr(USECASES, "_specs", {**USECASES, SPEC.name: SPEC})
    forget_learner(settings)
    try:
        n = load_topic(settings)
        report = rtml_score(settings, n)
        assert report["events"] == n == 1250
        assert report["oracle"] is None and report["share_of_oracle"] == {}
        assert abs(report["overall"]["log_loss"] - river_score()) <= 1e-9
    finally:
        learner.stop(SPEC.name)
        forget(settings, SPEC.name, 0)
        ray.shutdown()
