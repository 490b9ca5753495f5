"""What runs on Ray: the online learners (and later the Serve deployments).

Ray reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` once, when it is first imported, and without it
rewrites the local stack's loopback address to the outside one (see ``rtml.ray_env``). Importing
this package therefore configures the process first, before any module here imports Ray.
"""

from rtml.ray_env import apply_ray_env
from rtml.settings import get_settings

apply_ray_env(get_settings())
