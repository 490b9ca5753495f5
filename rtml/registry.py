"""The batch models' registry: one MLflow registered model per use case, the ``champion`` alias,
and the promotion gate that moves it.

Every path that feeds a batch model goes through :func:`feature_frame` — a serving request (the
dict :meth:`UseCase.features_of` builds), a row of the batch feature SQL
(:func:`rtml.features.feature_sql`), a training table — so the columns, their order and their
types are the ones the model was trained on, by construction. Categoricals stay strings: CatBoost
treats them as categorical features and the KMeans pipeline one-hot encodes them itself; nobody
invents integer codes that could differ between training and serving.

Models are logged with MLflow's own flavors (``mlflow.catboost`` for ``tfd``/``eta``,
``mlflow.sklearn`` for the ``ecci`` KMeans pipeline), with a signature and an input example, and
loaded back natively. What rtml needs to know about a version lives in its tags:

- ``metric.<name>``: the version's scores on its training run's holdout (``champion()`` reads
  them in the one REST call that also resolves the alias, so serving can poll it cheaply);
- ``gate.*``: the promotion gate's decision, the metric, both scores and the champion it faced;
- ``rollback.*``: when an alias was moved back from this version by hand.
- ``rtml.signature``: an HMAC of the model's files under the settings' signing key, taken when
  rtml registered it. :func:`load` downloads the files, checks them against it, and refuses
  (:class:`ModelRefused`) a version whose files were altered, or that rtml did not sign, before
  anything is unpickled; it then loads exactly the files it checked.

The registered model's tag ``champion_history`` lists the versions that held the alias, oldest
first; :func:`rollback` pops it, so a rollback always returns to the previous champion (not to
"the version number below").

Core module: MLflow, CatBoost and scikit-learn, no Ray.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from rtml.features import FeatureValue
from rtml.settings import Settings
from rtml.usecases import UseCase, get

CHAMPION = "champion"
#: Tag of the registered model: versions that held the alias, oldest first ("3,5,7").
HISTORY_TAG = "champion_history"
METRIC_TAG_PREFIX = "metric."
SIGNATURE_TAG = "rtml.signature"
#: Files MLflow adds to a downloaded model folder by itself: not part of what was registered.
UNSIGNED_FILES = frozenset({"registered_model_meta"})

Flavor = Literal["catboost", "sklearn"]
GateDecision = Literal["promoted", "rejected", "first"]


def model_name(usecase: str) -> str:
    """The MLflow registered model of a use case's batch model."""
    return f"rtml-{usecase}-batch"


def flavor(spec: UseCase) -> Flavor:
    """Supervised use cases are CatBoost models; clustering is a scikit-learn KMeans pipeline."""
    return "sklearn" if spec.task == "clustering" else "catboost"


# -- features: one frame for every path ----------------------------------------------------------


def categorical_names(spec: UseCase) -> list[str]:
    return [f.name for f in spec.features if f.kind == "categorical"]


def numeric_names(spec: UseCase) -> list[str]:
    return [f.name for f in spec.features if f.kind == "numeric"]


def frame_of(spec: UseCase, frame: pd.DataFrame) -> pd.DataFrame:
    """The spec's feature columns of ``frame``, in the spec's order, with the trained dtypes.

    Numeric features are float64 (a missing one is NaN, which CatBoost handles); categoricals are
    strings and must be present (CatBoost refuses a missing categorical, and "" would be a silent
    new category). Extra columns (ids, targets, truth) are dropped.
    """
    missing = [name for name in spec.feature_names if name not in frame.columns]
    if missing:
        raise ValueError(f"{spec.name}: missing feature(s) {', '.join(missing)}")
    out = pd.DataFrame(index=frame.index)
    for feature in spec.features:
        column = frame[feature.name]
        if feature.kind == "numeric":
            out[feature.name] = pd.to_numeric(column, errors="raise").astype("float64")
        else:
            if column.isna().any():
                raise ValueError(f"{spec.name}: categorical feature {feature.name} is missing")
            out[feature.name] = column.astype(str)
    return out


