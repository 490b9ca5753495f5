"""Serving latency and throughput: rtml's predict routes against the Serve floor and a bare
uvicorn app, on the same machine in the same run.

Starts Kafka, Redis, MLflow and Ray on the bench's own ports, lets a ``tfd`` learner learn some
events (and checkpoint), registers a CatBoost champion, deploys ``ray_apps/serve_config.yaml``
beside a trivial app of the same path shape (the **floor**: same proxy, same ingress, no model)
and starts the same models behind a bare FastAPI + uvicorn process (the precursor's design).
Then, per endpoint (incremental; batch with the cache off and on):

- one client, sequential: p50/p95/p99 latency;
- 32 concurrent clients, closed loop: max requests/s (and latency under load);
- lists of 100 events, 8 clients: events/s, against bare uvicorn with the same lists;
- open loop at a fixed arrival rate: latency when requests do not wait for each other.

Ratios: ``p50_over_floor_ms`` = the worst endpoint's p50 minus the floor's; ``rps_ratio_vs_floor``
= the worst endpoint's max req/s over the floor's; ``uvicorn_ratio`` = rtml events/s with lists
over bare uvicorn's with the same lists (the worse of incremental and batch), and beside it
``floor_uvicorn_ratio`` = the floor's events/s with the same lists over bare uvicorn's batch side:
what Serve's proxy and replica alone leave of the two cores, with no model work at all (a bound
on ``uvicorn_ratio``: rtml's lists cost the floor's path plus the model). The learner is idle
(no producer runs), so its micro-batches do not compete with the measurements.

    python bench/serve_latency.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import _serve_setup as setup
import httpx

USECASE = "tfd"
BARE_PORT = 42100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, under two minutes")
    args = parser.parse_args()
    single_n = 150 if args.quick else 1000
    seconds = 4.0 if args.quick else 15.0
    t_start = time.monotonic()

    settings = setup.start_stack()
    bare: subprocess.Popen[bytes] | None = None
    figures: dict[str, object] = {"quick": args.quick}
    try:
        # Serve deploys while the learner learns and the champion trains.
        setup.deploy_apps(settings, {"serve_champion_poll_s": 1.0}, floor=True, wait=False)
        setup.learn(settings, USECASE, 1000 if args.quick else 5000)
        version = setup.register_champion(settings, USECASE, 1000 if args.quick else 5000)
        bare = subprocess.Popen(
            [sys.executable, str(setup.ROOT / "bench" / "serve_bare.py"), "--port", str(BARE_PORT)],
            stdout=subprocess.DEVNULL,
        )
        setup.wait_apps(settings, 2)
        api = f"{settings.serve_url}/api/v1/{USECASE}"
        deadline = time.monotonic() + 60
        while (
            httpx.get(f"{settings.serve_url}/api/v1/{USECASE}/model").json()["batch"]["version"]
            != version
        ):
            if time.monotonic() > deadline:
                sys.exit("champion not served")
            time.sleep(0.5)
        bare_url = f"http://127.0.0.1:{BARE_PORT}/api/v1/{USECASE}"
        while True:
            try:
                httpx.post(f"{bare_url}/batch/predict", json=setup.sample_event(USECASE, 1))
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        print(f"setup took {time.monotonic() - t_start:.0f}s", flush=True)

        one = json.dumps(setup.sample_event(USECASE, 1)).encode()
        hundred = json.dumps([setup.sample_event(USECASE, s) for s in range(100)]).encode()
        no_cache = {"Cache-Control": "no-cache"}
        endpoints = {
            "floor": (f"{settings.serve_url}/floor/api/v1/{USECASE}/incremental/predict", {}),
            "incremental": (f"{api}/incremental/predict", {}),
            "batch_nocache": (f"{api}/batch/predict", no_cache),
            "batch_cache": (f"{api}/batch/predict", {}),
            "uvicorn_incremental": (f"{bare_url}/incremental/predict", {}),
            "uvicorn_batch": (f"{bare_url}/batch/predict", {}),
        }
        results: dict[str, dict[str, object]] = {}
        for name, (url, headers) in endpoints.items():
            single = setup.closed_loop(url, one, clients=1, requests=single_n, headers=headers)
            loaded = setup.closed_loop(url, one, clients=32, seconds=seconds, headers=headers)
            results[name] = {"single": single.summary(), "c32": loaded.summary()}
            print(
                f"{name:20s} 1 client p50 {single.pct(50):6.2f} ms p95 {single.pct(95):6.2f} p99 "
                f"{single.pct(99):6.2f} | 32 clients {loaded.rps:6.1f} req/s "
                f"p50 {loaded.pct(50):6.1f} ms "
                f"errors {single.errors + loaded.errors}",
                flush=True,
            )
        for name in (
            "floor",
            "incremental",
            "batch_nocache",
            "uvicorn_incremental",
            "uvicorn_batch",
        ):
            url, headers = endpoints[name]
            lists = setup.closed_loop(
                url, hundred, clients=8, seconds=seconds, headers=headers, events=100, warmup=2
            )
            results[name]["lists100"] = lists.summary()
            print(
                f"{name:20s} lists of 100, 8 clients: {lists.events_per_s:8.0f} events/s "
                f"({lists.rps:.1f} req/s, p50 {lists.pct(50):.1f} ms, errors {lists.errors})",
                flush=True,
            )
        for name in ("incremental", "batch_nocache"):
            url, headers = endpoints[name]
            opened = setup.open_loop(url, one, rate=60.0, seconds=seconds, headers=headers)
            results[name]["open60"] = opened.summary()
            print(
                f"{name:20s} open loop 60 req/s: p50 {opened.pct(50):.1f} ms "
                f"p95 {opened.pct(95):.1f} "
                f"p99 {opened.pct(99):.1f} errors {opened.errors}",
                flush=True,
            )

        floor = results["floor"]
        served = ("incremental", "batch_nocache", "batch_cache")
        over = {n: results[n]["single"]["p50_ms"] - floor["single"]["p50_ms"] for n in served}  # type: ignore[index,operator]
        rps = {n: results[n]["c32"]["rps"] / floor["c32"]["rps"] for n in served}  # type: ignore[index,operator]
        lists = {
            n: results[n]["lists100"]["events_per_s"] for n in ("incremental", "batch_nocache")
        }  # type: ignore[index]
        uvicorn = {
            "incremental": lists["incremental"]
            / results["uvicorn_incremental"]["lists100"]["events_per_s"],  # type: ignore[index,operator]
            "batch_nocache": lists["batch_nocache"]
            / results["uvicorn_batch"]["lists100"]["events_per_s"],  # type: ignore[index,operator]
        }
        figures.update(
            {
                "endpoints": results,
                "p50_over_floor_ms_by_endpoint": {k: round(v, 2) for k, v in over.items()},
                "rps_ratio_by_endpoint": {k: round(v, 3) for k, v in rps.items()},
                "uvicorn_ratio_by_endpoint": {k: round(v, 3) for k, v in uvicorn.items()},
                "p50_over_floor_ms": round(max(over.values()), 2),
                "rps_ratio_vs_floor": round(min(rps.values()), 3),
                "events_per_s_lists": round(min(lists.values()), 1),
                "uvicorn_ratio": round(min(uvicorn.values()), 3),
                "floor_uvicorn_ratio": round(
                    floor["lists100"]["events_per_s"]
                    / results["uvicorn_batch"]["lists100"]["events_per_s"],
                    3,  # type: ignore[index,operator]
                ),
                "seconds": round(time.monotonic() - t_start, 1),
            }
        )
    finally:
        if bare is not None:
            bare.terminate()
            bare.wait(10)
        setup.stop_stack(settings)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
