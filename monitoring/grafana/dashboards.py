"""rtml's Grafana dashboards, built here and written as JSON beside this file.

    .venv/bin/python monitoring/grafana/dashboards.py        # rewrite the *.json files

One builder for all dashboards, and one template for the three use cases, so a panel is defined
once and a fourth use case gets its dashboard from its spec. The JSON files are what Grafana's
provisioning loads (and what the Kubernetes chart packs into ConfigMaps); a unit test checks that
they equal what this script builds, and that every series their queries use is one rtml or Ray
exports (docs/metrics.md).

Queries use Grafana's ``$__rate_interval``; the tests replace it with a fixed window.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: The provisioned Prometheus data source (provisioning/datasources/rtml.yml).
DATASOURCE = {"type": "prometheus", "uid": "rtml-prometheus"}
RATE = "$__rate_interval"
WIDTH = 24  # Grafana's grid


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    queries: Sequence[Query]
    unit: str = "short"
    kind: str = "timeseries"  # or "stat"
    width: int = 12
    height: int = 8
    description: str = ""


@dataclass(frozen=True)
class Row:
    title: str
    panels: Sequence[Panel]


def q(expr: str, legend: str = "") -> Query:
    return Query(" ".join(expr.split()), legend)


def _panel_json(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "refId": chr(ord("A") + i),
            "datasource": DATASOURCE,
            "expr": t.expr,
            "legendFormat": t.legend or "__auto",
            "range": True,
        }
        for i, t in enumerate(panel.queries)
    ]
    out: dict[str, Any] = {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
    }
    if panel.kind == "timeseries":
        out["options"] = {
            "legend": {"displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "multi"},
        }
    else:
        out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}
    return out


def dashboard(uid: str, title: str, rows: Iterable[Row], description: str) -> dict[str, Any]:
    """A Grafana dashboard model: rows of panels laid out left to right, top to bottom."""
    panels: list[dict[str, Any]] = []
    y, pid = 0, 1
    for row in rows:
        panels.append(
            {
                "id": pid,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"x": 0, "y": y, "w": WIDTH, "h": 1},
                "panels": [],
            }
        )
        pid, y, x, row_height = pid + 1, y + 1, 0, 0
        for panel in row.panels:
            if x + panel.width > WIDTH:
                x, y, row_height = 0, y + row_height, 0
            panels.append(_panel_json(panel, pid, x, y))
            pid, x, row_height = pid + 1, x + panel.width, max(row_height, panel.height)
        y += row_height
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["rtml"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "annotations": {"list": []},
        "templating": {"list": []},
        "links": [{"title": "rtml", "type": "dashboards", "tags": ["rtml"], "asDropdown": True}],
        "panels": panels,
    }


# -- the dashboards ------------------------------------------------------------------------------


def overview() -> dict[str, Any]:
    rows = [
        Row(
            "Throughput",
            [
                Panel(
                    "Events produced / s",
                    [
                        q(
                            f"sum by (usecase) (rate(rtml_events_produced_total[{RATE}]))",
                            "{{usecase}}",
                        )
                    ],
                    "ops",
                    width=8,
                ),
                Panel(
                    "Events learned / s",
                    [
                        q(
                            "sum by (usecase) "
                            f"(rate(ray_rtml_learner_events_learned_total[{RATE}]))",
                            "{{usecase}}",
                        )
                    ],
                    "ops",
                    width=8,
                ),
                Panel(
                    "Rows landed in Delta / s",
                    [q(f"sum by (usecase) (rate(rtml_lake_rows_total[{RATE}]))", "{{usecase}}")],
                    "ops",
                    width=8,
                ),
                Panel(
                    "Predictions / s",
                    [
                        q(
                            "sum by (usecase, kind) "
                            f"(rate(ray_rtml_serve_predictions_total[{RATE}]))",
                            "{{usecase}} {{kind}}",
                        )
                    ],
                    "ops",
                    width=8,
                ),
                Panel(
                    "HTTP requests / s",
                    [
                        q(
                            "sum by (status_code) "
                            f"(rate(ray_serve_num_http_requests_total[{RATE}]))",
                            "{{status_code}}",
                        )
                    ],
                    "reqps",
                    width=8,
                ),
                Panel(
                    "Targets up",
                    [
                        q("sum by (job) (up)", "{{job}} up"),
                        q("count by (job) (up)", "{{job}} targets"),
                    ],
                    "short",
                    width=8,
                ),
            ],
        ),
        Row(
            "Lag and freshness",
            [
                Panel(
                    "Learner consumer lag (events)",
                    [q("sum by (usecase) (ray_rtml_learner_consumer_lag)", "{{usecase}}")],
                    width=6,
                ),
                Panel(
                    "Delta: records not yet landed",
                    [q("sum by (usecase) (rtml_lake_offsets_behind)", "{{usecase}}")],
                    width=6,
                ),
                Panel(
                    "Checkpoint age",
                    [
                        q(
                            "time() - max by (usecase) (ray_rtml_learner_checkpoint_timestamp_s)",
                            "{{usecase}}",
                        )
                    ],
                    "s",
                    width=6,
                ),
                Panel(
                    "Delta: since the last batch",
                    [
                        q(
                            "time() - max by (usecase) (rtml_lake_last_batch_timestamp_seconds)",
                            "{{usecase}}",
                        )
                    ],
                    "s",
                    width=6,
                ),
            ],
        ),
        Row(
            "Errors",
            [
                Panel(
                    "Dead-lettered / s",
                    [
                        q(
                            "sum by (usecase, kind) "
                            f"(rate(ray_rtml_learner_events_dead_lettered_total[{RATE}]))",
                            "{{usecase}} {{kind}}",
                        )
                    ],
                    "ops",
                    width=6,
                ),
                Panel(
                    "Produce failures / s",
                    [
                        q(
                            f"sum by (usecase) (rate(rtml_events_produce_failed_total[{RATE}]))",
                            "{{usecase}}",
                        )
                    ],
                    "ops",
                    width=6,
                ),
                Panel(
                    "Quarantined rows / s",
                    [
                        q(
                            f"sum by (usecase) (rate(rtml_lake_quarantined_total[{RATE}]))",
                            "{{usecase}}",
                        )
                    ],
                    "ops",
                    width=6,
                ),
                Panel(
                    "Serve errors / s",
                    [
                        q(
                            "sum by (usecase, kind, status) "
                            f"(rate(ray_rtml_serve_errors_total[{RATE}]))",
                            "{{usecase}} {{kind}} {{status}}",
                        )
                    ],
                    "ops",
                    width=6,
                ),
            ],
        ),
        Row(
            "Memory",
            [
                Panel(
                    "Ray node memory",
                    [
                        q("sum by (instance) (ray_node_mem_used)", "used {{instance}}"),
                        q("sum by (instance) (ray_node_mem_total)", "total {{instance}}"),
                    ],
                    "bytes",
                    width=8,
                ),
                Panel(
                    "Ray object store",
                    [q("sum by (instance) (ray_object_store_memory)", "{{instance}}")],
                    "bytes",
                    width=8,
                ),
                Panel(
                    "Producers, lakehouse, Prometheus (RSS)",
                    [q("sum by (job) (process_resident_memory_bytes)", "{{job}}")],
                    "bytes",
                    width=8,
                ),
            ],
        ),
    ]
    return dashboard(
        "rtml-overview",
        "rtml · overview",
        rows,
        "Throughput, lag, freshness, errors and memory of the whole stack.",
    )


def usecase(name: str, title: str, primary: str) -> dict[str, Any]:
    """One use case: its online model over time next to the champion's, predictions, latency."""
    u = f'usecase="{name}"'
    rows = [
        Row(
            "Model quality",
            [
                Panel(
                    f"{primary}: online (recent, overall), oracle and champion",
                    [
                        q(
                            f'avg by (window) (ray_rtml_online_metric{{{u}, metric="{primary}", '
                            'window=~"recent|overall|oracle"})',
                            "online {{window}}",
                        ),
                        q(
                            f"max by (kind) (ray_rtml_serve_champion_metric{{{u}, "
                            f'metric="{primary}"}})',
                            "champion ({{kind}})",
                        ),
                    ],
                    width=12,
                    description=(
                        "The primary metric of the online model next to the oracle's (the best "
                        "reachable) and the served champion's holdout score."
                    ),
                ),
                Panel(
                    "Share of the oracle",
                    [
                        q(
                            f"avg by (metric) (ray_rtml_online_metric{{{u}, "
                            'window="share_of_oracle"})',
                            "{{metric}}",
                        )
                    ],
                    "percentunit",
                    width=12,
                ),
                Panel(
                    "Online metrics, recent window",
                    [
                        q(
                            f'avg by (metric) (ray_rtml_online_metric{{{u}, window="recent"}})',
                            "{{metric}}",
                        )
                    ],
                    width=12,
                ),
                Panel(
                    "Champion's holdout metrics",
                    [q(f"max by (metric) (ray_rtml_serve_champion_metric{{{u}}})", "{{metric}}")],
                    width=12,
                ),
            ],
        ),
        Row(
            "Online learning",
            [
                Panel(
                    "Events / s",
                    [
                        q(f"sum(rate(rtml_events_produced_total{{{u}}}[{RATE}]))", "produced"),
                        q(
                            f"sum(rate(ray_rtml_learner_events_learned_total{{{u}}}[{RATE}]))",
                            "learned",
                        ),
                        q(
                            "sum by (kind) "
                            f"(rate(ray_rtml_learner_events_dead_lettered_total{{{u}}}[{RATE}]))",
                            "dead-lettered {{kind}}",
                        ),
                    ],
                    "ops",
                    width=8,
                ),
                Panel(
                    "Consumer lag per partition",
                    [
                        q(
                            f"sum by (shard, partition) (ray_rtml_learner_consumer_lag{{{u}}})",
                            "shard {{shard}} p{{partition}}",
                        )
                    ],
                    width=8,
                ),
                Panel(
                    "Seconds per event (p50, p99)",
                    [
                        q(
                            "histogram_quantile(0.5, sum by (le) "
                            f"(rate(ray_rtml_learner_batch_latency_s_bucket{{{u}}}[{RATE}])))",
                            "p50",
                        ),
                        q(
                            "histogram_quantile(0.99, sum by (le) "
                            f"(rate(ray_rtml_learner_batch_latency_s_bucket{{{u}}}[{RATE}])))",
                            "p99",
                        ),
                    ],
                    "s",
                    width=8,
                ),
                Panel(
                    "Checkpoint age",
                    [
                        q(
                            "time() - max by (shard) "
                            f"(ray_rtml_learner_checkpoint_timestamp_s{{{u}}})",
                            "checkpoint, shard {{shard}}",
                        ),
                        q(
                            "time() - max by (shard) "
                            f"(ray_rtml_learner_snapshot_timestamp_s{{{u}}})",
                            "MLflow snapshot, shard {{shard}}",
                        ),
                    ],
                    "s",
                    width=8,
                ),
                Panel(
                    "Checkpoint size",
                    [
                        q(
                            f"max by (shard) (ray_rtml_learner_checkpoint_bytes{{{u}}})",
                            "shard {{shard}}",
                        )
                    ],
                    "bytes",
                    width=8,
                ),
                Panel(
                    "Checkpoint write (p99) and version",
                    [
                        q(
                            "histogram_quantile(0.99, sum by (le) (rate("
                            f"ray_rtml_learner_checkpoint_duration_s_bucket{{{u}}}[{RATE}])))",
                            "p99 seconds",
                        ),
                        q(
                            f"max by (shard) (ray_rtml_learner_checkpoint_version{{{u}}})",
                            "version, shard {{shard}}",
                        ),
                    ],
                    width=8,
                ),
            ],
        ),
        Row(
            "Serving",
            [
                Panel(
                    "Predictions / s",
                    [
                        q(
                            "sum by (kind) "
                            f"(rate(ray_rtml_serve_predictions_total{{{u}}}[{RATE}]))",
                            "{{kind}}",
                        )
                    ],
                    "ops",
                    width=8,
                ),
                Panel(
                    "Prediction latency (p50, p99)",
                    [
                        q(
                            "histogram_quantile(0.5, sum by (kind, le) "
                            f"(rate(ray_rtml_serve_prediction_latency_s_bucket{{{u}}}[{RATE}])))",
                            "p50 {{kind}}",
                        ),
                        q(
                            "histogram_quantile(0.99, sum by (kind, le) "
                            f"(rate(ray_rtml_serve_prediction_latency_s_bucket{{{u}}}[{RATE}])))",
                            "p99 {{kind}}",
                        ),
                    ],
                    "s",
                    width=8,
                ),
                Panel(
                    "Batch cache hit ratio",
                    [
                        q(
                            f"sum(rate(ray_rtml_serve_cache_requests_total{{{u}, "
                            f'result="hit"}}[{RATE}])) / '
                            f"sum(rate(ray_rtml_serve_cache_requests_total{{{u}}}[{RATE}]))",
                            "hit ratio",
                        )
                    ],
                    "percentunit",
                    width=8,
                ),
                Panel(
                    "Model version served",
                    [q(f"max by (kind) (ray_rtml_serve_model_version{{{u}}})", "{{kind}}")],
                    width=8,
                ),
                Panel(
                    "Model swaps",
                    [
                        q(
                            "sum by (kind) "
                            f"(increase(ray_rtml_serve_model_swaps_total{{{u}}}[1h]))",
                            "{{kind}} / h",
                        )
                    ],
                    width=8,
                ),
                Panel(
                    "Errors / s",
                    [
                        q(
                            "sum by (kind, status) "
                            f"(rate(ray_rtml_serve_errors_total{{{u}}}[{RATE}]))",
                            "{{kind}} {{status}}",
                        )
                    ],
                    "ops",
                    width=8,
                ),
            ],
        ),
        Row(
            "Batch training",
            [
                Panel(
                    "Sweeps per day by outcome",
                    [
                        q(
                            f"sum by (outcome) (increase(ray_rtml_sweeps_total{{{u}}}[1d]))",
                            "{{outcome}}",
                        )
                    ],
                    width=12,
                ),
                Panel(
                    "Sweep duration (mean)",
                    [
                        q(
                            f"sum by (outcome) (rate(ray_rtml_sweep_duration_s_sum{{{u}}}[1d])) / "
                            f"sum by (outcome) (rate(ray_rtml_sweep_duration_s_count{{{u}}}[1d]))",
                            "{{outcome}}",
                        )
                    ],
                    "s",
                    width=12,
                ),
            ],
        ),
    ]
    return dashboard(
        f"rtml-{name}",
        f"rtml · {name} · {title}",
        rows,
        f"{title}: online metrics over time next to the champion's, predictions, latency.",
    )


