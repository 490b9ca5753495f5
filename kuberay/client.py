"""Apply, watch and delete KubeRay objects over ``kubernetes.client.CustomObjectsApi``.

There is no KubeRay client on PyPI; the generic custom-objects API (group ``ray.io``, version
``v1``) is all that is needed. The API object is passed in, so tests hand in a fake with the same
five methods and no cluster (:class:`CustomObjects` names them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

GROUP = "ray.io"
VERSION = "v1"
#: kind → plural, as the CRDs name them.
PLURALS = {"RayService": "rayservices", "RayJob": "rayjobs", "RayCluster": "rayclusters"}
#: RayJob states after which nothing changes any more (KubeRay's jobDeploymentStatus).
JOB_FINAL = {"Complete", "Failed"}


class CustomObjects(Protocol):
    """The part of ``kubernetes.client.CustomObjectsApi`` this client uses."""

    def get_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> Any: ...
    def create_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, body: Any
    ) -> Any: ...
    def patch_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: Any
    ) -> Any: ...
    def delete_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> Any: ...
    def list_namespaced_custom_object(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        *,
        label_selector: str | None = ...,
    ) -> Any: ...


class KubeRayError(RuntimeError):
    """The API refused a request; the message says which object and why."""


def _status_code(exc: Exception) -> int | None:
    return getattr(exc, "status", None)


def plural_of(obj: dict[str, Any]) -> str:
    if obj.get("apiVersion") != f"{GROUP}/{VERSION}":
        raise KubeRayError(f"not a {GROUP}/{VERSION} object: apiVersion {obj.get('apiVersion')!r}")
    try:
        return PLURALS[obj["kind"]]
    except KeyError:
        raise KubeRayError(f"unknown KubeRay kind {obj.get('kind')!r}") from None


@dataclass(frozen=True)
class Applied:
    kind: str
    name: str
    action: str  # "created" | "patched"


class KubeRay:
    """Create-or-patch, read, watch and delete ray.io objects in one namespace."""

    def __init__(self, api: CustomObjects, namespace: str) -> None:
        self.api = api
        self.namespace = namespace

    def _args(self, plural: str) -> tuple[str, str, str, str]:
        return GROUP, VERSION, self.namespace, plural

    def apply(self, obj: dict[str, Any]) -> Applied:
        """Create the object, or patch it when it exists (a JSON merge patch of the manifest:
        fields the manifest sets are replaced, the operator's status is left alone)."""
        plural, name = plural_of(obj), obj["metadata"]["name"]
        ns = obj["metadata"].get("namespace", self.namespace)
        if ns != self.namespace:
            raise KubeRayError(
                f"{obj['kind']}/{name} is for namespace {ns!r}, not {self.namespace!r}"
            )
        try:
            self.api.create_namespaced_custom_object(*self._args(plural), body=obj)
            return Applied(obj["kind"], name, "created")
        except Exception as exc:
            if _status_code(exc) != 409:  # 409 Conflict: it exists already
                raise KubeRayError(f"create {obj['kind']}/{name}: {exc}") from exc
        try:
            self.api.patch_namespaced_custom_object(*self._args(plural), name=name, body=obj)
        except Exception as exc:
            raise KubeRayError(f"patch {obj['kind']}/{name}: {exc}") from exc
        return Applied(obj["kind"], name, "patched")

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object as the cluster has it (with status), or None if there is none."""
        try:
            return self.api.get_namespaced_custom_object(*self._args(PLURALS[kind]), name=name)
        except Exception as exc:
            if _status_code(exc) == 404:
                return None
            raise KubeRayError(f"get {kind}/{name}: {exc}") from exc

    def list(self, kind: str, label_selector: str = "") -> list[dict[str, Any]]:
        found = self.api.list_namespaced_custom_object(
            *self._args(PLURALS[kind]), label_selector=label_selector
        )
        return list(found.get("items", []))

    def delete(self, kind: str, name: str) -> bool:
        """Delete it; False when it did not exist (deleting is idempotent)."""
        try:
            self.api.delete_namespaced_custom_object(*self._args(PLURALS[kind]), name=name)
            return True
        except Exception as exc:
            if _status_code(exc) == 404:
                return False
            raise KubeRayError(f"delete {kind}/{name}: {exc}") from exc

    def watch(
        self,
        kind: str,
        name: str,
        done: Callable[[dict[str, Any]], bool],
        timeout_s: float = 600,
        poll_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> Iterator[dict[str, Any]]:
        """Yield the object's status each time it changes, until ``done(status)`` or a timeout.

        Polling rather than a watch stream: a RayService changes status a few times in minutes,
        and a poll survives API-server restarts and expired resource versions without a resume
        protocol. Raises TimeoutError when ``done`` never held, KubeRayError if it disappears.
        """
        deadline, last = clock() + timeout_s, None
        while True:
            obj = self.get(kind, name)
            if obj is None:
                raise KubeRayError(f"{kind}/{name} does not exist (any more)")
            status = obj.get("status") or {}
            if status != last:
                last = status
                yield status
            if done(status):
                return
            if clock() >= deadline:
                raise TimeoutError(f"{kind}/{name} not done after {timeout_s:.0f} s")
            sleep(poll_s)


def service_ready(status: dict[str, Any]) -> bool:
    """A RayService serves when its Ready condition is True (KubeRay >= 1.3 conditions API)."""
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", [])
    )


def job_finished(status: dict[str, Any]) -> bool:
    return status.get("jobDeploymentStatus") in JOB_FINAL


def summary(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """One line's worth of an object's status, for ``rtml k8s status``."""
    status = obj.get("status") or {}
    name = obj["metadata"]["name"]
    if kind == "RayService":
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions", [])}
        apps = (status.get("activeServiceStatus") or {}).get("applicationStatuses") or {}
        return {
            "kind": kind,
            "name": name,
            "ready": conditions.get("Ready") == "True",
            "upgrading": conditions.get("UpgradeInProgress") == "True",
            "apps": {app: s.get("status") for app, s in apps.items()},
            "cluster": (status.get("activeServiceStatus") or {}).get("rayClusterName"),
        }
    return {
        "kind": kind,
        "name": name,
        "deployment": status.get("jobDeploymentStatus"),
        "job": status.get("jobStatus"),
        "start": status.get("startTime"),
        "end": status.get("endTime"),
    }


def connect(context: str | None = None) -> CustomObjects:
    """The real API: in-cluster config inside a pod (the sweep CronJob), else the kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config(context=context)
    return client.CustomObjectsApi()
