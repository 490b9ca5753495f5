"""The local Prometheus's config, rendered from ``monitoring/prometheus/prometheus.yml.tmpl``.

The template holds the scrape jobs; the addresses come from :mod:`rtml.settings`, so the config
follows the stack wherever its ports move (the tests' shifted ports included). Alert rules are
read in place from ``monitoring/rules/``: the files a cluster's PrometheusRule is built from are
the ones the local stack evaluates. Both are read from the checkout (``RTML_CHECKOUT_DIR``):
``monitoring/`` is not package data, the chart and the local stack share it as it is.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from string import Template

from rtml.settings import LOOPBACK, Settings


def render_config(settings: Settings) -> str:
    """The prometheus.yml for this stack's settings."""
    folder = (settings.checkout_dir / "monitoring").resolve()
    template = folder / "prometheus" / "prometheus.yml.tmpl"
    return Template(template.read_text()).substitute(
        scrape_interval=f"{settings.prometheus_scrape_s:g}s",
        rules_dir=str(folder / "rules"),
        ray_dashboard_url=settings.ray_dashboard_url,
        producer_metrics=f"{LOOPBACK}:{settings.producer_metrics_port}",
        lake_metrics=f"{LOOPBACK}:{settings.lake_metrics_port}",
        prometheus=f"{LOOPBACK}:{settings.prometheus_port}",
    )


def find_tool(name: str) -> str | None:
    """``prometheus`` or ``promtool``: on PATH, or where Debian's package puts them."""
    found = shutil.which(name)
    if found:
        return found
    debian = Path("/usr/bin") / name
    return str(debian) if debian.exists() else None
