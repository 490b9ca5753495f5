"""charts/rtml: lint, render with every set of values, and validate every object it renders —
Kubernetes kinds by the API's own schemas, ray.io kinds by the KubeRay CRDs — and check that
what it embeds (Serve config, alert rules, dashboards, the RayService) comes from the one source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kuberay import render
from kuberay.render import ClusterParams
from rtml.usecases import USECASES
from tests.k8s.conftest import (
    CHART,
    KUBE_VERSIONS,
    ROOT,
    VALUE_SETS,
    crd_errors,
    helm_template,
    rendered,
    run,
    tool,
)

#: CRD kinds whose schemas are not available offline here: checked for shape below, not by schema.
UNVALIDATED_GROUPS = {"monitoring.coreos.com", "kafka.strimzi.io"}


def objects(value_set: str) -> list[dict[str, Any]]:
    return list(rendered(value_set))


def by_kind(value_set: str, kind: str) -> list[dict[str, Any]]:
    return [o for o in objects(value_set) if o["kind"] == kind]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_helm_lint(value_set: str) -> None:
    args = [tool("helm"), "lint", str(CHART), "--strict", "--kube-version", KUBE_VERSIONS[-1]]
    for path in VALUE_SETS[value_set]:
        args += ["-f", str(path)]
    done = run(args)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_object_is_valid(value_set: str, kube_version: str) -> None:
    docs = (
        objects(value_set)
        if kube_version == KUBE_VERSIONS[-1]
        else helm_template(VALUE_SETS[value_set], kube_version=kube_version)
    )
    assert docs, "the chart rendered nothing"
    errors: list[str] = []
    for obj in docs:
        group = obj["apiVersion"].rpartition("/")[0]
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if group == "ray.io":
            errors += [f"{where}: {e}" for e in crd_errors(obj)]
        elif group in UNVALIDATED_GROUPS:
            assert obj.get("spec"), f"{where} has no spec"
        else:
            try:
                kubernetes_validate.validate(obj, kube_version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                errors.append(f"{where}: {str(exc).splitlines()[0]}")
    assert errors == []


def test_optional_parts_are_optional() -> None:
    default = {o["kind"] for o in objects("default")}
    everything = {o["kind"] for o in objects("all-enabled")}
    assert {"RayService", "ConfigMap", "Deployment", "StatefulSet", "Service"} <= default
    assert not default & {"CronJob", "Kafka", "PodMonitor", "PrometheusRule"}
    assert {
        "CronJob",
        "Kafka",
        "KafkaNodePool",
        "PodMonitor",
        "PrometheusRule",
        "Role",
    } <= everything
    external = {f"{o['kind']}/{o['metadata']['name']}" for o in objects("external")}
    assert "StatefulSet/rtml-redis" not in external and "Deployment/rtml-mlflow" not in external


def test_the_chart_renders_the_same_rayservice_as_the_python_renderer() -> None:
    """Two renderers of kuberay/manifests/rayservice.yaml, one result."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    for value_set in VALUE_SETS:
        for path in VALUE_SETS[value_set]:
            values = merge(values, yaml.safe_load(path.read_text()))
        rs = values["rayService"]
        params = ClusterParams(
            name="rtml",
            namespace="rtml",
            image=f"{values['image']['repository']}:{chart['appVersion']}",
            config_map="rtml-config",
            secret=values["secrets"]["existingSecret"],
            upgrade_strategy=rs["upgradeStrategy"],
            head_resources=rs["head"]["resources"],
            learner_replicas=rs["learners"]["replicas"],
            learner_slots=rs["learners"]["slots"],
            learner_resources=rs["learners"]["resources"],
            serve_min=rs["serve"]["minReplicas"],
            serve_max=rs["serve"]["maxReplicas"],
            serve_resources=rs["serve"]["resources"],
        )
        (helm,) = by_kind(value_set, "RayService")
        python = render.rayservice(params)
        assert helm["spec"] == python["spec"], value_set
        assert helm["metadata"]["name"] == python["metadata"]["name"]


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def test_serve_config_v2_is_ray_apps_serve_config() -> None:
    (rs,) = by_kind("default", "RayService")
    assert rs["spec"]["serveConfigV2"] == (ROOT / "ray_apps" / "serve_config.yaml").read_text()


