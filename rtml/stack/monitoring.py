"""The local Prometheus's config, rendered from ``monitoring/prometheus/prometheus.yml.tmpl``.

The template holds the scrape jobs; the addresses come from :mod:`rtml.settings`, so the config
follows the stack wherever its ports move (the tests' shifted ports included). Alert rules are
read in place from ``monitoring/rules/``: the files a cluster's PrometheusRule is built from are
the ones the local stack evaluates.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from string import Template

from rtml.settings import LOOPBACK, Settings

#: The repository's ``monitoring/`` folder (rtml is installed in editable mode from the checkout).
MONITORING_DIR = Path(__file__).resolve().parents[2] / "monitoring"
CONFIG_TEMPLATE = MONITORING_DIR / "prometheus" / "prometheus.yml.tmpl"
RULES_DIR = MONITORING_DIR / "rules"


def render_config(settings: Settings, rules_dir: Path = RULES_DIR) -> str:
    """The prometheus.yml for this stack's settings."""
    return Template(CONFIG_TEMPLATE.read_text()).substitute(
        scrape_interval=f"{settings.prometheus_scrape_s:g}s",
        rules_dir=str(rules_dir.resolve()),
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