def feature_frame(spec: UseCase, rows: Sequence[Mapping[str, FeatureValue]]) -> pd.DataFrame:
    """Feature dicts (from ``spec.features_of(event)`` or rows of the batch feature SQL) as the
    frame the batch models were trained on: ``spec.feature_names`` in order, float64 numerics,
    string categoricals."""
    if isinstance(rows, pd.DataFrame):
        return frame_of(spec, rows)
    names = spec.feature_names
    try:
        data = {name: [row[name] for row in rows] for name in names}
    except KeyError as exc:
        raise ValueError(f"{spec.name}: missing feature {exc.args[0]}") from None
    return frame_of(spec, pd.DataFrame(data, columns=names))


# -- evaluation: the same numbers for the sweep, the gate and the CLI ------------------------------


def reference_space(spec: UseCase, frame: pd.DataFrame) -> np.ndarray:
    """A fixed space to judge clusterings in: numerics standardized, categoricals one-hot.

    Silhouette depends on the space it is measured in; judging each KMeans in its own (scaled or
    not) space would let a model win by its choice of scaling. Every clustering of the same rows
    is scored in this one space, fitted on those rows, so scores are comparable.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    space = ColumnTransformer(
        [
            ("num", StandardScaler(), numeric_names(spec)),
            ("cat", OneHotEncoder(sparse_output=False), categorical_names(spec)),
        ]
    )
    return np.asarray(space.fit_transform(frame_of(spec, frame)))


def evaluate(
    spec: UseCase,
    predictions: Sequence[Any],
    truth: Sequence[Any],
    frame: pd.DataFrame | None = None,
) -> dict[str, float]:
    """Scores of predictions against the truth with the spec's metrics (``rtml.scoring``).

    ``truth`` is the label for supervised use cases and the true segment for clustering (which
    also needs ``frame``, the features the clusters are judged in).
    """
    from rtml.scoring import classification_scores, clustering_scores, regression_scores

    if spec.task == "classification":
        return classification_scores(
            [bool(y) for y in truth], list(predictions), spec.decision_threshold
        )
    if spec.task == "regression":
        return regression_scores([float(y) for y in truth], list(predictions))
    if frame is None:
        raise ValueError("clustering scores need the feature frame")
    return clustering_scores(reference_space(spec, frame), list(predictions), list(truth))


# -- the model as rtml uses it -------------------------------------------------------------------


@dataclass
class BatchModel:
    """A registered version, loaded natively: predictions, explanations, importances.

    ``predict`` returns, per row: ``tfd`` the probability of fraud, ``eta`` the travel time in
    seconds, ``ecci`` the cluster id.
    """

    usecase: str
    version: int
    metrics: dict[str, float]
    model: Any  # a CatBoostClassifier / CatBoostRegressor, or a scikit-learn Pipeline(KMeans)
    run_id: str = ""

    @property
    def spec(self) -> UseCase:
        return get(self.usecase)

    def frame(self, rows: Sequence[Mapping[str, FeatureValue]] | pd.DataFrame) -> pd.DataFrame:
        return feature_frame(self.spec, rows)

    def predict(self, rows: Sequence[Mapping[str, FeatureValue]] | pd.DataFrame) -> list:
        frame = self.frame(rows)
        if frame.empty:
            return []
        task = self.spec.task
        if task == "classification":
            return [float(p) for p in self.model.predict_proba(frame)[:, 1]]
        if task == "regression":
            return [float(p) for p in self.model.predict(frame)]
        return [int(c) for c in self.model.predict(frame)]

    def explain(self, row: Mapping[str, FeatureValue]) -> dict[str, float]:
        """Per-feature contributions to this row's prediction.

        CatBoost: SHAP values (``ShapValues``), in the model's raw scale (log-odds for ``tfd``,
        seconds for ``eta``); with the expected value they sum to the raw prediction.
        KMeans: each feature's share of the squared distance from the row to the centre it was
        assigned to, in the model's own (scaled, one-hot) space, one-hot columns summed back to
        their feature. Small means "typical of its cluster", large means "pulls it away".
        """
        frame = self.frame([row])
        names = self.spec.feature_names
        if flavor(self.spec) == "catboost":
            from catboost import Pool

            pool = Pool(frame, cat_features=categorical_names(self.spec))
            shap = self.model.get_feature_importance(pool, type="ShapValues")[0]
            return {name: float(v) for name, v in zip(names, shap[: len(names)], strict=True)}
        encode, kmeans = self.model[:-1], self.model[-1]
        x = np.asarray(encode.transform(frame))[0]
        centre = kmeans.cluster_centers_[int(kmeans.predict(x.reshape(1, -1))[0])]
        return _group_by_feature(names, encode.get_feature_names_out(), (x - centre) ** 2)

    def feature_importance(self) -> dict[str, float]:
        """How much each feature matters to the model overall.

        CatBoost: ``PredictionValuesChange`` (sums to 100). KMeans: the spread (variance) of the
        cluster centres along each feature, one-hot columns summed back, as shares of one — a
        feature on which all centres agree separates no clusters.
        """
        names = self.spec.feature_names
        if flavor(self.spec) == "catboost":
            values = self.model.get_feature_importance()
            return {name: float(v) for name, v in zip(names, values, strict=True)}
        encode, kmeans = self.model[:-1], self.model[-1]
        spread = kmeans.cluster_centers_.var(axis=0)
        grouped = _group_by_feature(names, encode.get_feature_names_out(), spread)
        total = sum(grouped.values()) or 1.0
        return {name: v / total for name, v in grouped.items()}


def _group_by_feature(
    names: Sequence[str], columns: Sequence[str], values: np.ndarray
) -> dict[str, float]:
    """Sum encoded columns (``num__amount``, ``cat__currency_EUR``) back to their feature."""
    out = dict.fromkeys(names, 0.0)
    for column, value in zip(columns, values, strict=True):
        out[_feature_of(column, names)] += float(value)
    return out


def _feature_of(column: str, names: Sequence[str]) -> str:
    bare = column.split("__", 1)[-1]
    # The longest name that prefixes the column: "device_type_mobile" is device_type's.
    matches = [n for n in names if bare == n or bare.startswith(f"{n}_")]
    if not matches:
        raise ValueError(f"encoded column {column!r} belongs to no feature")
    return max(matches, key=len)


# -- MLflow ---------------------------------------------------------------------------------------


def client(settings: Settings) -> Any:
    """An MLflow client of the settings' server; also points this process's MLflow there, since
    the flavors' ``log_model``/``load_model`` use the process-wide tracking URI."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.mlflow_uri)
    mlflow.set_registry_uri(settings.mlflow_uri)
    return MlflowClient(tracking_uri=settings.mlflow_uri, registry_uri=settings.mlflow_uri)


