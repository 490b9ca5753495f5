"""monitoring/ without services: Prometheus's own checks (promtool, amtool) on the config, the
alert rules and their unit tests, and the contract that rules and dashboards only use series that
rtml documents (docs/metrics.md) or that Ray and Ray Serve export.

promtool and amtool come from Debian's prometheus and prometheus-alertmanager packages, which
`make install` (scripts/install-system.sh) installs: a missing tool fails these tests, it never
skips them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from rtml.settings import load_settings
from rtml.stack.monitoring import find_tool, render_config
from rtml.stack.parts import Prometheus, all_parts
from tests.monitoring import (
    DASHBOARDS,
    MONITORING,
    PROMETHEUS_OWN,
    RULE_TESTS,
    RULES,
    base_series,
    dashboard_queries,
    documented_series,
    load_rules,
    ray_known_series,
    series_in,
    used_series,
)

ALERTMANAGER = MONITORING / "alertmanager" / "alertmanager.yml"


def _tool(name: str) -> str:
    path = find_tool(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: run `make install` (scripts/install-system.sh "
            "installs Debian's prometheus and prometheus-alertmanager)",
            pytrace=False,
        )
    return path


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120)


# -- Prometheus's own checks ---------------------------------------------------------------------


def test_the_rendered_config_passes_promtool_check_config(tmp_path: Path) -> None:
    settings = load_settings(prometheus_port=19999, ray_dashboard_port=18265)
    config = tmp_path / "prometheus.yml"
    config.write_text(render_config(settings))
    result = _run(_tool("promtool"), "check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    # The rules are loaded in place, and every target is on loopback at the settings' ports.
    assert f"{len(RULES)} rule files found" in result.stdout or "SUCCESS" in result.stdout
    body = yaml.safe_load(config.read_text())
    assert body["rule_files"] == [str((MONITORING / "rules").resolve() / "*.yml")]
    jobs = {job["job_name"]: job for job in body["scrape_configs"]}
    assert jobs["ray"]["http_sd_configs"][0]["url"] == "http://127.0.0.1:18265/api/prometheus/sd"
    targets = {
        j: c["static_configs"][0]["targets"] for j, c in jobs.items() if "static_configs" in c
    }
    assert targets == {
        "producers": [f"127.0.0.1:{settings.producer_metrics_port}"],
        "lakehouse": [f"127.0.0.1:{settings.lake_metrics_port}"],
        "prometheus": ["127.0.0.1:19999"],
    }


def test_the_rules_pass_promtool_check_rules() -> None:
    assert RULES, "no rule files in monitoring/rules/"
    result = _run(_tool("promtool"), "check", "rules", *map(str, RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_unit_tests_pass() -> None:
    result = _run(_tool("promtool"), "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alertmanager_example_is_valid_and_routes_by_severity() -> None:
    amtool = _tool("amtool")
    checked = _run(amtool, "check-config", str(ALERTMANAGER))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for labels, receiver in [
        (["severity=critical", "alertname=RtmlLearnerDown", "usecase=tfd"], "on-call-pager"),
        (["severity=warning", "alertname=RtmlCheckpointStale"], "team-chat"),
        (["alertname=Unlabelled"], "team-chat"),
    ]:
        routed = _run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
        assert routed.stdout.strip() == receiver, (labels, routed.stdout, routed.stderr)


# -- the rules -----------------------------------------------------------------------------------

#: What issue 7 asks alerts for, and the rule that answers each.
REQUIRED_ALERTS = {
    "learner down": "RtmlLearnerDown",
    "learner stalled": "RtmlLearnerStalled",
    "consumer lag growing": "RtmlConsumerLagGrowing",
    "checkpoint stale": "RtmlCheckpointStale",
    "model metric degraded against its trailing baseline (higher is better)": (
        "RtmlModelMetricDegraded"
    ),
    "model metric degraded against its trailing baseline (errors)": "RtmlModelErrorDegraded",
    "DLQ rate high": "RtmlDeadLetterRateHigh",
    "prediction p99 too high": "RtmlPredictionLatencyHigh",
    "5xx rate": "RtmlServe5xxRateHigh",
    "no champion": "RtmlNoChampion",
    "Delta ingest stalled": "RtmlDeltaIngestStalled",
    "producer failing": "RtmlProducerFailing",
}


def test_every_alert_the_issue_asks_for_exists_with_severity_summary_and_runbook() -> None:
    rules = {r["alert"]: r for r in load_rules()}
    assert not set(REQUIRED_ALERTS.values()) - set(rules)
    names = Counter(r["alert"] for r in load_rules())
    assert not [n for n, c in names.items() if c > 1], "alert names must be unique"
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        assert rule["annotations"].get("summary") and rule["annotations"].get("runbook"), name


def _rule_tests() -> list[dict]:
    return [t for path in RULE_TESTS for t in yaml.safe_load(path.read_text())["tests"]]


def test_every_alert_has_a_test_where_it_fires_beside_a_series_that_stays_quiet() -> None:
    """A firing expectation alone proves little: the same test must hold a good series (another
    use case, instance or route) that the alert does not name, so "quiet" is tested too."""
    untested = []
    for alert in (r["alert"] for r in load_rules()):
        proven = False
        for test in _rule_tests():
            fired = [
                a
                for case in test.get("alert_rule_test", [])
                if case["alertname"] == alert
                for a in case.get("exp_alerts") or []
            ]
            if not fired:
                continue
            key = next(k for k in ("usecase", "instance", "route") if k in fired[0]["exp_labels"])
            named = {a["exp_labels"][key] for a in fired}
            present = set()
            for s in test["input_series"]:
                found = re_label(s["series"], key)
                if found:
                    present.add(found)
            proven |= bool(present - named)
        if not proven:
            untested.append(alert)
    assert not untested, f"alerts without a firing test beside a quiet series: {untested}"


def re_label(series: str, key: str) -> str | None:
    match = re.search(rf'\b{key}="([^"]*)"', series)
    return match.group(1) if match else None


# -- the series they use -------------------------------------------------------------------------


def test_every_series_in_rules_and_dashboards_is_documented_or_ray_own() -> None:
    documented, ray_own = documented_series(), ray_known_series()
    unknown = {
        name: sorted(where)
        for name, where in used_series().items()
        if base_series(name) not in documented
        and name not in documented
        and name not in ray_own
        and name not in PROMETHEUS_OWN
    }
    assert not unknown, f"series used but neither in docs/metrics.md nor Ray's own: {unknown}"


def test_ray_known_series_come_from_ray_itself() -> None:
    # Guards the source of that list: a Ray upgrade that moves its dashboards must not empty it.
    known = ray_known_series()
    assert {"ray_serve_num_http_requests_total", "ray_node_mem_used"} <= known and len(known) > 30


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('sum by (usecase, le) (rate(a_bucket{kind="x", le=~"0.5|1"}[5m]))', {"a_bucket"}),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[$__rate_interval])))", {"h_bucket"}),
        ("time() - max by (usecase) (ts_seconds) > 300", {"ts_seconds"}),
        ("a / on (usecase) group_left (shard) b and ignoring (x) c unless d or e", set("abcde")),
        ('avg_over_time(m{w="recent"}[6h] offset 30m) > 1e6 * 2', {"m"}),
        ('x{route="/a{b}c", s="by (z)"} > bool 0.5', {"x"}),
        ("sum without (instance) (y) or vector(0)", {"y"}),
    ],
)
def test_series_in_reads_the_metric_names_of_promql(expr: str, names: set[str]) -> None:
    assert series_in(expr) == names


# -- the dashboards ------------------------------------------------------------------------------


def _dashboards_module():
    sys.path.insert(0, str(MONITORING / "grafana"))
    try:
        import dashboards  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    return dashboards


def test_the_dashboard_files_are_what_the_generator_builds() -> None:
    module = _dashboards_module()
    built = module.build()
    on_disk = {p.name: p.read_text() for p in DASHBOARDS}
    assert set(on_disk) == set(built), "run: .venv/bin/python monitoring/grafana/dashboards.py"
    stale = [name for name, model in built.items() if module.render(model) != on_disk[name]]
    assert not stale, f"out of date (run monitoring/grafana/dashboards.py): {stale}"


def test_dashboards_cover_overview_each_usecase_serving_and_streaming() -> None:
    from rtml.usecases import USECASES

    names = {p.name for p in DASHBOARDS}
    assert {"overview.json", "serving.json", "streaming.json"} <= names
    assert {f"usecase-{u}.json" for u in USECASES} <= names
    models = [json.loads(p.read_text()) for p in DASHBOARDS]
    assert len({m["uid"] for m in models}) == len(models)
    for model in models:
        for panel in model["panels"]:
            if panel["type"] != "row":
                assert panel["targets"] and panel["datasource"]["uid"] == "rtml-prometheus", panel


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule: a typo fails here, not in a browser."""
    queries = dashboard_queries()
    rules = [
        {"record": f"rtml:query_{i}", "expr": expr.replace("$__rate_interval", "1m")}
        for i, expr in enumerate(queries.values())
    ]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = _run(_tool("promtool"), "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_provisioning_points_grafana_at_the_data_source_the_dashboards_use() -> None:
    root = MONITORING / "grafana" / "provisioning"
    source = yaml.safe_load((root / "datasources" / "rtml.yml").read_text())["datasources"][0]
    assert source["uid"] == "rtml-prometheus" and source["type"] == "prometheus"
    provider = yaml.safe_load((root / "dashboards" / "rtml.yml").read_text())["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"]


# -- the stack's part and the lakehouse's progress ------------------------------------------------


def test_prometheus_is_a_part_after_ray_writing_its_config_in_the_state_dir(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, prometheus_port=19998)
    names = [p.name for p in all_parts(settings)]
    assert names.index("ray") < names.index("prometheus")
    part = Prometheus(settings)
    argv = part.command()
    assert argv[0] == _tool("prometheus")
    assert "--web.listen-address=127.0.0.1:19998" in argv
    assert f"--storage.tsdb.path={(tmp_path / 'prometheus' / 'data').resolve()}" in argv
    assert (tmp_path / "prometheus" / "prometheus.yml").read_text() == render_config(settings)
    assert part.address == "http://127.0.0.1:19998" and part.ports == [19998]


def test_lake_offsets_behind_counts_what_the_last_batch_did_not_read() -> None:
    from streaming.lakehouse.progress import offsets_behind

    progress = {"sources": [{"endOffset": '{"tfd.events": {"0": 5, "1": 7}}'}]}
    # partition 2 was never read: all of it is behind
    assert offsets_behind(progress, {"tfd.events": {0: 10, 1: 7, 2: 3}}) == 5 + 0 + 3
    as_dict = {"sources": [{"endOffset": {"tfd.events": {"0": 10}}}]}
    assert offsets_behind(as_dict, {"tfd.events": {0: 10}}) == 0
    assert offsets_behind({}, {"tfd.events": {0: 10}}) is None
    assert offsets_behind(progress, {}) is None
