"""The online model of a use case and its prequential metrics, both built from the spec.

The River model reads the dict that the spec's one feature definition builds
(``spec.features_of``); which model, how it predicts and learns, and how it is scored are the
task's (:mod:`rtml.tasks`). A spec may bring its own model (``UseCase.model``) instead of the
task's default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rtml import tree_paths
from rtml.online.prequential import WINDOW, Prequential

if TYPE_CHECKING:
    from rtml.usecases.base import UseCase


def build_model(spec: UseCase, overrides: Mapping[str, Any] | None = None) -> Any:
    """A fresh online model: the spec's defaults < ``overrides`` (settings, the CLI)."""
    params = {**spec.online_model, **(overrides or {})}
    if spec.model is not None:
        return spec.model(params)
    return spec.task.online_model(spec, params)


def predict_then_learn(spec: UseCase, model: Any, x: dict[str, Any], y: Any = None) -> Any:
    """One prequential step: the model's prediction for ``x`` made before it learns ``(x, y)``."""
    return spec.task.predict_then_learn(model, x, y)


def predict(spec: UseCase, model: Any, x: dict[str, Any]) -> Any:
    """What the model says about ``x`` without learning it (the serving side's question)."""
    return spec.task.predict(model, x)


def predict_many(spec: UseCase, model: Any, xs: list[dict[str, Any]]) -> list[Any]:
    """:func:`predict` for each of ``xs``, in order, sharing the trees' fallback paths between
    them (:mod:`rtml.tree_paths`); the model must not learn meanwhile."""
    with tree_paths.remembering():
        return [spec.task.predict(model, x) for x in xs]


def prequential(spec: UseCase, window: int = WINDOW) -> Prequential:
    """The prequential metrics of a learner of ``spec`` (the oracle's and the reachable
    ceiling's beside, if it has them), recent ones over ``window`` events."""
    return spec.task.prequential(
        has_oracle=spec.oracle is not None, has_ceiling=spec.ceiling is not None, window=window
    )


__all__ = [
    "WINDOW",
    "Prequential",
    "build_model",
    "predict",
    "predict_many",
    "predict_then_learn",
    "prequential",
]