def experiment_id(settings: Settings, name: str) -> str:
    """The id of MLflow experiment ``name``, created if missing. Pass it to ``start_run`` rather
    than calling ``mlflow.set_experiment``, which sets ``MLFLOW_EXPERIMENT_ID`` for the whole
    process — and Ray Tune's MLflow callback prefers that variable to the experiment it is given."""
    mlflow_client = client(settings)
    found = mlflow_client.get_experiment_by_name(name)
    return found.experiment_id if found else mlflow_client.create_experiment(name)


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def _metrics_of(tags: Mapping[str, str]) -> dict[str, float]:
    return {
        k.removeprefix(METRIC_TAG_PREFIX): float(v)
        for k, v in tags.items()
        if k.startswith(METRIC_TAG_PREFIX)
    }


@dataclass
class ChampionInfo:
    version: int
    run_id: str
    metrics: dict[str, float]


def champion(settings: Settings, usecase: str) -> ChampionInfo | None:
    """The version holding the ``champion`` alias, or None (one REST call: cheap to poll)."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client(settings).get_model_version_by_alias(model_name(usecase), CHAMPION)
    except MlflowException as exc:
        if _not_found(exc):
            return None
        raise
    return ChampionInfo(int(mv.version), mv.run_id or "", _metrics_of(mv.tags or {}))


class ModelRefused(RuntimeError):
    """A registered version whose files do not match rtml's signature: not loaded."""


