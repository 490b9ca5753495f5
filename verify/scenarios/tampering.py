"""Tampering: an altered learner checkpoint (in Redis, then in its MLflow snapshot too) and an
altered batch model artifact are refused, never loaded. A learner whose Redis checkpoint fails
its signature comes back from its snapshot instead; with both altered it stays stopped and says
why. A champion whose files were altered after rtml signed them is not loaded: `registry.load`
refuses it, and the serving replica keeps the previous champion."""

from __future__ import annotations

import time

import httpx
import ray

from ray_apps.learning import actor as learner
from rtml.checkpoint import MlflowSnapshots, RedisCheckpoints
from rtml.store import registry
from streaming.producer import produce
from verify.context import Context
from verify.fleet import Fleet
from verify.verdict import Verdict

NAME = "tampering"
SUMMARY = "altered checkpoints (Redis, MLflow snapshot) and model artifacts: refused, never loaded"
NEEDS = ("kafka", "redis", "mlflow", "ray", "api")
USECASE = "eta"


def _flip(blob: bytes) -> bytes:
    """The same blob with one byte of its payload changed (past the 32-byte signature)."""
    i = 32 + (len(blob) - 32) // 2
    return blob[:i] + bytes([blob[i] ^ 0x01]) + blob[i + 1 :]