def test_chart_files_are_links_to_the_one_source() -> None:
    """Helm reads only inside the chart, so files/ links to the sources (helm follows links); a
    copy would drift."""
    links = {
        "kuberay": ROOT / "kuberay" / "manifests",
        "serve_config.yaml": ROOT / "ray_apps" / "serve_config.yaml",
        "monitoring": ROOT / "monitoring",
    }
    for name, source in links.items():
        path = CHART / "files" / name
        assert path.is_symlink(), f"{path} must be a link to {source}, not a copy"
        assert path.resolve() == source.resolve()


def rule_files() -> list[Path]:
    return sorted((ROOT / "monitoring" / "rules").glob("*.yml"))


def test_prometheus_rule_is_monitoring_rules() -> None:
    if not rule_files():
        pytest.skip("monitoring/rules has no *.yml yet")
    (rule,) = by_kind("all-enabled", "PrometheusRule")
    groups = [g for path in rule_files() for g in yaml.safe_load(path.read_text())["groups"]]
    assert rule["spec"]["groups"] == groups
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_dashboards_are_monitoring_grafana() -> None:
    sources = {p.name: p.read_text() for p in (ROOT / "monitoring" / "grafana").rglob("*.json")}
    if not sources:
        pytest.skip("monitoring/grafana has no dashboards yet")
    maps = [
        c
        for c in by_kind("all-enabled", "ConfigMap")
        if c["metadata"]["labels"].get("grafana_dashboard")
    ]
    rendered_dashboards = {k: v for c in maps for k, v in c["data"].items()}
    assert rendered_dashboards == sources
    for text in rendered_dashboards.values():
        json.loads(text)


def test_secrets_are_referenced_never_written() -> None:
    secret_words = ("PASSWORD", "SECRET", "TOKEN", "KEY")
    for value_set in VALUE_SETS:
        assert not by_kind(value_set, "Secret"), "the chart must not create Secrets"
        for obj in objects(value_set):
            for c in containers(obj):
                for env in c.get("env", []):
                    literal = "value" in env and not env["name"].endswith("_NAME")  # a reference
                    if literal and any(w in env["name"].upper() for w in secret_words):
                        pytest.fail(
                            f"{obj['kind']}/{obj['metadata']['name']}: "
                            f"{env['name']} has a literal value"
                        )
        (config,) = [
            c for c in by_kind(value_set, "ConfigMap") if c["metadata"]["name"] == "rtml-config"
        ]
        assert not [
            k
            for k in config["data"]
            if any(w in k for w in ("PASSWORD", "SECRET", "TOKEN", "CHECKPOINT_KEY"))
        ]


def containers(obj: Any) -> list[dict[str, Any]]:
    """Every container spec anywhere inside an object (Deployments, CronJobs, Ray groups)."""
    found: list[dict[str, Any]] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                found += value
            else:
                found += containers(value)
    elif isinstance(obj, list):
        for item in obj:
            found += containers(item)
    return found


def test_every_container_is_sized_and_non_root() -> None:
    for obj in objects("all-enabled"):
        for c in containers(obj):
            where = f"{obj['kind']}/{obj['metadata']['name']}/{c['name']}"
            assert c["resources"]["requests"]["memory"] == c["resources"]["limits"]["memory"], where
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, where
    pod_specs = [
        o["spec"]["template"]["spec"]
        for o in objects("all-enabled")
        if o["kind"] in ("Deployment", "StatefulSet")
    ]
    assert all(p["securityContext"]["runAsNonRoot"] for p in pod_specs)


