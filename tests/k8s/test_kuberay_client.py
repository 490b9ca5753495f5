"""kuberay/client.py against a fake CustomObjectsApi: the boundary is faked, the logic is real."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kuberay import render
from kuberay.client import (
    GROUP,
    VERSION,
    KubeRay,
    KubeRayError,
    job_finished,
    service_ready,
    summary,
)


class ApiException(Exception):
    """Like kubernetes.client.ApiException: the HTTP status on ``.status``."""

    def __init__(self, status: int) -> None:
        super().__init__(f"({status})")
        self.status = status


class FakeCustomObjects:
    """An in-memory API server for namespaced custom objects, recording every call."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_with: int | None = None
        self.script: list[dict[str, Any]] = []  # statuses that successive gets return

    def _key(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> tuple[str, str, str]:
        assert (group, version) == (GROUP, VERSION)
        return namespace, plural, name

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        self.calls.append(("create", body["metadata"]["name"]))
        if self.fail_with:
            raise ApiException(self.fail_with)
        key = self._key(group, version, namespace, plural, body["metadata"]["name"])
        if key in self.objects:
            raise ApiException(409)
        self.objects[key] = copy.deepcopy(body)
        return body

    def patch_namespaced_custom_object(self, group, version, namespace, plural, name, body):
        self.calls.append(("patch", name))
        key = self._key(group, version, namespace, plural, name)
        self.objects[key] = {**self.objects[key], **copy.deepcopy(body)}
        return self.objects[key]

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        key = self._key(group, version, namespace, plural, name)
        if key not in self.objects:
            raise ApiException(404)
        if self.script:
            self.objects[key]["status"] = self.script.pop(0)
        return copy.deepcopy(self.objects[key])

    def delete_namespaced_custom_object(self, group, version, namespace, plural, name):
        key = self._key(group, version, namespace, plural, name)
        if key not in self.objects:
            raise ApiException(404)
        del self.objects[key]

    def list_namespaced_custom_object(self, group, version, namespace, plural, **kw):
        return {
            "items": [o for (ns, p, _), o in self.objects.items() if (ns, p) == (namespace, plural)]
        }


@pytest.fixture
def api() -> FakeCustomObjects:
    return FakeCustomObjects()


def service() -> dict[str, Any]:
    return render.rayservice(render.ClusterParams())


def test_apply_creates_then_patches(api: FakeCustomObjects) -> None:
    client = KubeRay(api, "rtml")
    assert client.apply(service()).action == "created"
    changed = service()
    changed["spec"]["serveConfigV2"] = "applications: []\n"
    assert client.apply(changed).action == "patched"
    assert api.calls == [("create", "rtml"), ("create", "rtml"), ("patch", "rtml")]
    assert client.get("RayService", "rtml")["spec"]["serveConfigV2"] == "applications: []\n"


def test_apply_reports_other_refusals(api: FakeCustomObjects) -> None:
    api.fail_with = 422
    with pytest.raises(KubeRayError, match="create RayService/rtml"):
        KubeRay(api, "rtml").apply(service())


def test_apply_refuses_objects_it_does_not_own(api: FakeCustomObjects) -> None:
    client = KubeRay(api, "rtml")
    with pytest.raises(KubeRayError, match=r"not a ray\.io/v1 object"):
        client.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    with pytest.raises(KubeRayError, match="namespace 'rtml'"):
        KubeRay(api, "other").apply(service())


def test_get_and_delete_are_idempotent(api: FakeCustomObjects) -> None:
    client = KubeRay(api, "rtml")
    assert client.get("RayService", "rtml") is None
    assert client.delete("RayService", "rtml") is False
    client.apply(service())
    assert client.delete("RayService", "rtml") is True
    assert client.get("RayService", "rtml") is None


def test_watch_yields_changes_until_done(api: FakeCustomObjects) -> None:
    client = KubeRay(api, "rtml")
    client.apply(service())
    pending = {"conditions": [{"type": "Ready", "status": "False"}]}
    ready = {"conditions": [{"type": "Ready", "status": "True"}]}
    api.script = [pending, pending, ready]
    sleeps: list[float] = []
    seen = list(client.watch("RayService", "rtml", service_ready, sleep=sleeps.append, poll_s=2))
    assert seen == [pending, ready]  # an unchanged status is not yielded twice
    assert sleeps == [2, 2]


def test_watch_times_out(api: FakeCustomObjects) -> None:
    client = KubeRay(api, "rtml")
    client.apply(service())
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    with pytest.raises(TimeoutError):
        list(
            client.watch(
                "RayService", "rtml", service_ready, timeout_s=30, sleep=sleep, clock=lambda: now[0]
            )
        )
    assert now[0] >= 30


def test_watch_fails_when_the_object_goes(api: FakeCustomObjects) -> None:
    with pytest.raises(KubeRayError, match="does not exist"):
        list(KubeRay(api, "rtml").watch("RayJob", "gone", job_finished, sleep=lambda s: None))


def test_summaries() -> None:
    svc = {
        "metadata": {"name": "rtml"},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "UpgradeInProgress", "status": "False"},
            ],
            "activeServiceStatus": {
                "rayClusterName": "rtml-abc",
                "applicationStatuses": {"rtml": {"status": "RUNNING"}},
            },
        },
    }
    assert summary("RayService", svc) == {
        "kind": "RayService",
        "name": "rtml",
        "ready": True,
        "upgrading": False,
        "apps": {"rtml": "RUNNING"},
        "cluster": "rtml-abc",
    }
    job = {
        "metadata": {"name": "j"},
        "status": {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"},
    }
    assert summary("RayJob", job)["job"] == "SUCCEEDED"
    assert job_finished(job["status"]) and not job_finished({"jobDeploymentStatus": "Running"})
