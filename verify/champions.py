"""Small batch models registered in seconds, for scenarios that need a champion to serve (the API
fuzzer, overload, tampering) without a lake and a sweep. They go through the registry's one path
(`registry.log_and_register`: signature, input example, rtml's signature tag) like any model."""

from __future__ import annotations

from rtml import registry, training
from rtml.settings import Settings
from rtml.usecases import get
from rtml.usecases.generators import generator_for

EXPERIMENT = "rtml-verify"


def register_small(settings: Settings, usecase: str, seed: int = 0, rows: int = 400) -> int:
    """Fit a small model of ``usecase`` on generated events, score it on as many fresh ones, and
    register it with those scores; return its version."""
    import mlflow

    spec = get(usecase)
    gen = generator_for(usecase, seed=seed)
    generated = [next(gen) for _ in range(2 * rows)]
    events = [spec.parse(g.event) for g in generated]
    frame = registry.feature_frame(spec, [spec.features_of(e) for e in events])
    if spec.task == "clustering":
        truth = [g.truth["segment"] for g in generated]
        model = training.fit_kmeans(
            spec, {"k": 4, "scaling": "standard"}, frame.iloc[:rows], seed=seed
        )
    else:
        truth = [spec.label_of(e) for e in events]
        if spec.task == "classification":
            truth[0], truth[1] = True, False  # both classes in the training half, whatever the draw
        train = frame.iloc[:rows].assign(**{training.LABEL: truth[:rows]})
        model = training.fit_catboost(spec, {"depth": 4}, train, iterations=30)
    holdout = frame.iloc[rows:].reset_index(drop=True)
    predictions = registry.BatchModel(usecase, 0, {}, model).predict(holdout)
    scores = registry.evaluate(spec, predictions, truth[rows:], holdout)
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
