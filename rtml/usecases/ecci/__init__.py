"""E-commerce customer interactions: the spec (``spec``) and the world that generates its events
(``world``). Importing the package loads the spec alone; the world, and Faker with it, only
where events are generated (``rtml.usecases.generators``).
"""

from rtml.usecases.ecci.spec import SPEC

__all__ = ["SPEC"]
