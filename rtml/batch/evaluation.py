"""How the champion does on the newest events of the lake, as the UI plots it.

The rows are read through the same training SQL and feature frame as every other path, the
scores come from the same :func:`rtml.batch.model.evaluate`, and the view (curves, residuals,
projections) is the task's.

Core module: the lake, the registry, scikit-learn; no Ray, no HTTP.
"""

from __future__ import annotations

from typing import Any

from rtml.batch import training
from rtml.batch.model import evaluate
from rtml.settings import Settings
from rtml.store import registry
from rtml.tasks.base import Predicted
from rtml.usecases import get


def evaluate_champion(settings: Settings, usecase: str, rows: int = 2000) -> dict[str, Any]:
    """The champion on the newest ``rows`` events of the lake: its scores beside the oracle's and
    the view of its task. Raises ``LookupError`` when there is no champion or no row yet."""
    spec = get(usecase)
    model = registry.load_champion(settings, usecase)
    if model is None:
        raise LookupError(
            f"no champion of {registry.model_name(usecase)} yet: `rtml train {usecase}`"
        )
    try:
        frame = training.load_frame(settings, usecase, max_rows=rows)
    except ValueError as exc:  # no rows
        raise LookupError(str(exc)) from None
    predictions = model.predict(frame)
    truth = frame[spec.task.truth_column].tolist()
    view = spec.task.evaluation_view(spec, model.model, Predicted(frame, predictions, truth))
    return {
        "usecase": usecase,
        "version": model.version,
        "rows": len(frame),
        "scores": evaluate(spec, predictions, truth, frame),
        "oracle": training.oracle_scores(spec, frame),
        "task": spec.task.name,
        spec.task.name: view,
    }
