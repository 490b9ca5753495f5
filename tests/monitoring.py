"""What the monitoring tests share: the series that alert rules and dashboards use, and the series
that rtml (docs/metrics.md), Ray and Ray Serve export, in Prometheus's spelling.

No PromQL parser ships with Prometheus's Python tooling, so :func:`series_in` reads metric names
with a small lexer: strip strings, label matchers, ranges and label lists, then every identifier
that is not a function, an aggregation or a keyword is a series. Its own tests pin that down.
"""

from __future__ import annotations

import importlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "monitoring"
RULES = sorted((MONITORING / "rules").glob("*.yml"))
RULE_TESTS = sorted((MONITORING / "rules" / "tests").glob("*.yml"))
DASHBOARDS = sorted((MONITORING / "grafana").glob("*.json"))
#: Grafana's interval variable, replaced where a query runs outside Grafana.
RATE_WINDOW = "1m"
#: Series Prometheus itself attaches or every prometheus_client process exports.
PROMETHEUS_OWN = {"up", "process_resident_memory_bytes"}

_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
}
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def series_in(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    text = expr.replace("$__rate_interval", RATE_WINDOW)
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', text)
    names: set[str] = set()
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    text = re.sub(r"\boffset\s+-?[0-9a-z]+", " ", text)
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if not call and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


# -- what exists --------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def documented_series() -> dict[str, str]:
    """Every series docs/metrics.md promises, in Prometheus's spelling → the doc's section.

    Sections of processes outside Ray say ``prometheus_client`` in their heading: names as
    written. The rest run on Ray: ``ray_`` in front, ``_total`` after a counter.
    """
    out: dict[str, str] = {}
    section = ""
    for line in (ROOT / "docs" / "metrics.md").read_text().splitlines():
        if line.startswith("## "):
            section = line[3:]
            continue
        row = re.match(r"\|\s*`([a-z_:][a-z0-9_:]*)`\s*\|\s*(counter|gauge|histogram)\s*\|", line)
        if not row:
            continue
        name, kind = row.groups()
        on_ray = "prometheus_client" not in section
        if on_ray:
            name = "ray_" + name + ("_total" if kind == "counter" else "")
        names = [name + s for s in _HISTOGRAM_SUFFIXES] if kind == "histogram" else [name]
        for n in names:
            out[n] = section
    return out


@lru_cache(maxsize=1)
def ray_known_series() -> set[str]:
    """The series Ray's own shipped Grafana dashboards (core and Serve) query: Ray's and Serve's
    built-in metrics, by the word of the Ray release installed here."""
    found: set[str] = set()
    for module in (
        "default_dashboard_panels",
        "serve_dashboard_panels",
        "serve_deployment_dashboard_panels",
    ):
        mod = importlib.import_module(f"ray.dashboard.modules.metrics.dashboards.{module}")
        for value in vars(mod).values():
            for panel in value if isinstance(value, list) else []:
                for target in getattr(panel, "targets", []) or []:
                    expr = getattr(target, "expr", "")
                    found |= {
                        n
                        for n in series_in(expr.replace("{{", "{").replace("}}", "}"))
                        if n.startswith("ray_")
                    }
    return found


def base_series(name: str) -> str:
    """A histogram's family name (its ``_bucket`` series is the one to look for)."""
    for suffix in ("_sum", "_count"):
        if name.endswith(suffix):
            return name.removesuffix(suffix) + "_bucket"
    return name


# -- what is used -------------------------------------------------------------------------------


def load_rules() -> list[dict[str, Any]]:
    """Every rule of every rule file, with the file it came from."""
    rules = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [{**rule, "file": path.name} for rule in group["rules"]]
    return rules


def dashboard_queries() -> dict[str, str]:
    """ "<file> · <panel> · <refId>" → the PromQL of every panel target of every dashboard."""
    out = {}
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                out[f"{path.name} · {panel['title']} · {target['refId']}"] = target["expr"]
    return out


def used_series() -> dict[str, set[str]]:
    """Series name → where rules and dashboards use it."""
    used: dict[str, set[str]] = {}
    for rule in load_rules():
        for name in series_in(rule["expr"]):
            used.setdefault(name, set()).add(f"{rule['file']} · {rule['alert']}")
    for where, expr in dashboard_queries().items():
        for name in series_in(expr):
            used.setdefault(name, set()).add(where)
    return used