def serving() -> dict[str, Any]:
    rows = [
        Row(
            "HTTP (Ray Serve's own metrics)",
            [
                Panel(
                    "Requests / s by route",
                    [
                        q(
                            f"sum by (route) (rate(ray_serve_num_http_requests_total[{RATE}]))",
                            "{{route}}",
                        )
                    ],
                    "reqps",
                    width=8,
                ),
                Panel(
                    "Responses / s by status",
                    [
                        q(
                            "sum by (status_code) "
                            f"(rate(ray_serve_num_http_requests_total[{RATE}]))",
                            "{{status_code}}",
                        )
                    ],
                    "reqps",
                    width=8,
                ),
                Panel(
                    "Request latency p99 by route",
                    [
                        q(
                            "histogram_quantile(0.99, sum by (route, le) "
                            f"(rate(ray_serve_http_request_latency_ms_bucket[{RATE}])))",
                            "{{route}}",
                        )
                    ],
                    "ms",
                    width=8,
                ),
                Panel(
                    "Errors / s by route and code",
                    [
                        q(
                            "sum by (route, error_code) "
                            f"(rate(ray_serve_num_http_error_requests_total[{RATE}]))",
                            "{{route}} {{error_code}}",
                        )
                    ],
                    "reqps",
                    width=12,
                ),
                Panel(
                    "Healthy replicas",
                    [
                        q(
                            "sum by (deployment) (ray_serve_deployment_replica_healthy)",
                            "{{deployment}}",
                        )
                    ],
                    width=12,
                ),
            ],
        ),
        Row(
            "Predictions (rtml)",
            [
                Panel(
                    "Predictions / s",
                    [
                        q(
                            "sum by (usecase, kind) "
                            f"(rate(ray_rtml_serve_predictions_total[{RATE}]))",
                            "{{usecase}} {{kind}}",
                        )
                    ],
                    "ops",
                    width=8,
                ),
                Panel(
                    "Prediction latency p99",
                    [
                        q(
                            "histogram_quantile(0.99, sum by (usecase, kind, le) "
                            f"(rate(ray_rtml_serve_prediction_latency_s_bucket[{RATE}])))",
                            "{{usecase}} {{kind}}",
                        )
                    ],
                    "s",
                    width=8,
                ),
                Panel(
                    "Batch cache hit ratio",
                    [
                        q(
                            "sum by (usecase) "
                            f'(rate(ray_rtml_serve_cache_requests_total{{result="hit"}}[{RATE}])) '
                            "/ sum by (usecase) "
                            f"(rate(ray_rtml_serve_cache_requests_total[{RATE}]))",
                            "{{usecase}}",
                        )
                    ],
                    "percentunit",
                    width=8,
                ),
                Panel(
                    "Model version served",
                    [
                        q(
                            "max by (usecase, kind) (ray_rtml_serve_model_version)",
                            "{{usecase}} {{kind}}",
                        )
                    ],
                    width=8,
                ),
                Panel(
                    "Model swaps (last hour)",
                    [
                        q(
                            "sum by (usecase, kind) "
                            "(increase(ray_rtml_serve_model_swaps_total[1h]))",
                            "{{usecase}} {{kind}}",
                        )
                    ],
                    width=8,
                ),
                Panel(
                    "Errors / s",
                    [
                        q(
                            "sum by (usecase, kind, status) "
                            f"(rate(ray_rtml_serve_errors_total[{RATE}]))",
                            "{{usecase}} {{kind}} {{status}}",
                        )
                    ],
                    "ops",
                    width=8,
                ),
            ],
        ),
    ]
    return dashboard(
        "rtml-serving",
        "rtml · serving",
        rows,
        "Ray Serve's HTTP metrics and rtml's predictions, cache and model versions.",
    )


