"""``procman export``."""

from __future__ import annotations

from pathlib import Path

import click

from procman.cli.commands import Seconds, app_options, to_app_options


@click.command()
@app_options
@click.argument("format")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("-a", "--app", "app_name", help="App name [default: the app directory's name].")
@click.option(
    "-u", "--user", help="User the processes run as [default: the app directory's owner]."
)
@click.option(
    "-l",
    "--log",
    "log_dir",
    type=click.Path(path_type=Path),
    help="Directory for one log file per process [default: the journal; supervisord's own].",
)
@click.option(
    "-m",
    "--formation",
    help="Instances per type, like 'all=1,web=2,worker=3' [default: the formation saved by "
    "'procman scale', else one of each].",
)
@click.option(
    "-t",
    "--timeout",
    type=Seconds(),
    default=5.0,
    show_default=True,
    help="Seconds from SIGTERM to SIGKILL; a 'procman worker' type gets at least its job "
    "timeout plus 10.",
)
@click.option(
    "--template-dir",
    type=click.Path(path_type=Path),
    help="Directory of templates overriding procman's, one by one by name "
    "(like systemd/process.service.j2).",
)
def export(
    procfile: Path | None,
    root: Path | None,
    env_files: tuple[str, ...],
    port: int | None,
    format: str,
    directory: Path,
    app_name: str | None,
    user: str | None,
    log_dir: Path | None,
    formation: str | None,
    timeout: float,
    template_dir: Path | None,
) -> int:
    """Write the app's processes as FORMAT (systemd, supervisord, or a honcho exporter) into
    DIRECTORY, replacing that app's earlier export there."""
    from procman.commands.export import ExportOptions
    from procman.commands.export import export as export_app

    result = export_app(
        ExportOptions(
            app=to_app_options(procfile, root, env_files, port),
            format=format,
            directory=directory,
            app_name=app_name,
            user=user,
            log_dir=log_dir,
            formation=formation,
            stop_timeout=timeout,
            template_dir=template_dir,
        )
    )
    written = result.written
    for name in written.written:
        click.echo(f"wrote {written.directory / name}")
    for name in written.removed:
        click.echo(f"removed {written.directory / name}")
    return 0