def test_sweep_cronjob_submits_a_valid_rayjob() -> None:
    """The CronJob's command and RTML_K8S_PARAMS make a RayJob that KubeRay's CRD accepts."""
    from typer.testing import CliRunner

    from rtml.cli import app

    cronjobs = by_kind("all-enabled", "CronJob")
    assert {c["metadata"]["labels"]["rtml.io/usecase"] for c in cronjobs} == set(USECASES)
    for cron in cronjobs:
        (c,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e["value"] for e in c["env"]}
        assert c["command"][:3] == ["rtml", "k8s", "submit-sweep"]
        # the same command, rendering instead of submitting (no cluster here)
        out = CliRunner().invoke(
            app, ["k8s", "render", "--sweep", c["command"][3], "--trials", c["command"][5]], env=env
        )
        assert out.exit_code == 0, out.output
        job = yaml.safe_load(out.output)
        assert crd_errors(job) == []
        assert (
            job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0][
                "image"
            ]
            == env["RTML_K8S_IMAGE"]
        )


@pytest.mark.parametrize(
    "bad",
    [
        "rayService.upgradeStrategy.type=BlueGreen",
        "rayService.upgradeStrategy.type=NewClusterWithIncrementalUpgrade",
        "rayService.learners.replicas=0",
        "redis.storag=1Gi",
        "sweeps.usecases={fraud}",
        "lake.s3.bucket=Not_A_Bucket",
        "settings.KAFKA=1",
        "image.pullPolicy=Sometimes",
    ],
)
def test_schema_refuses_wrong_values(bad: str) -> None:
    done = run(
        [
            tool("helm"),
            "template",
            "rtml",
            str(CHART),
            "--kube-version",
            KUBE_VERSIONS[-1],
            "--set",
            bad,
        ]
    )
    assert done.returncode != 0, f"--set {bad} was accepted"
    assert "schema" in done.stderr or "required" in done.stderr, done.stderr


def test_external_services_need_their_address() -> None:
    done = run(
        [
            tool("helm"),
            "template",
            "rtml",
            str(CHART),
            "--kube-version",
            KUBE_VERSIONS[-1],
            "--set",
            "redis.enabled=false",
        ]
    )
    assert done.returncode != 0 and "redis.url is required" in done.stderr


def test_the_charts_storage_is_the_cluster_profiles() -> None:
    """The chart's buckets, prefix, artifacts destination, Postgres database and driver, and the
    learners' resource are what `rtml up --profile cluster` runs for real in tests/cluster."""
    from rtml.settings import Settings, load_settings

    # The tests' sandbox moves the ports: the chart's are the settings' defaults.
    default_port = Settings.model_fields["postgres_port"].default
    profile = load_settings(
        profile="cluster", lake_s3_endpoint="", postgres_url="", postgres_port=default_port
    )
    (config,) = [
        c for c in by_kind("all-enabled", "ConfigMap") if c["metadata"]["name"] == "rtml-config"
    ]
    data = config["data"]
    assert data["RTML_LAKE_S3_BUCKET"] == profile.lake_s3_bucket
    assert data["RTML_LAKE_S3_PREFIX"] == profile.lake_s3_prefix
    assert data["RTML_LAKE_S3_REGION"] == profile.lake_s3_region
    assert data["RTML_LEARNER_RESOURCE"] == profile.learner_resource
    assert data["RTML_LAKE_S3_ENDPOINT"].startswith("http://")  # host:port, path-style like here
    (mlflow,) = [
        d for d in by_kind("all-enabled", "Deployment") if d["metadata"]["name"] == "rtml-mlflow"
    ]
    (container,) = containers(mlflow)
    args = container["args"]
    destination = args[args.index("--artifacts-destination") + 1]
    assert destination == profile.mlflow_artifacts_destination
    backend = args[args.index("--backend-store-uri") + 1]
    local = profile.postgres
    assert backend.split("://")[0] == local.split("://")[0] == "postgresql+psycopg2"
    assert backend.rsplit(":", 1)[1] == local.rsplit(":", 1)[1] == "5432/mlflow"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLFLOW_S3_ENDPOINT_URL"] == data["RTML_LAKE_S3_ENDPOINT"]
