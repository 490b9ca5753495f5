"""How a job's driver joins its Ray cluster."""

from __future__ import annotations

import os

import ray

from rtml.settings import Settings


def connect(settings: Settings) -> None:
    """Join the cluster: the one named by settings, else the job's (``RAY_ADDRESS``), else the
    local stack's.

    Settings come first because the Jobs API resolves the ``RAY_ADDRESS`` it gives a driver
    through ``/tmp/ray``, which names the most recently started cluster on the machine — with two
    local stacks (dev and tests), possibly not the one that runs the job. ``rtml train`` therefore
    passes the address it submitted to as ``RTML_RAY_ADDRESS``; a RayJob on Kubernetes, with one
    cluster per pod, relies on ``RAY_ADDRESS``.
    """
    if not ray.is_initialized():
        address = settings.ray_address or os.environ.get("RAY_ADDRESS") or settings.ray
        ray.init(address=address, log_to_driver=False)
