"""The one interface every task satisfies: everything that differs by kind of problem.

A use-case spec names its task (``Classification(beta=2.0, decision_threshold=0.15)``); nothing
outside ``rtml/tasks/`` asks which task it is. The division follows River's: a classifier, a
regressor and a clusterer share ``learn_one``/``predict_one`` but differ in what a prediction is,
how it is scored and which metrics judge it (``river.base.Classifier``/``Regressor``/
``Clusterer``, ``river.checks``). Here a task also owns its batch model, its search space, its
offline scores, its evaluation views and the shape of a served answer.

A task is a frozen dataclass of plain values, so it pickles (a learner's checkpoint holds its
prequential metrics, which hold their task) and compares by value.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

import numpy as np

from rtml.online.prequential import WINDOW, share

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from rtml.online.prequential import Prequential
    from rtml.usecases.base import UseCase

#: How a task's batch model is logged to and loaded from MLflow.
Flavor = Literal["catboost", "sklearn"]
#: ``on_round(iteration, validation_loss) -> keep going``: a sweep's window into a fit.
OnRound = Callable[[int, float], bool]

#: Columns beside the features in a training frame: the label of a supervised task, the true
#: segment of a clustering (evaluation only, from the truth header).
LABEL = "label"
SEGMENT = "segment"
#: Points of a curve or a scatter sent to the UI: enough to draw, few enough to send.
MAX_POINTS = 400


class OnlineMetric(Protocol):
    """An online metric as rtml reads it: one of River's, or one of rtml's own that is not a
    River metric (clustering's silhouette, whose ``update`` also takes the centres). What feeds
    it knows its ``update``'s arguments; what reports it needs only these."""

    @property
    def bigger_is_better(self) -> bool: ...
    def get(self) -> float: ...
    def update(self, *args: Any, **kwargs: Any) -> None: ...


@dataclass(frozen=True)
class Fit:
    """How a batch fit runs. With ``valid``, an iterative model stops early on its loss and
    reports it through ``on_round`` every ``round_every`` rounds (a sweep's window into a fit)."""

    valid: pd.DataFrame | None = None
    on_round: OnRound | None = None
    round_every: int = 10
    thread_count: int = 1
    seed: int = 0


@dataclass(frozen=True)
class Predicted:
    """Rows of a feature frame with a model's prediction and the truth of each."""

    frame: pd.DataFrame
    predictions: list[Any]
    truth: list[Any]


@dataclass(frozen=True)
class Task(ABC):
    """What a use case's models are, how they learn and predict, and how they are judged."""

    #: The task's name, as the API and the UI show it.
    name: ClassVar[str]
    #: True when events carry the answer (a label the online model learns from).
    supervised: ClassVar[bool]
    flavor: ClassVar[Flavor]
    #: Parameters of a small model fitted in seconds (tests, the verifier's champions).
    quick_params: ClassVar[dict[str, Any]]
    #: The metric the gate, the sweep and the shares judge by (a key of :meth:`online_metrics`).
    primary_metric: str

    # -- online (River) -----------------------------------------------------------------------
    @abstractmethod
    def online_model(self, spec: UseCase, params: dict[str, Any]) -> Any:
        """The task's default River model over the spec's features, with ``params``."""

    @abstractmethod
    def predict_then_learn(self, model: Any, x: dict[str, Any], y: Any) -> Any:
        """One prequential step: the prediction for ``x`` made before the model learns it."""

    @abstractmethod
    def predict(self, model: Any, x: dict[str, Any]) -> Any:
        """What the model says about ``x`` without learning it, in the shape of
        :meth:`predict_then_learn`'s answer."""

    @abstractmethod
    def online_metrics(self) -> dict[str, OnlineMetric]:
        """Fresh River metrics, by name; each knows its direction (``bigger_is_better``)."""

    def prequential(
        self, has_oracle: bool = True, has_ceiling: bool = False, window: int = WINDOW
    ) -> Prequential:
        """The prequential metrics of a learner of this task (``has_oracle``: the oracle's too;
        ``has_ceiling``: a reachable ceiling apart from the oracle's; ``window``: events in the
        recent figures)."""
        from rtml.online.prequential import Prequential

        return Prequential(self, has_oracle, has_ceiling, window)

    def update(self, metric: Any, y: Any, prediction: Any) -> None:
        """Feed one scored event to one metric (a classifier's metric may want the decision or
        the probability)."""
        metric.update(y, prediction)

    def higher_is_better(self, metric: str | None = None) -> bool:
        """The direction of ``metric`` (the primary one by default), as River's metric says."""
        return bool(self.online_metrics()[metric or self.primary_metric].bigger_is_better)

    def share(self, metric: str, model: float, reference: float) -> float:
        """:func:`share` by ``metric``'s direction."""
        return share(model, reference, self.higher_is_better(metric))

    def shards_asked(self, shards: int) -> list[int]:
        """The learner shards a prediction asks (each shard learns a share of the entities)."""
        return list(range(shards))

    @abstractmethod
    def combine(self, values: Sequence[Any]) -> Any:
        """One prediction from the shards' predictions of the same event."""

    # -- batch ---------------------------------------------------------------------------------
    @property
    def truth_column(self) -> str:
        """The column of a training frame that answers: the label, or the true segment."""
        return LABEL if self.supervised else SEGMENT

    @abstractmethod
    def search_space(self) -> dict[str, Any]:
        """Ray Tune's search space of the batch model (imports Ray Tune: call it on Ray)."""

    @abstractmethod
    def fit(self, spec: UseCase, params: Mapping[str, Any], train: pd.DataFrame, run: Fit) -> Any:
        """Fit the batch model with ``params`` on ``train`` (which carries :attr:`truth_column`),
        as ``run`` says (a validation set to stop early on, threads, seed)."""

    def refit_params(self, params: Mapping[str, Any], best: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters of the final fit, from a trial's config and its last report."""
        return dict(params)

    def trial_loss(self, model: Any, valid_scores: Mapping[str, float]) -> float:
        """What ASHA minimises for a finished trial."""
        primary = valid_scores[self.primary_metric]
        return -primary if self.higher_is_better() else primary

    def trial_report(self, model: Any) -> dict[str, Any]:
        """What a finished trial reports beside its scores (for :meth:`refit_params`)."""
        return {}

    @property
    def early_stopping(self) -> bool:
        """True when trials report several rounds, so a scheduler can stop the weak ones."""
        return False

    @abstractmethod
    def batch_predict(self, model: Any, frame: pd.DataFrame) -> list[Any]:
        """The fitted model's prediction per row of a feature frame (the same shape as
        :meth:`predict`)."""

    def fast_predict(
        self, spec: UseCase, model: Any, rows: Sequence[Mapping[str, Any]]
    ) -> list[Any] | None:
        """Predictions for feature dicts without building a frame, where the model takes plain
        rows (CatBoost does); ``None`` where it does not."""
        return None

    @abstractmethod
    def scores(
        self, spec: UseCase, predictions: Sequence[Any], truth: Sequence[Any], x: np.ndarray | None
    ) -> dict[str, float]:
        """The offline scores of predictions against the truth (``x``: the rows in a fixed
        standardized space, for metrics that need the points)."""

    @property
    def needs_points(self) -> bool:
        """True when :meth:`scores` needs the rows themselves, not only the answers."""
        return False

    def baselines(self, truth: Sequence[Any], rng: random.Random) -> dict[str, Sequence[Any]]:
        """Trivial predictions that the oracle must beat by far, by name."""
        return {}

    @abstractmethod
    def explain(self, spec: UseCase, model: Any, frame: pd.DataFrame) -> dict[str, float]:
        """Per-feature contributions to the prediction of the frame's one row."""

    explained_as: ClassVar[str]

    @abstractmethod
    def feature_importance(self, spec: UseCase, model: Any) -> dict[str, float]:
        """How much each feature matters to the model overall."""

    @abstractmethod
    def evaluation_view(self, spec: UseCase, model: Any, rows: Predicted) -> dict[str, Any]:
        """What the UI plots of a model on labelled rows (curves, residuals, projections)."""

    # -- serving and storage ---------------------------------------------------------------------
    @abstractmethod
    def answer(self, spec: UseCase, value: Any) -> dict[str, Any]:
        """A served prediction, as the API shows it."""

    @abstractmethod
    def answer_fields(self, spec: UseCase) -> dict[str, tuple[Any, Any]]:
        """The fields of :meth:`answer` as pydantic ``create_model`` definitions (the API's
        response schema)."""

    @abstractmethod
    def prediction_type(self) -> pa.DataType:
        """The Arrow type of one prediction in a scored table."""

    @abstractmethod
    def truth_type(self) -> pa.DataType:
        """The Arrow type of the truth beside it."""

    def describe(self) -> dict[str, Any]:
        """The task and its parameters, for the API and the UI (a decision threshold only where
        answers are decisions)."""
        return {
            "task": self.name,
            "primary_metric": self.primary_metric,
            "decision_threshold": None,
        }


def thin(n: int, most: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most ``most`` evenly spread items of ``n``, first and last kept."""
    if n <= most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, most).round().astype(int))
