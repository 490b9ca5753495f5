"""``rtml k8s render|apply|submit-sweep|status|delete``: rtml on Kubernetes through KubeRay.

The composition root reaching into the ``kuberay`` adapter. Options that say *where* (namespace,
release name, image, kube context) are flags with ``RTML_K8S_*`` variables behind them, so the
chart's sweep CronJob runs the same command with its environment.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from typing import Annotated, Any

import typer
import yaml

from rtml.cli_common import console, err, usecase_names

app = typer.Typer(
    help="rtml on Kubernetes: the RayService and Tune sweeps as RayJobs (KubeRay).",
    no_args_is_help=True,
)


def _params(ctx: typer.Context) -> Any:
    return ctx.obj["params"]


@app.callback()
def options(
    ctx: typer.Context,
    namespace: Annotated[
        str, typer.Option(envvar="RTML_K8S_NAMESPACE", help="Namespace of rtml.")
    ] = "rtml",
    name: Annotated[
        str, typer.Option(envvar="RTML_K8S_NAME", help="Release name (RayService name).")
    ] = "rtml",
    image: Annotated[str | None, typer.Option(envvar="RTML_K8S_IMAGE", help="rtml image.")] = None,
    config_map: Annotated[
        str | None,
        typer.Option(envvar="RTML_K8S_CONFIG_MAP", help="ConfigMap of RTML_* settings."),
    ] = None,
    secret: Annotated[
        str | None, typer.Option(envvar="RTML_K8S_SECRET_NAME", help="Secret of RTML_* secrets.")
    ] = None,
    params_json: Annotated[
        str | None,
        typer.Option(
            "--params", envvar="RTML_K8S_PARAMS", help="JSON of cluster parameters (sizes)."
        ),
    ] = None,
    context: Annotated[
        str | None, typer.Option(help="kubeconfig context (default: current).")
    ] = None,
) -> None:
    """Where rtml lives on the cluster."""
    from kuberay.render import ClusterParams, RenderError

    params = ClusterParams(name=name, namespace=namespace)
    try:
        overrides = json.loads(params_json) if params_json else {}
        params = params.with_overrides(overrides)
    except (ValueError, TypeError, RenderError) as exc:
        err.print(f"[red]--params / RTML_K8S_PARAMS: {exc}[/red]")
        raise typer.Exit(2) from None
    params = replace(
        params,
        image=image or params.image,
        config_map=config_map or f"{name}-config",
        secret=secret or f"{name}-secrets",
    )
    ctx.obj = {"params": params, "context": context}


def _client(ctx: typer.Context) -> Any:
    from kuberay.client import KubeRay, connect

    try:
        api = connect(ctx.obj["context"])
    except Exception as exc:  # noqa: BLE001 - no kubeconfig, bad context: one line, not a trace
        err.print(f"[red]cannot reach the Kubernetes API: {exc}[/red]")
        raise typer.Exit(1) from None
    return KubeRay(api, _params(ctx).namespace)


def _render_or_exit(make: Any) -> dict[str, Any]:
    from kuberay.render import RenderError

    try:
        return make()
    except RenderError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")


def _watch(client: Any, kind: str, name: str, done: Any, timeout_s: float) -> None:
    from kuberay.client import summary

    try:
        for _ in client.watch(kind, name, done, timeout_s=timeout_s):
            obj = client.get(kind, name) or {"metadata": {"name": name}}
            console.print(json.dumps(summary(kind, obj)))
    except TimeoutError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@app.command()
def render(
    ctx: typer.Context,
    sweep: Annotated[
        str | None, typer.Option(help="Render a sweep RayJob for this use case instead.")
    ] = None,
    trials: Annotated[int, typer.Option(min=1)] = 16,
) -> None:
    """Print the RayService (or a sweep RayJob) as YAML, for `kubectl apply -f -` or review."""
    from kuberay import render as r

    params = _params(ctx)
    if sweep is None:
        obj = _render_or_exit(lambda: r.rayservice(params))
    else:
        obj = _render_or_exit(
            lambda: r.rayjob_sweep(params, usecase_names(sweep)[0], trials, _stamp())
        )
    typer.echo(yaml.safe_dump(obj, sort_keys=False), nl=False)


@app.command()
def apply(
    ctx: typer.Context,
    wait: Annotated[bool, typer.Option(help="Wait until the RayService is Ready.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 1200,
) -> None:
    """Create the RayService, or patch it to the rendered one (a Serve-config change is applied in
    place; a cluster change starts the upgrade its strategy says)."""
    from kuberay import render as r
    from kuberay.client import KubeRayError, service_ready

    obj = _render_or_exit(lambda: r.rayservice(_params(ctx)))
    client = _client(ctx)
    try:
        done = client.apply(obj)
    except KubeRayError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"{done.kind}/{done.name}: {done.action}")
    if wait:
        _watch(client, "RayService", done.name, service_ready, timeout)


@app.command("submit-sweep")
def submit_sweep(
    ctx: typer.Context,
    usecase: Annotated[str, typer.Argument(help="The use case to sweep (tfd, eta, ecci).")],
    trials: Annotated[int, typer.Option(min=1, help="Tune trials.")] = 16,
    wait: Annotated[bool, typer.Option(help="Wait until the job has finished.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 6 * 3600,
) -> None:
    """Submit a Tune sweep as a RayJob on a cluster of its own (deleted when the job ends)."""
    from kuberay import render as r
    from kuberay.client import KubeRayError, job_finished

    name = usecase_names(usecase)[0]
    obj = _render_or_exit(lambda: r.rayjob_sweep(_params(ctx), name, trials, _stamp()))
    client = _client(ctx)
    try:
        done = client.apply(obj)
    except KubeRayError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"{done.kind}/{done.name}: {done.action}")
    if wait:
        _watch(client, "RayJob", done.name, job_finished, timeout)
        final = (client.get("RayJob", done.name) or {}).get("status", {})
        if final.get("jobStatus") != "SUCCEEDED":
            raise typer.Exit(1)


@app.command()
def status(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """The RayService's readiness and applications, and the sweep RayJobs."""
    from kuberay.client import summary

    client = _client(ctx)
    params = _params(ctx)
    rows = []
    service = client.get("RayService", params.name)
    rows.append(
        summary("RayService", service)
        if service
        else {"kind": "RayService", "name": params.name, "ready": False, "missing": True}
    )
    selector = f"app.kubernetes.io/instance={params.name},rtml.io/usecase"
    rows += [summary("RayJob", job) for job in client.list("RayJob", label_selector=selector)]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        console.print(" ".join(f"{k}={v}" for k, v in row.items()))


@app.command()
def delete(
    ctx: typer.Context,
    job: Annotated[
        str | None, typer.Option(help="Delete this RayJob instead of the RayService.")
    ] = None,
) -> None:
    """Delete the RayService (its Ray cluster goes with it), or one RayJob."""
    client = _client(ctx)
    kind, name = ("RayJob", job) if job else ("RayService", _params(ctx).name)
    console.print(f"{kind}/{name}: {'deleted' if client.delete(kind, name) else 'not found'}")
