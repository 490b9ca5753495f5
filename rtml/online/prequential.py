"""Prequential (test-then-train) metrics of a learner, beside the oracle's on the same events.

Each event is scored before the model learns it, and the oracle's prediction for the same event
is scored beside it (where the use case has an oracle), so every figure also exists as a share of
the best reachable one. The metrics are River's, chosen by the task; each knows its direction.
A checkpoint pickles this object with the model, so it holds plain values and its task (a frozen
dataclass), never the spec (specs hold functions).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from river import metrics, utils

if TYPE_CHECKING:
    from rtml.tasks.base import Task

#: Events in the "recent" window of each metric.
WINDOW = 1000


@runtime_checkable
class Windowed(Protocol):
    """A metric of rtml's own that makes its windowed twin itself (River's ``Rolling`` needs a
    ``revert``)."""

    def windowed(self, window: int) -> Any: ...


def recent(metric: Any, window: int = WINDOW) -> Any:
    """The same metric over the last ``window`` events."""
    if isinstance(metric, Windowed):
        return metric.windowed(window)
    if isinstance(metric, metrics.RollingROCAUC):
        return metrics.RollingROCAUC(window_size=window)
    with warnings.catch_warnings():
        # River 0.26 deprecates wrapping a metric instance, but its class form only serves
        # stats, not metrics; the instance form is the one that works for metrics.
        warnings.simplefilter("ignore", DeprecationWarning)
        return utils.Rolling(metric.clone(), window)


def share(model: float, reference: float, higher_is_better: bool) -> float:
    """How much of the reference's quality (the oracle's, the ceiling's) a model has: 1.0 is "as
    good". For an error (lower is better) that is reference / model, for a score model /
    reference; NaN where it is undefined."""
    if math.isnan(model) or math.isnan(reference):
        return math.nan
    if higher_is_better:
        return model / reference if reference else math.nan
    return reference / model if model else math.nan


class Prequential:
    """Overall and recent metrics of the model, and the same of the oracle and of the reachable
    ceiling: a share over the recent events says what the model has learned by now, which the
    overall one (weighed down by the first events) does not."""

    def __init__(
        self, task: Task, has_oracle: bool = True, has_ceiling: bool = False, window: int = WINDOW
    ) -> None:
        self.task = task
        self.primary = task.primary_metric
        self.window = window
        self.model = task.online_metrics()
        self.recent = {name: recent(m, window) for name, m in self.model.items()}
        self.oracle = task.online_metrics() if has_oracle else None
        #: the reachable ceiling's metrics, where the spec's differs from its oracle
        self.ceiling = task.online_metrics() if has_oracle and has_ceiling else None
        #: the references over the recent events, by name ("oracle", "ceiling")
        self.recent_references = {
            name: {k: recent(m, window) for k, m in group.items()}
            for name, group in (("oracle", self.oracle), ("ceiling", self.ceiling))
            if group is not None
        }
        self.events = 0

    def observe(
        self, model: Any, x: dict[str, Any], y: Any, pred: Any, oracle: Any, ceiling: Any = None
    ) -> None:
        """Score one prequential step of ``model`` (what the task's ``predict_then_learn``
        returned) beside the oracle's answer and the reachable ceiling's (``None`` without)."""
        self.update(y, pred, oracle, ceiling)

    def update(
        self, y_true: Any, y_pred: Any, oracle_pred: Any = None, ceiling_pred: Any = None
    ) -> None:
        self.events += 1
        for group in (self.model, self.recent):
            for metric in group.values():
                self.task.update(metric, y_true, y_pred)
        recent_refs = self.recent_references
        references = (
            (self.oracle, oracle_pred),
            (self.ceiling, ceiling_pred),
            (recent_refs.get("oracle"), oracle_pred),
            (recent_refs.get("ceiling"), ceiling_pred),
        )
        for metrics_, prediction in references:
            if metrics_ is not None and prediction is not None:
                for metric in metrics_.values():
                    self.task.update(metric, y_true, prediction)

    def extra(self) -> dict[str, Any]:
        """What a task adds to the report."""
        return {}

    def report(self) -> dict[str, Any]:
        def values(group: Mapping[str, Any]) -> dict[str, float]:
            return {name: float(m.get()) for name, m in group.items()}

        model, latest = values(self.model), values(self.recent)
        out: dict[str, Any] = {
            **self.extra(),
            "events": self.events,
            "primary": self.primary,
            "window": self.window,
            "overall": model,
            "recent": latest,
        }
        if self.oracle is None:
            return {
                **out,
                "oracle": None,
                "share_of_oracle": {},
                "ceiling": None,
                "share_of_ceiling": {},
                "recent_share_of_oracle": {},
                "recent_share_of_ceiling": {},
            }
        oracle = values(self.oracle)
        # the ceiling is the oracle where no per-event draw hides from a model with memory
        ceiling = values(self.ceiling) if self.ceiling is not None else oracle
        recent_refs = {k: values(v) for k, v in self.recent_references.items()}
        recent_oracle = recent_refs.get("oracle", oracle)
        recent_ceiling = recent_refs.get("ceiling", recent_oracle)
        return {
            **out,
            "oracle": oracle,
            "share_of_oracle": self._shares(model, oracle),
            "ceiling": ceiling,
            "share_of_ceiling": self._shares(model, ceiling),
            "recent_share_of_oracle": self._shares(latest, recent_oracle),
            "recent_share_of_ceiling": self._shares(latest, recent_ceiling),
        }

    def _shares(self, model: Mapping[str, float], reference: Mapping[str, float]) -> dict:
        shares = {}
        for name, value in model.items():
            ref = reference[name]
            if ref and not math.isnan(ref):
                s = share(value, ref, bool(self.model[name].bigger_is_better))
                shares[name] = 0.0 if math.isnan(s) else s  # JSON has no NaN
        return shares
