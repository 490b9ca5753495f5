"""``python -m rtml.stack.ray_node <ray start arguments>``: `ray start` for a second node of the
local stack's Ray cluster on the same machine (the cluster profile's ``ray-worker`` part).

Every local Ray process runs with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (``rtml.ray_env``): it
is the one switch that keeps Ray's listeners and the addresses it hands around on 127.0.0.1. But
Ray 2.60's `ray start` reads the same variable as "multi-node clusters are unsupported here" and
refuses to start a worker node. This entry point lifts that refusal alone — `ray start`'s own
module sees the switch on — while everything that resolves addresses keeps it off, so the node
joins the head on loopback like every other process of the stack.
"""

from __future__ import annotations

import sys
import types


def main() -> None:
    from ray._private import ray_constants
    from ray.scripts import scripts

    constants = types.ModuleType(ray_constants.__name__)
    constants.__dict__.update(vars(ray_constants))
    constants.ENABLE_RAY_CLUSTER = True  # type: ignore[attr-defined]
    scripts.ray_constants = constants
    sys.argv = ["ray", "start", *sys.argv[1:]]
    scripts.main()


if __name__ == "__main__":
    main()
