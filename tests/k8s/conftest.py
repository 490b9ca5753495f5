"""What the Kubernetes tests share: the tools, the rendered chart, and the schemas to check it.

No cluster and no services: helm renders, ``kubernetes-validate`` holds the Kubernetes API
schemas, and the KubeRay CRDs in ``../shared/kuberay-crds`` (``RTML_KUBERAY_CRDS``) hold the
ray.io ones. helm and terraform come from ``scripts/install-tools.sh`` (``make install``); a test
that needs a missing tool or the CRDs skips and says how to get them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "rtml"
TOOLS_BIN = Path(os.environ.get("RTML_TOOLS_BIN", Path.home() / ".cache" / "rtml" / "bin"))
CRDS = Path(os.environ.get("RTML_KUBERAY_CRDS", ROOT.parent / "shared" / "kuberay-crds"))
#: The chart's floor (Chart.yaml kubeVersion) and the newest schemas kubernetes-validate has.
KUBE_VERSIONS = ("1.29.0", "1.37.0")
#: Values files: the defaults, every optional part on, and the external/other-branch choices.
VALUE_SETS = {
    "default": [],
    "all-enabled": [CHART / "ci" / "all-enabled-values.yaml"],
    "external": [CHART / "ci" / "external-values.yaml"],
}


def tool(name: str) -> str:
    for candidate in (TOOLS_BIN / name, shutil.which(name)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.skip(f"{name} not installed: run scripts/install-tools.sh (make install does)")


def run(args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


def helm_template(
    values: list[Path], *extra: str, kube_version: str = KUBE_VERSIONS[-1]
) -> list[dict[str, Any]]:
    """Render the chart; fail the test with helm's message if it does not render."""
    args = [
        tool("helm"),
        "template",
        "rtml",
        str(CHART),
        "--namespace",
        "rtml",
        "--kube-version",
        kube_version,
    ]
    for path in values:
        args += ["-f", str(path)]
    done = run([*args, *extra])
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@cache
def rendered(value_set: str) -> tuple[dict[str, Any], ...]:
    return tuple(helm_template(VALUE_SETS[value_set]))


# -- the KubeRay CRDs as strict JSON schemas -----------------------------------------------------


def strict(schema: Any) -> Any:
    """The CRD schema with unknown fields forbidden: every object that lists its properties gets
    ``additionalProperties: false`` (the API server would silently prune such a field; a typo
    must fail here instead), except where the CRD preserves unknown fields on purpose."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def crd_validator(kind: str, version: str = "v1") -> jsonschema.Draft7Validator:
    path = CRDS / f"ray.io_{kind.lower()}s.yaml"
    if not path.exists():
        pytest.skip(f"KubeRay CRD {path} not found (set RTML_KUBERAY_CRDS to the CRD folder)")
    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    served = {v["name"]: v for v in crd["spec"]["versions"]}
    schema = strict(served[version]["schema"]["openAPIV3Schema"])
    return jsonschema.Draft7Validator(schema)


def crd_errors(obj: dict[str, Any]) -> list[str]:
    kind, version = obj["kind"], obj["apiVersion"].split("/")[1]
    validator = crd_validator(kind, version)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)
    ]