def files_signature(folder: Path, key: bytes) -> str:
    """HMAC-SHA256 of every file of a model folder: names and contents, in a fixed order."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for path in sorted(
        p for p in folder.rglob("*") if p.is_file() and p.name not in UNSIGNED_FILES
    ):
        name = path.relative_to(folder).as_posix().encode()
        data = path.read_bytes()
        mac.update(len(name).to_bytes(4, "big") + name + len(data).to_bytes(8, "big") + data)
    return mac.hexdigest()


def _download(usecase: str, version: int, into: str) -> Path:
    import mlflow.artifacts

    return Path(
        mlflow.artifacts.download_artifacts(
            f"models:/{model_name(usecase)}/{version}", dst_path=into
        )
    )


def load(settings: Settings, usecase: str, version: int) -> BatchModel:
    """Load a registered version with its native flavor, from files checked against its signature."""
    import mlflow.catboost
    import mlflow.sklearn

    spec = get(usecase)
    mv = client(settings).get_model_version(model_name(usecase), str(version))
    expected = (mv.tags or {}).get(SIGNATURE_TAG)
    where = f"{model_name(usecase)} version {version}"
    if not expected:
        raise ModelRefused(
            f"{where} carries no rtml signature (registered outside rtml?): refused, not loaded"
        )
    with tempfile.TemporaryDirectory() as tmp:
        folder = _download(usecase, version, tmp)
        if not hmac.compare_digest(files_signature(folder, settings.signing_key), expected):
            raise ModelRefused(
                f"{where}: its files do not match its signature (altered, or signed with "
                f"another key): refused, not loaded"
            )
        local = str(folder)
        native = (
            mlflow.catboost.load_model(local)
            if flavor(spec) == "catboost"
            else mlflow.sklearn.load_model(local)
        )
    return BatchModel(usecase, int(version), _metrics_of(mv.tags or {}), native, mv.run_id or "")


def load_champion(settings: Settings, usecase: str) -> BatchModel | None:
    info = champion(settings, usecase)
    return None if info is None else load(settings, usecase, info.version)


def log_and_register(
    settings: Settings,
    usecase: str,
    model: Any,
    example: pd.DataFrame,
    metrics: Mapping[str, float],
    tags: Mapping[str, str] | None = None,
) -> int:
    """Log a fitted model in the active MLflow run with its signature and input example, register
    it as a new version of ``rtml-<usecase>-batch`` with its holdout metrics as tags, and return
    the version number. The alias is the gate's business (:func:`gate`)."""
    import mlflow
    import mlflow.catboost
    import mlflow.sklearn
    from mlflow.models import infer_signature

    spec = get(usecase)
    example = frame_of(spec, example)
    wrapped = BatchModel(usecase, 0, {}, model)
    signature = infer_signature(example, np.asarray(wrapped.predict(example)))
    kwargs: dict[str, Any] = {
        "name": "model",
        "signature": signature,
        "input_example": example.head(5),
        "registered_model_name": model_name(usecase),
    }
    if flavor(spec) == "catboost":
        info = mlflow.catboost.log_model(model, **kwargs)
    else:
        # skops needs every type trusted by hand; the registry is rtml's own, pickle is fine.
        info = mlflow.sklearn.log_model(model, serialization_format="cloudpickle", **kwargs)
    version = int(info.registered_model_version)
    mlflow_client = client(settings)
    with tempfile.TemporaryDirectory() as tmp:
        signed = files_signature(_download(usecase, version, tmp), settings.signing_key)
    all_tags = {
        **{f"{METRIC_TAG_PREFIX}{k}": _fmt(v) for k, v in metrics.items()},
        **(tags or {}),
        SIGNATURE_TAG: signed,
    }
    for key, value in all_tags.items():
        mlflow_client.set_model_version_tag(model_name(usecase), str(version), key, value)
    return version


