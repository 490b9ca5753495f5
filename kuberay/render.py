"""Fill the manifests in ``kuberay/manifests/`` with parameters: the Python half of one contract.

Each manifest is YAML with ``${name}`` placeholders in value positions. A value is substituted as
JSON, which is valid YAML, so a placeholder can stand for a string, a number, a list or a mapping
and the file stays readable YAML before rendering. The Helm chart substitutes the same files the
same way (``rtml.kuberay`` in ``charts/rtml/templates/_helpers.tpl``); a test renders both with the
same parameters and requires the same objects, so the two renderers cannot drift apart.

``serveConfigV2`` is ``ray_apps/serve_config.yaml``, embedded verbatim: the one Serve config.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields, replace
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

import yaml

from rtml.usecases import USECASES

#: Package data of ``kuberay`` and ``ray_apps`` (pyproject's ``[tool.setuptools.package-data]``):
#: an installed rtml renders them too (the image's sweep CronJob).
MANIFESTS = files("kuberay") / "manifests"
#: The one Serve config (ray_apps/).
SERVE_CONFIG = files("ray_apps") / "serve_config.yaml"
PLACEHOLDER = re.compile(r"\$\{([a-z_]+)\}")
#: Kubernetes object names: DNS-1123 labels of at most 63 characters.
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
UPGRADE_TYPES = ("NewCluster", "NewClusterWithIncrementalUpgrade", "None")


class RenderError(ValueError):
    """A manifest cannot be rendered: a placeholder has no value, or a value is invalid."""


def _resources(cpu: str, memory: str, cpu_limit: str | None = None) -> dict[str, Any]:
    # Memory limit = request: a pod is never killed for using what it was promised, and the
    # scheduler's view is the truth. CPU is left burstable up to the limit.
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit or cpu, "memory": memory},
    }


@dataclass(frozen=True)
class ClusterParams:
    """What varies between installations; the chart's values carry the same (docs/kubernetes.md).

    The defaults are sized from what the local stack measured (see charts/rtml/values.yaml).
    """

    name: str = "rtml"
    namespace: str = "rtml"
    image: str = "ghcr.io/rtml/rtml:0.1.0"
    image_pull_policy: str = "IfNotPresent"
    #: ConfigMap of RTML_* settings and Secret of RTML_* secrets, both loaded with envFrom.
    config_map: str = "rtml-config"
    secret: str = "rtml-secrets"
    upgrade_strategy: dict[str, Any] = field(default_factory=lambda: {"type": "NewCluster"})
    head_resources: dict[str, Any] = field(default_factory=lambda: _resources("1", "3Gi", "2"))
    learner_replicas: int = 1
    #: Learner actors one learner pod holds (one CPU each): 3 use cases x RTML_LEARNER_SHARDS.
    learner_slots: int = 3
    learner_resources: dict[str, Any] = field(default_factory=lambda: _resources("3", "4Gi", "4"))
    serve_min: int = 1
    serve_max: int = 4
    serve_resources: dict[str, Any] = field(default_factory=lambda: _resources("2", "2Gi"))
    trial_min: int = 0
    trial_max: int = 4
    trial_resources: dict[str, Any] = field(default_factory=lambda: _resources("2", "4Gi"))
    labels: dict[str, str] = field(default_factory=dict)

    def with_overrides(self, overrides: dict[str, Any]) -> ClusterParams:
        """A copy with some fields replaced (``RTML_K8S_PARAMS``, JSON); an unknown field is an
        error, so a typo never falls back silently to a default."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise RenderError(f"unknown cluster parameter(s): {', '.join(unknown)}")
        return replace(self, **overrides)

    def check(self) -> None:
        for what, value in (("name", self.name), ("namespace", self.namespace)):
            if not NAME.match(value):
                raise RenderError(f"{what} {value!r} is not a DNS-1123 label (a-z, 0-9, '-')")
        kind = self.upgrade_strategy.get("type")
        if kind not in UPGRADE_TYPES:
            raise RenderError(
                f"upgrade strategy {kind!r}: choose one of {', '.join(UPGRADE_TYPES)}"
            )
        if (
            kind == "NewClusterWithIncrementalUpgrade"
            and "clusterUpgradeOptions" not in self.upgrade_strategy
        ):
            raise RenderError(
                "NewClusterWithIncrementalUpgrade needs clusterUpgradeOptions (a Gateway)"
            )
        if not 0 <= self.serve_min <= self.serve_max or not 0 <= self.trial_min <= self.trial_max:
            raise RenderError("min replicas must be >= 0 and <= max replicas")
        if self.learner_replicas < 1 or self.learner_slots < 1:
            raise RenderError("learners need at least one pod and one slot")

    def common(self) -> dict[str, Any]:
        """Placeholders every manifest shares."""
        labels = {
            "app.kubernetes.io/name": "rtml",
            "app.kubernetes.io/instance": self.name,
            **self.labels,
        }
        return {
            "namespace": self.namespace,
            "labels": labels,
            "pod_labels": {
                "app.kubernetes.io/name": "rtml",
                "app.kubernetes.io/instance": self.name,
            },
            "image": self.image,
            "image_pull_policy": self.image_pull_policy,
            "env_from": [
                {"configMapRef": {"name": self.config_map}},
                # optional: a cluster without secrets (a kind test) still starts
                {"secretRef": {"name": self.secret, "optional": True}},
            ],
            "head_resources": self.head_resources,
        }


