"""``procman pipeline generate github|gitlab``: write the CI pipeline of procman.yml."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import click

from procman.cli.deploy import deploy_file_option

if TYPE_CHECKING:
    from procman.commands.pipeline import PipelineOptions

template_dir_option = click.option(
    "--template-dir",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="A directory of templates overriding procman's own by name (the rest are procman's).",
)


@click.group()
def pipeline() -> None:
    """Generate the CI pipeline (test, staging, production) of procman.yml."""


@pipeline.command()
@click.argument("format", metavar="github|gitlab")
@deploy_file_option
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Where to write it, '-' for standard output [default: .github/workflows/procman.yml "
    "or .gitlab-ci.yml, beside procman.yml].",
)
@click.option("--force", is_flag=True, help="Replace the file even if it was edited by hand.")
@click.option(
    "--python",
    metavar="VERSION",
    help="Python version of the CI jobs [default: .python-version's, else 3.12].",
)
@click.option(
    "--branch",
    metavar="NAME",
    help="The branch that deploys [default: the repository's default branch].",
)
@click.option("--test", metavar="COMMAND", help="Test command [default: procman.yml's test:].")
@click.option(
    "--install",
    metavar="COMMAND",
    help="How the test job installs the app [default: pip install -r requirements.txt, "
    "else pip install . with a pyproject.toml].",
)
@click.option(
    "--procman-requirement",
    metavar="SPEC",
    help="What the jobs pip install to get procman [default: this version, procman==VERSION].",
)
@template_dir_option
def generate(
    format: str,
    config_path: Path,
    output: Path | None,
    force: bool,
    python: str | None,
    branch: str | None,
    test: str | None,
    install: str | None,
    procman_requirement: str | None,
    template_dir: Path | None,
) -> int:
    """Write the GitHub Actions workflow or the GitLab CI file for procman.yml's environments."""
    from procman.commands.pipeline import OverwriteRefused, PipelineOptions, generate_pipeline
    from procman.errors import ProcmanError

    options = PipelineOptions(
        format=format,
        config_path=config_path,
        output=output,
        force=force,
        python=python,
        branch=branch,
        test=test,
        install=install,
        procman_requirement=procman_requirement,
        template_dir=template_dir,
    )
    options = dataclasses.replace(options, command=_same_command(options))
    try:
        result = generate_pipeline(options)
    except OverwriteRefused as refused:
        diff = f"{options.command} -o - | diff -u {shlex.quote(str(refused.path))} -"
        raise ProcmanError(
            refused.message,
            f"see what would change with: {diff}; replace it with --force",
        ) from None
    for warning in result.warnings:
        click.echo(f"procman: warning: {warning}", err=True)
    if result.path is None:
        click.echo(result.text, nl=False)
    else:
        assert result.written is not None
        click.echo(f"procman: {result.path}: {result.written.value}")
    return 0


def _same_command(options: PipelineOptions) -> str:
    """The command line that generates this file (named in its header; without -o and --force)."""
    words = ["procman", "pipeline", "generate", options.format]
    if options.config_path != Path("procman.yml"):
        words += ["-C", str(options.config_path)]
    for flag, value in [
        ("--python", options.python),
        ("--branch", options.branch),
        ("--test", options.test),
        ("--install", options.install),
        ("--procman-requirement", options.procman_requirement),
        ("--template-dir", options.template_dir),
    ]:
        if value is not None:
            words += [flag, str(value)]
    return shlex.join(words)
