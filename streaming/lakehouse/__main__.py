"""The lakehouse job's command line: ``python -m streaming.lakehouse run``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rtml.settings import get_settings
from rtml.usecases import USECASES
from streaming import lakehouse
from streaming.lakehouse.job import run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streaming.lakehouse", description=(lakehouse.__doc__ or "").split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run", help="run the Kafka → Delta streams until stopped")
    go.add_argument("--usecase", action="append", choices=list(USECASES), help="default: all")
    go.add_argument(
        "--status-file", type=Path, help="rewrite this JSON file with progress every second"
    )
    go.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics here (default: RTML_LAKE_METRICS_PORT; 0: none)",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    port = settings.lake_metrics_port if args.metrics_port is None else args.metrics_port
    return run(settings, args.usecase or list(USECASES), args.status_file, port)


if __name__ == "__main__":
    sys.exit(main())