def _fmt(value: float) -> str:
    return repr(float(value))


# -- listing, promotion, rollback ----------------------------------------------------------------


@dataclass
class VersionInfo:
    version: int
    run_id: str
    aliases: list[str]
    metrics: dict[str, float]
    gate: str  # promoted / rejected / first / "" (not gated)
    created: float  # seconds since the epoch
    tags: dict[str, str] = field(default_factory=dict)


def versions(settings: Settings, usecase: str) -> list[VersionInfo]:
    """Every version of the use case's model, newest first, with scores, aliases and the gate."""
    from mlflow.exceptions import MlflowException

    mlflow_client = client(settings)
    try:
        registered = mlflow_client.get_registered_model(model_name(usecase))
    except MlflowException as exc:
        if _not_found(exc):
            return []
        raise
    # search_model_versions leaves aliases empty; the registered model maps alias → version.
    aliases: dict[int, list[str]] = {}
    for alias, version in (registered.aliases or {}).items():
        aliases.setdefault(int(version), []).append(alias)
    found = mlflow_client.search_model_versions(f"name = '{model_name(usecase)}'")
    out = [
        VersionInfo(
            version=int(mv.version),
            run_id=mv.run_id or "",
            aliases=aliases.get(int(mv.version), []),
            metrics=_metrics_of(mv.tags or {}),
            gate=(mv.tags or {}).get("gate.decision", ""),
            created=(mv.creation_timestamp or 0) / 1000,
            tags=dict(mv.tags or {}),
        )
        for mv in found
    ]
    return sorted(out, key=lambda v: v.version, reverse=True)


def trials(
    settings: Settings, usecase: str, sweep: str | None = None, most: int = 500
) -> list[dict[str, Any]]:
    """The trials of the use case's sweeps (experiment ``rtml-<usecase>-tune``, one MLflow run per
    trial, logged by Tune's MLflow callback), newest first; only one sweep's with ``sweep``."""
    if sweep is not None and not sweep.replace("T", "").isdigit():  # it goes into the filter
        raise ValueError(f"{sweep!r} is not a sweep id (like 20261203T081500)")
    mlflow_client = client(settings)
    experiment = mlflow_client.get_experiment_by_name(f"rtml-{usecase}-tune")
    if experiment is None:
        return []
    where = f"tags.sweep = '{sweep}'" if sweep else ""
    runs = mlflow_client.search_runs(
        [experiment.experiment_id],
        filter_string=where,
        max_results=most,
        order_by=["attributes.start_time DESC"],
    )
    return [
        {
            "run_id": r.info.run_id,
            "sweep": r.data.tags.get("sweep"),
            "status": r.info.status,
            "params": dict(r.data.params),
            "metrics": {
                k: v
                for k, v in r.data.metrics.items()
                if math.isfinite(v) and not _tune_bookkeeping(k)
            },
            "start_time": (r.info.start_time or 0) / 1000,
        }
        for r in runs
    ]


#: What Tune's MLflow callback logs beside a trial's own scores: its clock, counters and config.
TUNE_BOOKKEEPING = frozenset(
    {
        "timestamp",
        "time_this_iter_s",
        "time_total_s",
        "time_since_restore",
        "pid",
        "done",
        "training_iteration",
        "iterations_since_restore",
        "timesteps_total",
        "episodes_total",
        "timesteps_since_restore",
        "warmup_time",
    }
)


def _tune_bookkeeping(name: str) -> bool:
    return name in TUNE_BOOKKEEPING or name.startswith("config/")


def _history(mlflow_client: Any, usecase: str) -> list[int]:
    tags = mlflow_client.get_registered_model(model_name(usecase)).tags or {}
    return [int(v) for v in tags.get(HISTORY_TAG, "").split(",") if v]


def _set_champion(mlflow_client: Any, usecase: str, version: int, history: list[int]) -> None:
    name = model_name(usecase)
    mlflow_client.set_registered_model_alias(name, CHAMPION, str(version))
    mlflow_client.set_registered_model_tag(name, HISTORY_TAG, ",".join(map(str, history)))


