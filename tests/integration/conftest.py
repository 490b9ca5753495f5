"""The real services of the integration tests (``tests/stack.py``): started once for the package
by the project's own `rtml up`, stopped by `rtml down` after its last test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rtml.settings import Settings
from tests.stack import run_stack

SERVICES = ["kafka", "redis", "mlflow", "ray"]


@pytest.fixture(scope="package")
def stack() -> Iterator[Settings]:
    yield from run_stack(SERVICES)