def streaming() -> dict[str, Any]:
    rows = [
        Row(
            "Producers",
            [
                Panel(
                    "Produced / s",
                    [
                        q(
                            f"sum by (usecase) (rate(rtml_events_produced_total[{RATE}]))",
                            "{{usecase}}",
                        )
                    ],
                    "ops",
                    width=8,
                ),
                Panel(
                    "Failed / s",
                    [
                        q(
                            f"sum by (usecase) (rate(rtml_events_produce_failed_total[{RATE}]))",
                            "{{usecase}}",
                        )
                    ],
                    "ops",
                    width=8,
                ),
                Panel(
                    "Send → ack p99",
                    [
                        q(
                            "histogram_quantile(0.99, sum by (usecase, le) "
                            f"(rate(rtml_produce_latency_seconds_bucket[{RATE}])))",
                            "{{usecase}}",
                        )
                    ],
                    "s",
                    width=8,
                ),
            ],
        ),
        Row(
            "Lakehouse: Kafka → Delta",
            [
                Panel(
                    "Rows landed / s",
                    [
                        q(
                            f"sum by (usecase) (rate(rtml_lake_rows_total[{RATE}]))",
                            "bronze {{usecase}}",
                        ),
                        q(
                            f"sum by (usecase) (rate(rtml_lake_quarantined_total[{RATE}]))",
                            "quarantine {{usecase}}",
                        ),
                    ],
                    "ops",
                    width=8,
                ),
                Panel(
                    "Records not yet landed",
                    [q("sum by (usecase) (rtml_lake_offsets_behind)", "{{usecase}}")],
                    width=8,
                ),
                Panel(
                    "Ingest lag (Kafka → Delta)",
                    [q("max by (usecase) (rtml_lake_ingest_lag_seconds)", "{{usecase}}")],
                    "s",
                    width=8,
                ),
                Panel(
                    "Since the last batch",
                    [
                        q(
                            "time() - max by (usecase) (rtml_lake_last_batch_timestamp_seconds)",
                            "{{usecase}}",
                        )
                    ],
                    "s",
                    width=12,
                ),
                Panel(
                    "Queries active",
                    [q("sum by (usecase) (rtml_lake_query_active)", "{{usecase}}")],
                    kind="stat",
                    width=12,
                ),
            ],
        ),
        Row(
            "Learners' side of the stream",
            [
                Panel(
                    "Consumer lag",
                    [q("sum by (usecase) (ray_rtml_learner_consumer_lag)", "{{usecase}}")],
                    width=12,
                ),
                Panel(
                    "Dead-lettered / s",
                    [
                        q(
                            "sum by (usecase, kind) "
                            f"(rate(ray_rtml_learner_events_dead_lettered_total[{RATE}]))",
                            "{{usecase}} {{kind}}",
                        )
                    ],
                    "ops",
                    width=12,
                ),
            ],
        ),
    ]
    return dashboard(
        "rtml-streaming",
        "rtml · streaming and lakehouse",
        rows,
        "Producers, the Kafka → Delta job, and the learners' consumer lag.",
    )


def build() -> dict[str, dict[str, Any]]:
    """File name → dashboard model, for every dashboard."""
    sys.path.insert(0, str(HERE.parents[1]))
    from rtml.usecases import USECASES

    out = {"overview.json": overview(), "serving.json": serving(), "streaming.json": streaming()}
    for name, spec in USECASES.items():
        out[f"usecase-{name}.json"] = usecase(name, spec.title, spec.primary_metric)
    return out


def render(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for filename, model in build().items():
        (HERE / filename).write_text(render(model))
        print(f"wrote {HERE / filename}")


if __name__ == "__main__":
    main()
