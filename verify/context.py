"""What a scenario is given: the stack's settings, a seed, quick or long, a way to say progress."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from rtml.settings import Settings


@dataclass
class Context:
    settings: Settings
    seed: int = 7
    #: the long variant: more events, more faults (for a person; figures for the closing note)
    long: bool = False
    say: Callable[[str], None] = print
    #: the bearer token of the API's control routes while the scenarios run
    api_token: str = "rtml-verify"
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def size(self, quick: int, long: int) -> int:
        return long if self.long else quick

    @property
    def api(self) -> str:
        return f"{self.settings.serve_url}/api/v1"