def fill(text: str, values: dict[str, Any], source: str = "manifest") -> str:
    """Replace every ``${key}`` with ``values[key]`` as JSON, in one pass (a value is never
    scanned again); a placeholder without a value is an error, never left in the output."""
    missing = sorted({m for m in PLACEHOLDER.findall(text) if m not in values})
    if missing:
        raise RenderError(f"{source}: no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda m: json.dumps(values[m[1]]), text)


def placeholders(manifest: str) -> set[str]:
    """The placeholder names a manifest uses (the contract with the chart)."""
    return set(PLACEHOLDER.findall((MANIFESTS / manifest).read_text()))


def render_file(manifest: str, values: dict[str, Any]) -> dict[str, Any]:
    text = fill((MANIFESTS / manifest).read_text(), values, manifest)
    obj = yaml.safe_load(text)
    if not isinstance(obj, dict):
        raise RenderError(f"{manifest} did not render to one object")
    return obj


def serve_config_text(path: Traversable = SERVE_CONFIG) -> str:
    """The Serve config as KubeRay embeds it: the file's text, checked to be a Serve config."""
    if not path.is_file():
        raise RenderError(f"{path} is missing: it is the one Serve config the RayService embeds")
    text = path.read_text()
    config = yaml.safe_load(text)
    if not isinstance(config, dict) or not config.get("applications"):
        raise RenderError(f"{path} has no `applications`: not a Ray Serve config")
    return text


def rayservice(params: ClusterParams, serve_config: str | None = None) -> dict[str, Any]:
    """The RayService: serving and learners in one autoscaled Ray cluster."""
    params.check()
    return render_file(
        "rayservice.yaml",
        {
            **params.common(),
            "name": params.name,
            "upgrade_strategy": params.upgrade_strategy,
            "serve_config": serve_config if serve_config is not None else serve_config_text(),
            "learner_replicas": params.learner_replicas,
            "learner_slots": str(params.learner_slots),
            "learner_resources": params.learner_resources,
            "serve_min": params.serve_min,
            "serve_max": params.serve_max,
            "serve_resources": params.serve_resources,
        },
    )


def sweep_name(usecase: str, stamp: str) -> str:
    """A RayJob's name: one per use case and submission (``stamp``, e.g. a UTC time)."""
    name = f"rtml-sweep-{usecase}-{stamp}".lower()
    if not NAME.match(name):
        raise RenderError(f"sweep name {name!r} is not a DNS-1123 label")
    return name


def rayjob_sweep(
    params: ClusterParams, usecase: str, trials: int, stamp: str, deadline_s: int = 6 * 3600
) -> dict[str, Any]:
    """A RayJob that runs ``python -m jobs.tune --usecase <usecase> --trials <trials>`` on its own
    Ray cluster, deleted when the job ends."""
    params.check()
    if usecase not in USECASES:
        raise RenderError(f"unknown use case {usecase!r}; choose from {', '.join(USECASES)}")
    if trials < 1:
        raise RenderError("a sweep needs at least one trial")
    job = render_file(
        "rayjob-sweep.yaml",
        {
            **params.common(),
            "name": sweep_name(usecase, stamp),
            "entrypoint": f"python -m jobs.tune --usecase {usecase} --trials {trials}",
            "deadline_s": deadline_s,
            "trial_min": params.trial_min,
            "trial_max": params.trial_max,
            "trial_resources": params.trial_resources,
        },
    )
    job["metadata"]["labels"]["rtml.io/usecase"] = usecase
    return job
