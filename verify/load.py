"""HTTP load for the serving scenarios, made by vegeta (an open-loop load generator in Go).

Open loop is what overload is: requests arrive at a fixed rate whether or not earlier ones were
answered. A Python generator at a few hundred requests per second took a core of the two that
the server under test needed, and its own queueing showed up as the server's latency; vegeta
costs a fraction of that and reports every request. ``scripts/install-tools.sh`` builds it.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import shutil
import statistics
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtml.settings import Settings


@dataclass
class Load:
    seconds: float = 0.0
    #: from the first request sent to the last (the offered rate is ``sent / sending_seconds``)
    sending_seconds: float = 0.0
    #: status code ("0" for a request that got no answer) -> count
    outcomes: Counter[str] = field(default_factory=Counter)
    #: seconds of each answered 200, and when it was sent (seconds from the start)
    ok_latencies: list[float] = field(default_factory=list)
    ok_sent_at: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def sent(self) -> int:
        return sum(self.outcomes.values())

    @property
    def ok(self) -> int:
        return self.outcomes.get("200", 0)

    def ok_per_s(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def quantile(self, q: float) -> float:
        if not self.ok_latencies:
            return float("nan")
        if len(self.ok_latencies) == 1:
            return self.ok_latencies[0]
        return statistics.quantiles(self.ok_latencies, n=1000, method="inclusive")[
            round(q * 1000) - 1
        ]


def vegeta(settings: Settings) -> str:
    """The vegeta binary: the tools folder of ``scripts/install-tools.sh``, else the PATH."""
    folder = Path(os.environ.get("RTML_TOOLS_BIN", settings.cache_dir / "bin"))
    for candidate in (folder / "vegeta", shutil.which("vegeta")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise FileNotFoundError(
        f"vegeta is not installed (looked in {folder} and on the PATH): "
        "`bash scripts/install-tools.sh` builds it"
    )


def attack(
    settings: Settings,
    url: str,
    body: Any,
    seconds: float,
    rate: float = 0,
    workers: int = 32,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Load:
    """POST ``body`` to ``url`` for ``seconds``: at ``rate`` requests/s (open loop), or with
    ``rate=0`` as fast as ``workers`` concurrent callers go (closed loop: the capacity)."""
    target = {
        "method": "POST",
        "url": url,
        "body": base64.b64encode(json.dumps(body).encode()).decode(),
        "header": {
            "Content-Type": ["application/json"],
            **{k: [v] for k, v in (headers or {}).items()},
        },
    }
    binary = vegeta(settings)
    argv = [
        binary,
        "attack",
        "-format=json",
        f"-duration={seconds}s",
        f"-timeout={timeout}s",
        f"-rate={rate:.0f}/s" if rate else "-rate=0",
        "-keepalive=true",
    ]
    if rate:
        argv += ["-workers=16", "-max-workers=2048"]
    else:
        argv += [f"-workers={workers}", f"-max-workers={workers}"]
    attacked = subprocess.run(
        argv,
        input=json.dumps(target).encode() + b"\n",
        capture_output=True,
        timeout=seconds + timeout + 60,
    )
    if attacked.returncode != 0:
        raise RuntimeError(f"vegeta attack failed: {attacked.stderr.decode()[-500:]}")
    encoded = subprocess.run(
        [binary, "encode", "--to", "csv"], input=attacked.stdout, capture_output=True, timeout=120
    )
    return parse_csv(encoded.stdout.decode())


def parse_csv(text: str) -> Load:
    """vegeta's CSV results: timestamp (ns), code, latency (ns), bytes out, bytes in, error, ..."""
    load = Load()
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return load
    start = min(int(r[0]) for r in rows)
    end = max(int(r[0]) + int(r[2]) for r in rows)
    last_sent = max(int(r[0]) for r in rows)
    for r in rows:
        code, latency = r[1], int(r[2]) / 1e9
        load.outcomes[code] += 1
        if code == "200":
            load.ok_latencies.append(latency)
            load.ok_sent_at.append((int(r[0]) - start) / 1e9)
        elif r[5]:
            load.errors[r[5][:120]] += 1
    load.seconds = max((end - start) / 1e9, 1e-9)
    load.sending_seconds = max((last_sent - start) / 1e9, 1e-9)
    return load