def promote(settings: Settings, usecase: str, version: int, reason: str = "by hand") -> None:
    """Give ``version`` the champion alias (recorded in the history and on the version)."""
    mlflow_client = client(settings)
    mlflow_client.get_model_version(model_name(usecase), str(version))  # fails if unknown
    history = [v for v in _history(mlflow_client, usecase) if v != version] + [version]
    _set_champion(mlflow_client, usecase, version, history)
    mlflow_client.set_model_version_tag(
        model_name(usecase), str(version), "promoted", f"{_now()} {reason}"
    )


def rollback(settings: Settings, usecase: str) -> int:
    """Move the alias back to the previous champion; return its version.

    The version rolled back from is tagged ``rollback.at`` (and leaves the history), so a second
    rollback goes one further back. Fails when there is no earlier champion.
    """
    mlflow_client = client(settings)
    history = _history(mlflow_client, usecase)
    current = champion(settings, usecase)
    if current is not None and history and history[-1] != current.version:
        history.append(current.version)  # promoted outside rtml: trust the alias
    if len(history) < 2:
        raise ValueError(f"{model_name(usecase)} has no earlier champion to roll back to")
    gone, back = history[-1], history[-2]
    _set_champion(mlflow_client, usecase, back, history[:-1])
    name = model_name(usecase)
    mlflow_client.set_model_version_tag(name, str(gone), "rollback.at", _now())
    mlflow_client.set_model_version_tag(name, str(gone), "rollback.to", str(back))
    mlflow_client.set_model_version_tag(name, str(back), "rollback.from", str(gone))
    return back


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# -- the promotion gate --------------------------------------------------------------------------


@dataclass
class GateResult:
    version: int
    decision: GateDecision
    metric: str
    candidate_score: float
    champion_version: int | None
    champion_score: float | None

    @property
    def promoted(self) -> bool:
        return self.decision != "rejected"


def beats(spec: UseCase, candidate: float, incumbent: float) -> bool:
    """Strictly better by the spec's primary metric (a tie keeps the incumbent)."""
    if math.isnan(candidate):
        return False
    if math.isnan(incumbent):
        return True
    return candidate > incumbent if spec.higher_is_better else candidate < incumbent


def gate(
    settings: Settings,
    usecase: str,
    version: int,
    holdout: pd.DataFrame,
    truth: Sequence[Any],
) -> GateResult:
    """Promote ``version`` only if it beats the current champion on the same holdout.

    Both models score the very same rows (the newest events of this training run) with the
    spec's primary metric; the decision, the metric and both scores become tags of ``version``
    (``gate.*``). The first version of a model becomes champion unopposed (``first``).
    """
    spec = get(usecase)
    metric = spec.primary_metric
    candidate = load(settings, usecase, version)
    cand_score = evaluate(spec, candidate.predict(holdout), truth, holdout)[metric]
    current = champion(settings, usecase)
    champ_score: float | None = None
    if current is None or current.version == version:
        decision: GateDecision = "first"
    else:
        incumbent = load(settings, usecase, current.version)
        champ_score = evaluate(spec, incumbent.predict(holdout), truth, holdout)[metric]
        decision = "promoted" if beats(spec, cand_score, champ_score) else "rejected"
    result = GateResult(
        version, decision, metric, cand_score, current.version if current else None, champ_score
    )
    tags = {
        "gate.decision": decision,
        "gate.metric": metric,
        "gate.candidate_score": _fmt(cand_score),
        "gate.champion_version": str(result.champion_version or ""),
        "gate.champion_score": "" if champ_score is None else _fmt(champ_score),
        "gate.holdout_rows": str(len(holdout)),
        "gate.at": _now(),
    }
    mlflow_client = client(settings)
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(model_name(usecase), str(version), key, value)
    if result.promoted:
        promote(settings, usecase, version, reason=f"gate: {decision}")
    return result
