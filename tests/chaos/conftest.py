"""The chaos suite's stack: Kafka, Redis, MLflow and Ray started by the project's own `rtml up`
for this package (``tests/stack.py``), and a verify session on it (the API deployed with the
scenarios' quick settings)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rtml.settings import Settings
from tests.stack import run_stack
from verify.context import Context
from verify.session import session

PARTS = ["kafka", "redis", "mlflow", "ray"]
TOKEN = "chaos-test-token"


@pytest.fixture(scope="package")
def stack() -> Iterator[Settings]:
    yield from run_stack(PARTS)


@pytest.fixture(scope="package")
def ctx(stack: Settings) -> Iterator[Context]:
    context = Context(stack, seed=7, api_token=TOKEN)
    with session(context, api=True):
        yield context
