"""``procman dashboard``: serve the web dashboard."""

from __future__ import annotations

from pathlib import Path

import click

from procman.cli.commands import procfile_option
from procman.cli.jobs import target_options


@click.command()
@procfile_option
@target_options
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=9181,
    show_default=True,
    help="Port to serve on.",
)
@click.option(
    "--bind",
    default="127.0.0.1",
    show_default=True,
    help="Address to serve on; any but the loopback needs PROCMAN_DASHBOARD_USER and "
    "PROCMAN_DASHBOARD_PASSWORD (or PROCMAN_DASHBOARD_PASSWORD_HASH).",
)
def dashboard(
    procfile: Path | None,
    root: Path | None,
    env_files: tuple[str, ...],
    config: Path | None,
    redis_url: str | None,
    port: int,
    bind: str,
) -> int:
    """Serve the web dashboard: processes, queues, workers, failed and scheduled jobs."""
    from procman.cli.commands import to_app_options
    from procman.commands.dashboard import DashboardOptions, serve
    from procman.commands.jobs import JobsOptions

    app = to_app_options(procfile, root, env_files, None)
    options = DashboardOptions(
        jobs=JobsOptions(app=app, config_path=config, redis_url=redis_url), port=port, bind=bind
    )

    def ready(url: str) -> None:
        click.echo(f"procman dashboard: serving {url} (Ctrl-C to stop)")

    return serve(options, ready)
