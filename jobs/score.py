"""``python -m jobs.score --usecase tfd [--since 2026-01-01] [--version N]``

The entry point ``ray job submit`` runs (``rtml score`` submits it): score a use case's bronze
rows with the champion on Ray Data and append them to ``<usecase>_predictions``
(:mod:`jobs.batch_score`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from rtml.ray_env import apply_ray_env
from rtml.settings import get_settings
from rtml.usecases import USECASES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.score", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument("--usecase", required=True, choices=list(USECASES))
    parser.add_argument(
        "--since", default=None, help="only events at or after this date/time (UTC)"
    )
    parser.add_argument("--version", type=int, default=None, help="a model version [champion]")
    args = parser.parse_args(argv)
    settings = get_settings()
    apply_ray_env(settings)  # this driver joins Ray: configured before jobs.batch_score imports it
    from jobs.batch_score import score

    result = score(settings, args.usecase, args.since, args.version)
    print("RESULT " + json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
