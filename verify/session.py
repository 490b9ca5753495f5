"""The scenarios' session: this process joins Ray as a driver and, when a scenario needs it,
deploys the API with quick settings (a token, 1 s champion polls and fallback refreshes).

Ray is configured by the process's entry point (``rtml verify``, the test session) before this
module imports it: ``rtml.ray_env.apply_ray_env``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ray_apps.learning import actor as learner
from verify.context import Context

#: What the API runs with during the scenarios: it notices new checkpoints and champions within
#: a second, so a restart or a swap is served from fresh state.
API_SETTINGS = {
    "serve_fallback_refresh_s": 1.0,
    "serve_champion_poll_s": 1.0,
    "checkpoint_every_s": 2.0,
}


def deploy_api(ctx: Context, deployment: dict[str, Any] | None = None) -> str:
    from ray_apps.serving import deploy

    return deploy.deploy(
        ctx.settings, extra={**API_SETTINGS, "api_token": ctx.api_token}, deployment=deployment
    )


@contextmanager
def session(ctx: Context, api: bool, restore_api: bool = False) -> Iterator[None]:
    import ray

    learner.connect(ctx.settings)
    try:
        if api:
            ctx.say(f"api: {deploy_api(ctx)}")
        yield
    finally:
        if api and restore_api:  # a stack of the person's: its API as `rtml up` deploys it
            from ray_apps.serving import deploy

            deploy.deploy(ctx.settings)
        ray.shutdown()
