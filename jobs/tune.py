"""``python -m jobs.tune --usecase tfd --trials 16 [--max-rows N] [--every 1h]``

The entry point ``ray job submit`` runs (``rtml train`` submits it): parse the arguments and run
the sweep of :mod:`jobs.sweep`. With ``--every`` it sweeps again on fresh data at that interval
until stopped (``ray job stop``); a failed round is reported and the next one still runs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict

from rtml.ray_env import apply_ray_env
from rtml.settings import get_settings
from rtml.usecases import USECASES

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def interval(text: str) -> float:
    """``90s``, ``30m``, ``1h``, ``1d`` as seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not an interval like 30m, 1h or 1d")
    return float(match[1]) * _UNITS[match[2]]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.tune", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument("--usecase", required=True, choices=list(USECASES))
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--max-rows", type=int, default=None, help="only the newest N rows")
    parser.add_argument("--concurrency", type=int, default=2, help="trials at once")
    parser.add_argument("--every", type=interval, default=None, help="re-run at this interval")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    settings = get_settings()
    apply_ray_env(settings)  # this driver joins Ray: configured before jobs.sweep imports it
    from jobs.sweep import run_sweep

    while True:
        started = time.monotonic()
        try:
            result = run_sweep(settings, args.usecase, args.trials, args.max_rows, args.concurrency)
            print("RESULT " + json.dumps(asdict(result), default=str), flush=True)
            _record(
                args.usecase,
                "kept" if result.gate["decision"] == "rejected" else "promoted",
                started,
            )
        except Exception as exc:
            _record(args.usecase, "failed", started)
            if args.every is None:
                raise
            print(f"sweep failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        if args.every is None:
            return 0
        time.sleep(max(0.0, args.every - (time.monotonic() - started)))


def _record(usecase: str, outcome: str, started: float) -> None:
    """Count the sweep and wait until Ray has exported it: the driver may exit next. A sweep that
    failed before it reached the cluster has nowhere to count."""
    import ray

    from jobs.metrics import sweep_metrics, wait_for_export

    if not ray.is_initialized():
        return
    try:
        sweep_metrics().record(usecase, outcome, time.monotonic() - started)
        wait_for_export()
    except Exception as exc:  # noqa: BLE001  (metrics never fail a sweep)
        print(
            f"sweep metrics not recorded: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True
        )


if __name__ == "__main__":
    sys.exit(main())
