"""E-commerce customer interactions: its spec (``spec``) and the world that generates its events (``world``).

Importing the package loads the spec alone: the world (and Faker, ~0.1 s) only where events are
generated.
"""

from rtml.usecases.ecci.spec import SPEC

__all__ = ["SPEC"]
