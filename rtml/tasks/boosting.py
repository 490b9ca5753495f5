"""The batch side that supervised tasks share: gradient-boosted trees (CatBoost).

CatBoost takes the spec's categoricals as they are (strings), stops early on a validation set,
reports its loss every round (so Ray Tune's ASHA can stop weak trials), and explains a prediction
with SHAP values. Classification and regression differ only in the model class, the loss and
what a prediction is; those are their own modules' business.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rtml.tasks.base import LABEL, Fit, Flavor, Task

if TYPE_CHECKING:
    import pandas as pd

    from rtml.usecases.base import UseCase

#: A trial's boosting rounds; early stopping ends most well before. With learning rates from
#: 0.05, 300 rounds reach the validation optimum (docs/batch.md has the measurement).
MAX_ITERATIONS = 300
EARLY_STOPPING_ROUNDS = 30


@dataclass(frozen=True)
class Boosted(Task):
    supervised: ClassVar[bool] = True
    flavor: ClassVar[Flavor] = "catboost"
    quick_params: ClassVar[dict[str, Any]] = {"depth": 4, "iterations": 30}
    explained_as: ClassVar[str] = "SHAP values (raw scale)"
    #: CatBoost's loss function: the one the use case is judged by where CatBoost has it.
    loss: ClassVar[str]

    @abstractmethod
    def catboost(self, params: Mapping[str, Any], common: dict[str, Any]) -> Any:
        """The CatBoost model of this task with the swept ``params`` and the ``common`` ones."""

    @abstractmethod
    def predict_values(self, model: Any, data: Any, **options: Any) -> list[Any]:
        """CatBoost's answers for ``data`` (a frame or rows of plain values); ``options`` go to
        its ``predict`` (``thread_count``)."""

    def search_space(self) -> dict[str, Any]:
        from ray import tune

        return {
            "depth": tune.randint(3, 9),
            "learning_rate": tune.loguniform(0.05, 0.3),
            "l2_leaf_reg": tune.loguniform(1.0, 10.0),
            "border_count": tune.choice([32, 64, 128, 254]),
        }

    def model(
        self,
        spec: UseCase,
        params: Mapping[str, Any],
        iterations: int = MAX_ITERATIONS,
        thread_count: int = 1,
        seed: int = 0,
    ) -> Any:
        common: dict[str, Any] = {
            "iterations": iterations,
            "depth": int(params.get("depth", 6)),
            "learning_rate": float(params.get("learning_rate", 0.1)),
            "l2_leaf_reg": float(params.get("l2_leaf_reg", 3.0)),
            "border_count": int(params.get("border_count", 254)),
            "cat_features": spec.categorical_names,
            "thread_count": thread_count,
            "random_seed": seed,
            "allow_writing_files": False,  # no catboost_info/ in the working folder
            "verbose": False,
        }
        return self.catboost(params, common)

    def fit(self, spec: UseCase, params: Mapping[str, Any], train: pd.DataFrame, run: Fit) -> Any:
        from rtml.batch.frames import frame_of

        iterations = int(params.get("iterations", MAX_ITERATIONS))
        model = self.model(spec, params, iterations, run.thread_count, run.seed)
        x, y = frame_of(spec, train), train[LABEL].to_numpy()
        valid, on_round, round_every = run.valid, run.on_round, run.round_every
        if valid is None:
            model.fit(x, y)
            return model
        loss = self.loss

        class Rounds:  # CatBoost's callback protocol
            def after_iteration(self, info: Any) -> bool:
                if on_round is None or (info.iteration + 1) % round_every:
                    return True
                (value,) = (v[-1] for k, v in info.metrics["validation"].items() if k == loss)
                return on_round(info.iteration + 1, float(value))

        model.fit(
            x,
            y,
            eval_set=(frame_of(spec, valid), valid[LABEL].to_numpy()),
            early_stopping_rounds=EARLY_STOPPING_ROUNDS,
            use_best_model=True,
            callbacks=[Rounds()],
        )
        return model

    @property
    def early_stopping(self) -> bool:
        return True

    def trial_loss(self, model: Any, valid_scores: Mapping[str, float]) -> float:
        best = model.get_best_score().get("validation", {})
        return float(next(iter(best.values()), float("nan")))

    def trial_report(self, model: Any) -> dict[str, Any]:
        return {"iterations": model.get_best_iteration() + 1}

    def refit_params(self, params: Mapping[str, Any], best: Mapping[str, Any]) -> dict[str, Any]:
        return {**params, "iterations": int(best["iterations"])}

    def batch_predict(self, model: Any, frame: pd.DataFrame) -> list[Any]:
        return self.predict_values(model, frame)

    def fast_predict(
        self, spec: UseCase, model: Any, rows: Sequence[Mapping[str, Any]]
    ) -> list[Any] | None:
        """CatBoost takes rows of values in the spec's feature order — numerics as floats,
        categoricals as strings, exactly the types the frame casts to — and treats the columns
        it was trained with as categorical as categorical, so the answer is the frame's (the
        serving integration test compares served and offline predictions). One thread: for a few
        rows CatBoost's thread pool costs more than the trees, and concurrent requests already
        keep the cores busy (docs/serving.md has the measurement)."""
        categorical = set(spec.categorical_names)
        names = spec.feature_names
        data = [[str(row[n]) if n in categorical else float(row[n]) for n in names] for row in rows]
        return self.predict_values(model, data, thread_count=1)

    def explain(self, spec: UseCase, model: Any, frame: pd.DataFrame) -> dict[str, float]:
        """SHAP values (``ShapValues``) in the model's raw scale; with the expected value they sum
        to the raw prediction."""
        from catboost import Pool

        names = spec.feature_names
        pool = Pool(frame, cat_features=spec.categorical_names)
        shap = model.get_feature_importance(pool, type="ShapValues")[0]
        return {name: float(v) for name, v in zip(names, shap[: len(names)], strict=True)}

    def feature_importance(self, spec: UseCase, model: Any) -> dict[str, float]:
        """``PredictionValuesChange`` (sums to 100)."""
        values = model.get_feature_importance()
        return {name: float(v) for name, v in zip(spec.feature_names, values, strict=True)}
