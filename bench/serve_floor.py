"""The Serve floor: a trivial deployment with the same path shape as rtml's predict routes.

Same proxy, same FastAPI ingress, same JSON body read and a JSON answer, no model: what any
request to a one-replica Serve deployment costs here. `bench/serve_latency.py` deploys it beside
the rtml application (route prefix ``/floor``) and subtracts its latency from rtml's.
"""

# No `from __future__ import annotations`: Serve's class-based views must see `Request` itself.
import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve

api = FastAPI()


@serve.deployment(name="Floor")
@serve.ingress(api)
class Floor:
    @api.post("/api/v1/{usecase}/{kind}/predict")
    async def predict(self, usecase: str, kind: str, request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        n = len(body) if isinstance(body, list) else 1
        return JSONResponse({"usecase": usecase, "kind": kind, "predictions": [{"value": 0.0}] * n})


def build(args: dict[str, Any]) -> Any:
    return Floor.bind()
