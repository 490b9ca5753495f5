"""The batch models' registry: one MLflow registered model per use case and its ``champion``
alias (the gate that moves it is :mod:`rtml.store.gate`).

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rtml.batch.frames import frame_of
from rtml.batch.model import BatchModel
from rtml.settings import Settings
from rtml.usecases import get

CHAMPION = "champion"
#: Tag of the registered model: versions that held the alias, oldest first ("3,5,7").
HISTORY_TAG = "champion_history"
METRIC_TAG_PREFIX = "metric."
SIGNATURE_TAG = "rtml.signature"
#: Files MLflow adds to a downloaded model folder by itself: not part of what was registered.
UNSIGNED_FILES = frozenset({"registered_model_meta"})


def model_name(usecase: str) -> str:
    """The MLflow registered model of a use case's batch model."""
    return f"rtml-{usecase}-batch"


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
    """Load a registered version with its native flavor from files checked against its signature."""
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
            if spec.task.flavor == "catboost"
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
    the version number. The alias is the gate's business (:mod:`rtml.store.gate`)."""
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
    if spec.task.flavor == "catboost":
        info = mlflow.catboost.log_model(model, **kwargs)
    else:
        # skops needs every type trusted by hand; the registry is rtml's own, pickle is fine.
        info = mlflow.sklearn.log_model(model, serialization_format="cloudpickle", **kwargs)
    version = int(info.registered_model_version)
    mlflow_client = client(settings)
    with tempfile.TemporaryDirectory() as tmp:
        signed = files_signature(_download(usecase, version, tmp), settings.signing_key)
    all_tags = {
        **{f"{METRIC_TAG_PREFIX}{k}": fmt(v) for k, v in metrics.items()},
        **(tags or {}),
        SIGNATURE_TAG: signed,
    }
    for key, value in all_tags.items():
        mlflow_client.set_model_version_tag(model_name(usecase), str(version), key, value)
    return version


def fmt(value: float) -> str:
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
        model_name(usecase), str(version), "promoted", f"{now()} {reason}"
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
    mlflow_client.set_model_version_tag(name, str(gone), "rollback.at", now())
    mlflow_client.set_model_version_tag(name, str(gone), "rollback.to", str(back))
    mlflow_client.set_model_version_tag(name, str(back), "rollback.from", str(gone))
    return back


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
