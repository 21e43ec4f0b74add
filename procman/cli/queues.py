"""``procman worker``: run the app's background jobs."""

from __future__ import annotations

from pathlib import Path

import click

from procman.cli.commands import app_options, to_app_options


@click.command()
@app_options
@click.option(
    "-C",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="Queue YAML [default: queues.yml in the app directory, if present].",
)
@click.option(
    "--redis-url", help="Redis URL [default: $REDIS_PROVIDER's variable, else $REDIS_URL]."
)
@click.option(
    "-q",
    "--queues",
    help="Queues to serve: 'critical,default' in order, 'critical:5,low:1' weighted, or '*' "
    "(every queue in Redis, alphabetically).",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(1, 256),
    help="Worker processes [default: from the YAML, else 2].",
)
@click.option("--burst", is_flag=True, help="Run until the queues are empty, then exit.")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Log everything RQ logs, tracebacks included [default: one line per event; "
    "also set by PROCMAN_VERBOSE=1].",
)
def worker(
    procfile: Path | None,
    root: Path | None,
    env_files: tuple[str, ...],
    port: int | None,
    config_path: Path | None,
    redis_url: str | None,
    queues: str | None,
    concurrency: int | None,
    burst: bool,
    verbose: bool,
) -> int:
    """Run RQ workers for the app's queues (Ctrl-C: finish running jobs, then stop)."""
    from procman.commands.worker import WorkerOptions, serve

    options = WorkerOptions(
        app=to_app_options(procfile, root, env_files, port),
        config_path=config_path,
        redis_url=redis_url,
        queues=queues,
        concurrency=concurrency,
        burst=burst,
        verbose=verbose,
    )
    return serve(options)
