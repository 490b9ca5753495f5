"""The batch side: serve the MLflow registry's champion of a use case (``rtml.store.registry``).

A background thread polls the alias (one REST call) every ``serve_champion_poll_s``; when it moves,
the new version is loaded in that thread and swapped in with one assignment, so requests keep
being answered by the old model while the new one loads and never wait for a load. Until a
champion exists the answer is 503 with the reason.

Features go through ``rtml.batch.frames.feature_frame`` — the same function the training job
used — so serving cannot invent its own encoding of a categorical (no training/serving skew).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from ray_apps.serving.cache import PredictionCache, cache_key
from ray_apps.serving.incremental import NoModel
from ray_apps.serving.metrics import ServeMetrics
from rtml.settings import Settings
from rtml.usecases.base import UseCase

log = logging.getLogger("ray.serve")


#: Up to this many rows are predicted on the event loop (~0.1 ms); more go to a thread.
INLINE_ROWS = 16


class Batch:
    def __init__(
        self, spec: UseCase, settings: Settings, cache: PredictionCache, metrics: ServeMetrics
    ) -> None:
        self.spec, self.settings, self.cache, self.metrics = spec, settings, cache, metrics
        self.model: Any | None = None  # an rtml.batch.model.BatchModel
        self.reason = "no champion checked yet (the deployment has just started)"
        self.checked_at = 0.0
        #: champion versions whose files failed their signature: never loaded, not tried again
        self.refused: dict[int, str] = {}
        self.tags = {"usecase": spec.name, "kind": "batch"}

    # -- the champion, followed in the background ----------------------------------------------
    def poll_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # noqa: BLE001 - MLflow down: keep serving what we have
                self.reason = (
                    f"champion of {self.spec.name} not checked: {type(exc).__name__}: {exc}"
                )
                log.warning(self.reason)
            self.export_gauges()
            stop.wait(self.settings.serve_champion_poll_s)

    def export_gauges(self) -> None:
        """The served version (0 while there is no champion) and the champion's metrics, again:
        Ray exports a gauge only for a short while after its last set, so a value set once at a
        swap would vanish from Prometheus (and `RtmlNoChampion` would never see the 0)."""
        model = self.model
        self.metrics.model_version.set(model.version if model else 0, tags=self.tags)
        for name, value in (model.metrics if model else {}).items():
            self.metrics.champion_metric.set(value, tags={**self.tags, "metric": name})

    def poll_once(self) -> None:
        from rtml.store import registry

        info = registry.champion(self.settings, self.spec.name)
        self.checked_at = time.time()
        if info is None:
            if self.model is None:
                self.reason = (
                    f"no batch model for {self.spec.name} yet: the registry has no "
                    f"'{registry.CHAMPION}' of {registry.model_name(self.spec.name)}; train one "
                    f"with `rtml train {self.spec.name}`"
                )
            return
        if (
            self.model is not None and self.model.version == info.version
        ) or info.version in self.refused:
            return
        try:
            model = registry.load(self.settings, self.spec.name, info.version)
        except registry.ModelRefused as exc:
            self.refused[info.version] = str(exc)
            self.metrics.refused.inc(tags=self.tags)
            log.error(
                "%s batch: %s; still serving %s",
                self.spec.name,
                exc,
                self.model.version if self.model else "nothing",
            )
            if self.model is None:
                self.reason = f"no batch model for {self.spec.name}: {exc}"
            return
        previous, self.model = self.model, model  # the swap: one assignment
        if previous is not None:
            self.metrics.swaps.inc(tags=self.tags)
        log.info(
            "%s batch: serving version %s (was %s)",
            self.spec.name,
            model.version,
            previous.version if previous else None,
        )

    def current(self) -> Any:
        model = self.model
        if model is None:
            raise NoModel(self.reason)
        return model

    # -- answers ---------------------------------------------------------------------------------
    async def predict(
        self,
        rows: list[dict[str, Any]],
        use_cache: bool = True,
        entities: list[str] | None = None,
    ) -> dict[str, Any]:
        """``entities``: each row's entity-memory version (part of its cache key)."""
        model = self.current()  # one model answers the whole request, even across a swap
        values: list[Any | None] = [None] * len(rows)
        keys: list[str] = []
        use_cache = use_cache and self.cache.enabled
        if use_cache:
            versions = entities or [""] * len(rows)
            keys = [
                cache_key(self.spec.name, model.version, row, v)
                for row, v in zip(rows, versions, strict=True)
            ]
            values = await self.cache.get_many(keys)
        missing = [i for i, v in enumerate(values) if v is None]
        missed = set(missing)
        if use_cache:
            hits = len(rows) - len(missing)
            if hits:
                self.metrics.cache.inc(hits, tags={**self.tags, "result": "hit"})
            if missing:
                self.metrics.cache.inc(len(missing), tags={**self.tags, "result": "miss"})
        if missing:
            todo = [rows[i] for i in missing]
            fresh = (
                model.fast_predict(todo)
                if len(todo) <= INLINE_ROWS
                else (await asyncio.to_thread(model.fast_predict, todo))
            )
            for i, value in zip(missing, fresh, strict=True):
                values[i] = value
            if use_cache:
                await self.cache.put_many({keys[i]: values[i] for i in missing})
        return {
            "predictions": [self.shape(v) for v in values],
            "model_version": model.version,
            "cached": [use_cache and i not in missed for i in range(len(rows))],
        }

    def shape(self, value: Any) -> dict[str, Any]:
        return self.spec.task.answer(self.spec, value)

    async def explain(self, row: dict[str, Any]) -> dict[str, Any]:
        model = self.current()
        contributions = await asyncio.to_thread(model.explain, row)
        prediction = (await asyncio.to_thread(model.predict, [row]))[0]
        return {
            "prediction": self.shape(prediction),
            "contributions": contributions,
            "model_version": model.version,
            "explained_as": self.spec.task.explained_as,
        }

    def describe(self) -> dict[str, Any]:
        model = self.model
        refused = {str(v): why for v, why in self.refused.items()}
        if model is None:
            return {"version": None, "reason": self.reason, "refused": refused}
        try:
            importance = model.feature_importance()
        except Exception:  # noqa: BLE001 - a description without importances is still one
            importance = None
        return {
            "version": model.version,
            "run_id": model.run_id,
            "metrics": model.metrics,
            "feature_importance": importance,
            "checked_at": self.checked_at,
            "refused": refused,
        }