def _status_when(handle, done, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = ray.get(handle.status.remote(), timeout=30)
        if done(status) or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


def _checkpoints(ctx: Context, verdict: Verdict) -> None:
    settings = ctx.settings
    fleet = Fleet(settings, [USECASE], say=ctx.say)
    fleet.reset()
    produce(settings, [USECASE], rate=0, count=400, seed=ctx.seed)
    fleet.start()
    handle = learner.find(USECASE)
    status = _status_when(handle, lambda s: s.get("learned", 0) >= 400)
    final = learner.stop(USECASE) or {}
    learned = final.get("learned", 0)
    verdict.expect(
        learned == 400 and "error" not in final.get("snapshot", {"error": "none"}),
        f"set-up: learned {learned}, snapshot {final.get('snapshot')}",
    )
    store = RedisCheckpoints.of(settings)
    name = f"rtml:checkpoint:{USECASE}:0"

    # 1. Redis altered: refused; the learner comes back from its snapshot.
    blob = store.blob(USECASE, 0) or b""
    store.client.hset(name, "blob", _flip(blob))
    fleet.start()
    status = _status_when(
        learner.find(USECASE),
        lambda s: s.get("restored_from") not in (None, "nothing yet") or s.get("error"),
    )
    verdict.counts["redis_altered"] = {
        "restored_from": status.get("restored_from"),
        "learned": status.get("learned"),
    }
    verdict.expect(
        "signature" in str(status.get("refused")),
        f"an altered Redis checkpoint was not refused: {status.get('refused')!r}",
    )
    verdict.expect(
        status.get("restored_from") == "mlflow snapshot" and status.get("learned") == learned,
        f"after refusing Redis the learner restored {status.get('restored_from')!r} "
        f"with {status.get('learned')} events",
    )
    handle = learner.find(USECASE)
    if handle is not None:
        ray.kill(handle, no_restart=True)

    # 2. Redis and the snapshot altered: the learner refuses both and stays stopped, saying why.
    snapshots = MlflowSnapshots.of(settings)
    run = snapshots._find_run(USECASE, 0)
    if run is None:
        raise RuntimeError(f"the {USECASE} learner has no MLflow snapshot run to alter")
    slot = run.data.tags["rtml.snapshot_slot"]
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        local = Path(
            snapshots.client.download_artifacts(
                run.info.run_id, f"checkpoint/checkpoint-{slot}.bin", tmp
            )
        )
        local.write_bytes(_flip(local.read_bytes()))
        snapshots.client.log_artifact(run.info.run_id, str(local), artifact_path="checkpoint")
    store.client.hset(name, "blob", _flip(blob))
    fleet.start()
    status = _status_when(learner.find(USECASE), lambda s: s.get("error") or s.get("learned"))
    verdict.counts["both_altered"] = {
        "learned": status.get("learned"),
        "error": str(status.get("error"))[:120],
    }
    verdict.expect(
        bool(status.get("error")) and "refused" in str(status.get("error")),
        f"with Redis and the snapshot altered the learner did not refuse: {status}",
    )
    verdict.expect(status.get("learned", 0) == 0, "a refused checkpoint's model was loaded")
    fleet.stop()
    fleet.reset()


def _model(ctx: Context, verdict: Verdict) -> None:
    from verify.champions import register_small

    settings = ctx.settings
    good = register_small(settings, "tfd", seed=ctx.seed)
    registry.promote(settings, "tfd", good, reason="verify: tampering set-up")
    api = f"{settings.serve_url}/api/v1"
    served = _wait(
        lambda: httpx.get(f"{api}/tfd/model", timeout=10).json()["batch"].get("version") == good, 90
    )
    verdict.expect(served, f"the champion v{good} was not served within 90 s")
    bad = register_small(settings, "tfd", seed=ctx.seed + 1)
    altered = _alter_model_file(settings, "tfd", bad)
    verdict.counts["model_file_altered"] = altered
    try:
        registry.load(settings, "tfd", bad)
        verdict.problems.append(f"registry.load loaded v{bad} whose file {altered} was altered")
    except registry.ModelRefused as exc:
        verdict.counts["load_refused"] = str(exc)[:160]
    registry.promote(settings, "tfd", bad, reason="verify: an altered model as champion")
    refused = _wait(
        lambda: (
            str(bad)
            in (httpx.get(f"{api}/tfd/model", timeout=10).json()["batch"].get("refused") or {})
        ),
        90,
    )
    described = httpx.get(f"{api}/tfd/model", timeout=10).json()["batch"]
    verdict.expect(refused, f"serving did not refuse the altered champion v{bad}: {described}")
    verdict.expect(
        described.get("version") == good,
        f"serving moved to v{described.get('version')}, not kept v{good}",
    )
    answer = httpx.post(
        f"{api}/tfd/batch/predict",
        json=httpx.get(f"{api}/tfd/sample", timeout=10).json(),
        timeout=30,
    )
    verdict.expect(
        answer.status_code == 200 and answer.json().get("model_version") == good,
        f"a prediction after the refusal: {answer.status_code} {answer.text[:200]}",
    )
    registry.rollback(settings, "tfd")


def _alter_model_file(settings, usecase: str, version: int) -> str:
    """Rewrite the largest file of a registered version in the artifact store (through MLflow's
    artifact proxy, as anyone with write access to the store could), one byte changed."""
    import tempfile

    mv = registry.client(settings).get_model_version(registry.model_name(usecase), str(version))
    source = mv.source  # models:/m-<id>: the logged model's artifacts
    with tempfile.TemporaryDirectory() as tmp:
        folder = registry._download(usecase, version, tmp)
        target = max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        relative = target.relative_to(folder).as_posix()
        location = _artifact_location(settings, source)
        url = f"{settings.mlflow_uri}/api/2.0/mlflow-artifacts/artifacts/{location}/{relative}"
        answer = httpx.put(url, content=bytes(data), timeout=60)
        answer.raise_for_status()
    return relative


def _artifact_location(settings, source: str) -> str:
    """The path under the proxied artifact root (``mlflow-artifacts:/<path>``) of a model."""
    client = registry.client(settings)
    model_id = source.removeprefix("models:/")
    location = client.get_logged_model(model_id).artifact_location
    if not location.startswith("mlflow-artifacts:/"):
        raise RuntimeError(
            f"artifacts at {location}: the scenario alters them only through MLflow's proxy"
        )
    return location.removeprefix("mlflow-artifacts:/").strip("/")


def _wait(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.5)
    return False


def run(ctx: Context) -> Verdict:
    verdict = Verdict(NAME)
    _checkpoints(ctx, verdict)
    _model(ctx, verdict)
    return verdict
