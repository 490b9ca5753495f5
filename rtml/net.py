"""Whether something listens at an address: the one probe that the stack (is a part up?) and the
Ray adapter (is there a cluster to join?) both need, kept in the core so neither imports the other.
"""

from __future__ import annotations

import socket


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
