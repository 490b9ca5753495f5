"""Small batch models registered in seconds, for scenarios that need a champion to serve (the API
fuzzer, overload, tampering) without a lake and a sweep. They go through the registry's one path
(`registry.log_and_register`: signature, input example, rtml's signature tag) like any model."""

from __future__ import annotations

from rtml.batch.frames import feature_frame
from rtml.batch.model import BatchModel, evaluate
from rtml.settings import Settings
from rtml.store import registry
from rtml.tasks.base import Fit
from rtml.usecases import get
from rtml.usecases.base import dumps
from rtml.usecases.generators import generator_for

EXPERIMENT = "rtml-verify"


def register_small(settings: Settings, usecase: str, seed: int = 0, rows: int = 400) -> int:
    """Fit a small model of ``usecase`` on generated events, score it on as many fresh ones, and
    register it with those scores; return its version."""
    import mlflow

    spec = get(usecase)
    gen = generator_for(usecase, seed=seed)
    generated = [next(gen) for _ in range(2 * rows)]
    if spec.task.supervised:  # both answers in the training half, whatever the draw
        labels = [g.event[spec.label] for g in generated]
        other = next((i for i in range(rows, 2 * rows) if labels[i] != labels[0]), None)
        if len(set(labels[:rows])) < 2 and other is not None:
            generated[1], generated[other] = generated[other], generated[1]
    events = [spec.parse(g.event) for g in generated]
    frame = feature_frame(spec, [spec.features_of(e) for e in events])
    if spec.task.supervised:
        truth = [spec.label_of(e) for e in events]
    else:
        truth = [spec.oracle_of(dumps(g.truth)) for g in generated]
    train = frame.iloc[:rows].assign(**{spec.task.truth_column: truth[:rows]})
    model = spec.task.fit(spec, spec.task.quick_params, train, Fit(seed=seed))
    holdout = frame.iloc[rows:].reset_index(drop=True)
    predictions = BatchModel(usecase, 0, {}, model).predict(holdout)
    scores = evaluate(spec, predictions, truth[rows:], holdout)
    with mlflow.start_run(
        experiment_id=registry.experiment_id(settings, EXPERIMENT), run_name=f"{usecase}-small"
    ):
        return registry.log_and_register(
            settings, usecase, model, frame.head(20), scores, tags={"rtml.verify": "small"}
        )


def ensure_champions(settings: Settings, usecases: list[str], seed: int = 0) -> dict[str, int]:
    """A champion for every use case that has none (a small model, promoted by hand)."""
    out = {}
    for name in usecases:
        current = registry.champion(settings, name)
        if current is None:
            version = register_small(settings, name, seed)
            registry.promote(settings, name, version, reason="verify: a small model to serve")
            out[name] = version
        else:
            out[name] = current.version
    return out
