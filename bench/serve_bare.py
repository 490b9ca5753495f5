"""The precursor's design, as a baseline: the same models behind a bare FastAPI app in one uvicorn
process (no Ray). Incremental answers come from the learner's latest checkpoint loaded into the
process, batch answers from the registry champion; requests are parsed, featurized and predicted
exactly as rtml does (the spec's schema, ``spec.features_of``, the path memo of ``predict_many``,
CatBoost without a DataFrame via ``BatchModel.fast_predict``), so only the serving around the
models differs.

    python bench/serve_bare.py --port 8100 [--usecase tfd]   (settings from RTML_* variables)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ray_apps.serving.requests import parse_events, predict_model
from rtml.checkpoint import RedisCheckpoints
from rtml.online import predict_many
from rtml.settings import load_settings
from rtml.store import registry
from rtml.usecases import get


def make_app(usecase: str) -> FastAPI:
    settings = load_settings()
    spec = get(usecase)
    store = RedisCheckpoints.of(settings)
    loaded = store.load(usecase, 0)
    assert loaded is not None, "no checkpoint to serve"
    online = loaded[1].model
    champion = registry.load_champion(settings, usecase)
    assert champion is not None, "no champion to serve"
    app = FastAPI()

    async def features(request: Request) -> tuple[list[dict[str, Any]], bool]:
        parsed = parse_events(json.loads(await request.body()), predict_model(usecase), 10_000)
        return [spec.features_of(e) for e in parsed.events], parsed.many

    @app.post(f"/api/v1/{usecase}/incremental/predict")
    async def incremental(request: Request) -> JSONResponse:
        xs, many = await features(request)
        preds = [{"probability": p} for p in predict_many(spec, online, xs)]
        return JSONResponse({"predictions": preds} if many else {"prediction": preds[0]})

    @app.post(f"/api/v1/{usecase}/batch/predict")
    async def batch(request: Request) -> JSONResponse:
        xs, many = await features(request)
        preds = [{"probability": p} for p in champion.fast_predict(xs)]
        return JSONResponse({"predictions": preds} if many else {"prediction": preds[0]})

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--usecase", default="tfd")
    args = parser.parse_args()
    uvicorn.run(
        make_app(args.usecase),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )
