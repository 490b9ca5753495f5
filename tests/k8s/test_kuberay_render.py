"""kuberay/render.py: the manifests fill completely, and what they give is a valid RayService /
RayJob by KubeRay's own CRD schemas, with the one Serve config inside."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from kuberay import render
from kuberay.render import ClusterParams, RenderError
from rtml.ray_env import SERVE_ENV
from rtml.usecases import USECASES
from tests.k8s.conftest import ROOT, crd_errors


def test_rayservice_is_valid_by_the_crd() -> None:
    assert crd_errors(render.rayservice(ClusterParams())) == []


@pytest.mark.parametrize("usecase", list(USECASES))
def test_sweep_rayjob_is_valid_by_the_crd(usecase: str) -> None:
    job = render.rayjob_sweep(ClusterParams(), usecase, 8, "20260101-000000")
    assert crd_errors(job) == []
    assert job["spec"]["entrypoint"] == f"python -m jobs.tune --usecase {usecase} --trials 8"
    assert job["spec"]["shutdownAfterJobFinishes"] is True
    assert job["metadata"]["labels"]["rtml.io/usecase"] == usecase


def test_the_crd_check_catches_an_unknown_field() -> None:
    """The validation can fail: a misspelt field in a pod template is an error."""
    obj = render.rayservice(ClusterParams())
    obj["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["minReplica"] = 1
    assert any("minReplica" in e for e in crd_errors(obj))


def test_serve_config_is_the_one_file_verbatim() -> None:
    obj = render.rayservice(ClusterParams())
    text = (ROOT / "ray_apps" / "serve_config.yaml").read_text()
    assert obj["spec"]["serveConfigV2"] == text
    assert yaml.safe_load(obj["spec"]["serveConfigV2"])["applications"]


def test_ray_version_everywhere_is_the_pinned_one() -> None:
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ray = next(re.search(r"==([\d.]+)", p)[1] for p in pins if p.startswith("ray["))
    assert render.rayservice(ClusterParams())["spec"]["rayClusterConfig"]["rayVersion"] == ray
    job = render.rayjob_sweep(ClusterParams(), "tfd", 1, "x")
    assert job["spec"]["rayClusterSpec"]["rayVersion"] == ray


def test_every_ray_pod_has_the_local_stacks_serve_data_plane() -> None:
    """The choice measured on the local stack (rtml/ray_env.py) is the one the cluster runs."""
    cluster = render.rayservice(ClusterParams())["spec"]["rayClusterConfig"]
    specs = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for spec in specs:
        for container in spec["template"]["spec"]["containers"]:
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            assert {k: env.get(k) for k in SERVE_ENV} == SERVE_ENV, container["name"]
    assert len(specs) == 3


def test_learners_are_placed_on_the_learner_group_only() -> None:
    groups = render.rayservice(ClusterParams(learner_slots=6))["spec"]["rayClusterConfig"][
        "workerGroupSpecs"
    ]
    by_name = {g["groupName"]: g for g in groups}
    assert by_name["learners"]["resources"] == {"rtml_learner": "6"}
    assert "resources" not in by_name["serve"]
    assert by_name["learners"]["minReplicas"] == by_name["learners"]["maxReplicas"]


def test_parameters_reach_the_manifest() -> None:
    params = ClusterParams(
        name="ml", namespace="prod", image="reg/rtml:9", serve_min=2, serve_max=7
    )
    obj = render.rayservice(params)
    cluster = obj["spec"]["rayClusterConfig"]
    serve = cluster["workerGroupSpecs"][1]
    assert (obj["metadata"]["name"], obj["metadata"]["namespace"]) == ("ml", "prod")
    assert (serve["minReplicas"], serve["maxReplicas"]) == (2, 7)
    images = {
        c["image"]
        for g in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
        for c in g["template"]["spec"]["containers"]
    }
    assert images == {"reg/rtml:9"}


@pytest.mark.parametrize(
    "params",
    [
        ClusterParams(name="Not_A_Name"),
        ClusterParams(upgrade_strategy={"type": "BlueGreen"}),
        ClusterParams(upgrade_strategy={"type": "NewClusterWithIncrementalUpgrade"}),
        ClusterParams(serve_min=5, serve_max=2),
        ClusterParams(learner_slots=0),
    ],
)
def test_bad_parameters_are_refused(params: ClusterParams) -> None:
    with pytest.raises(RenderError):
        render.rayservice(params)


def test_bad_sweeps_are_refused() -> None:
    with pytest.raises(RenderError, match="unknown use case"):
        render.rayjob_sweep(ClusterParams(), "nope", 4, "x")
    with pytest.raises(RenderError, match="at least one trial"):
        render.rayjob_sweep(ClusterParams(), "tfd", 0, "x")


def test_a_missing_placeholder_value_is_an_error_not_a_leftover() -> None:
    with pytest.raises(RenderError, match="no value for b"):
        render.fill("x: ${a}\ny: ${b}\n", {"a": 1})
    assert render.fill("x: ${a}", {"a": {"k": [1, "2"]}}) == 'x: {"k": [1, "2"]}'


def test_overrides_reject_unknown_fields() -> None:
    assert ClusterParams().with_overrides({"trial_max": 9}).trial_max == 9
    with pytest.raises(RenderError, match="trail_max"):
        ClusterParams().with_overrides({"trail_max": 9})
