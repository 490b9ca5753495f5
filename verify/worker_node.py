"""``python -m verify.worker_node <ray start arguments>``: `ray start` for a second Ray node
on this machine, beside the local stack's head.

The local stack keeps every Ray listener on 127.0.0.1 with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
(``rtml.ray_env``), and with that variable `ray start` refuses to join a head ("multi-node
clusters are not supported"); with it set to 1 instead, Ray rewrites 127.0.0.1 to the machine's
outside address, where the head does not listen. So this runs Ray's own `ray start` with the
check passed and the node address kept on loopback — the one policy of the local stack.
"""

from __future__ import annotations

import sys

from rtml.settings import LOOPBACK


def main() -> None:
    import ray._private.ray_constants as constants
    import ray._private.services as services

    constants.ENABLE_RAY_CLUSTER = True
    services.get_node_ip_address = lambda address=None: LOOPBACK

    from ray.scripts.scripts import main as ray_main

    sys.argv = ["ray", "start", *sys.argv[1:]]
    ray_main()


if __name__ == "__main__":
    main()
