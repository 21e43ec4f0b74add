"""``procman init``: starter files for an existing app directory."""

from __future__ import annotations

from pathlib import Path

import click

from procman.cli.pipeline import template_dir_option


@click.command()
@click.option(
    "-d",
    "--root",
    type=click.Path(path_type=Path),
    default=Path("."),
    help="The app directory [default: the current directory].",
)
@template_dir_option
def init(root: Path, template_dir: Path | None) -> int:
    """Write a starter Procfile, queues.yml, procman.yml and .env.example, filled from what the
    app directory holds; a file that exists is left alone."""
    from procman.commands.init import InitOptions
    from procman.commands.init import init as init_app
    from procman.pipeline.files import Written

    result = init_app(InitOptions(root=root, template_dir=template_dir))
    click.echo(f"procman: found {'; '.join(result.detected.findings)}")
    for name, written in result.files:
        if written is Written.SKIPPED:
            click.echo(f"procman: skipped {name}: it exists (procman init never replaces a file)")
        else:
            click.echo(f"procman: wrote {name}")
    click.echo("procman: next: edit the hosts in procman.yml, then procman check")
    return 0
