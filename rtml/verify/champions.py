"""Small batch models registered in seconds, for scenarios that need a champion to serve (the API
fuzzer, overload, tampering) without a lake and a sweep. They go through the registry's one path
(`registry.log_and_register`: signature, input example, rtml's signature tag) like any model."""

from __future__ import annotations

from rtml import registry, training
from rtml.settings import Settings
from rtml.usecases import get
from streaming.generators import generator_for

EXPERIMENT = "rtml-verify"


def register_small(settings: Settings, usecase: str, seed: int = 0, rows: int = 400) -> int:
    """Fit a small model of ``usecase`` on generated events and register it; return its version."""
    import mlflow

    spec = get(usecase)
    gen = generator_for(usecase, seed=seed)
    events = [spec.parse(next(gen).event) for _ in range(rows)]
    frame = registry.feature_frame(spec, [spec.features_of(e) for e in events])
    if spec.task == "clustering":
        model = training.fit_kmeans(spec, {"k": 4, "scaling": "standard"}, frame, seed=seed)
    else:
        labels = [spec.label_of(e) for e in events]
        if spec.task == "classification":
            labels[0], labels[1] = True, False  # both classes, whatever the draw
        frame[training.LABEL] = labels
        model = training.fit_catboost(spec, {"depth": 4}, frame, iterations=30)
    with mlflow.start_run(experiment_id=registry.experiment_id(settings, EXPERIMENT), run_name=f"{usecase}-small"):
        return registry.log_and_register(
            settings, usecase, model, registry.frame_of(spec, frame.head(20)), {}, tags={"rtml.verify": "small"}
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
