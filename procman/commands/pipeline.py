"""``procman pipeline generate github|gitlab``: the CI pipeline of procman.yml, from templates.

The file is rendered from ``templates/pipeline/`` (a template directory may override any of them),
headed by the procman version and a checksum of the body. Generating again with the same inputs
writes the same bytes; a file edited since procman wrote it, or not written by procman at all, is
replaced only when forced. Files are written whole (a temporary file, then a rename).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procman import __version__
from procman.errors import ProcmanError, UsageError
from procman.pipeline.files import Written, write_atomically
from procman.pipeline.header import body_checksum, read_generated
from procman.pipeline.plan import (
    FORMATS,
    PYTHON_VERSION,
    PipelineError,
    PipelinePlan,
    plan_pipeline,
)
from procman.procfile import load_procfile
from procman.templating import TemplateError, Templates, load_templates

TEMPLATES = {
    "github": "pipeline/github/workflow.yml.j2",
    "gitlab": "pipeline/gitlab/gitlab-ci.yml.j2",
}
HEADER_TEMPLATE = "pipeline/header.j2"
DEFAULT_OUTPUT = {"github": Path(".github/workflows/procman.yml"), "gitlab": Path(".gitlab-ci.yml")}


class OverwriteRefused(ProcmanError):
    """The output file exists and was edited since procman wrote it, or procman did not write it."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"{path} {reason}; nothing was written",
            "compare it with what procman would write now, and replace it only if you mean to",
        )
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    format: str
    config_path: Path = Path("procman.yml")
    output: Path | None = None
    """Where to write; None for the format's usual place in the app directory; ``-`` for
    standard output (returned, not written)."""
    force: bool = False
    python: str | None = None
    branch: str | None = None
    test: str | None = None
    install: str | None = None
    """The test job's install command; None to detect (requirements.txt, pyproject.toml)."""
    procman_requirement: str | None = None
    template_dir: Path | None = None
    command: str = ""
    """The command line that generates it, named in the header."""


@dataclass(frozen=True, slots=True)
class GeneratedPipeline:
    path: Path | None
    """Where it was written; None when it went to standard output."""
    text: str
    written: Written | None
    warnings: tuple[str, ...] = ()
    """Things in procman.yml the CI jobs cannot follow as they stand."""


def generate_pipeline(options: PipelineOptions) -> GeneratedPipeline:
    """Render the pipeline and write it (unless ``options.output`` is ``-``)."""
    from procman.deploy.config import load_deploy_config

    if options.format not in FORMATS:
        raise UsageError(
            f"unknown pipeline format {options.format!r}", f"choose one of: {', '.join(FORMATS)}"
        )
    app_dir = options.config_path.parent
    procfile_path = app_dir / "Procfile"
    procfile = load_procfile(procfile_path) if procfile_path.is_file() else None
    config = load_deploy_config(options.config_path, procfile)
    plan = plan_pipeline(
        config,
        python=options.python or detect_python(app_dir),
        branch=options.branch,
        test=options.test,
        install=options.install if options.install is not None else detect_install(app_dir),
        procman_requirement=options.procman_requirement or f"procman=={__version__}",
    )
    if options.format == "github":
        _refuse_expressions(plan)
    templates = load_templates(options.template_dir, filters={"yaml_str": yaml_str})
    body = templates.render(TEMPLATES[options.format], {"plan": plan})
    text = _with_header(templates, body, options, config.path)
    warnings = tuple(
        f"{config.path}: environments.{name}.identity_file: {environment.identity_file} will not"
        " exist in CI, where the key comes from the ssh-agent; remove identity_file (and add the"
        " key to your own agent with ssh-add), or the deploy jobs will stop there"
        for name, environment in config.environments.items()
        if environment.identity_file is not None
    )
    if options.output == Path("-"):
        return GeneratedPipeline(path=None, text=text, written=None, warnings=warnings)
    path = (
        options.output if options.output is not None else app_dir / DEFAULT_OUTPUT[options.format]
    )
    if _same_as_written(path, text, options.force):
        written = Written.UNCHANGED
    else:
        written = write_atomically(path, text)
    return GeneratedPipeline(path=path, text=text, written=written, warnings=warnings)


def _refuse_expressions(plan: PipelinePlan) -> None:
    """GitHub Actions evaluates ``${{ ... }}`` anywhere in a workflow, commands included."""
    for what, command in [("the test command", plan.test), ("the install command", plan.install)]:
        if command is not None and "${{" in command:
            raise PipelineError(
                f"{what} {command!r} contains '${{{{', which GitHub Actions would evaluate as an"
                " expression",
                "write it without '${{', or put it in a script the command runs",
            )


def detect_python(app_dir: Path) -> str | None:
    """The version in the app's ``.python-version`` (pyenv's file), when it is a plain one."""
    try:
        words = (app_dir / ".python-version").read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError):
        return None
    return words[0] if words and PYTHON_VERSION.fullmatch(words[0]) else None


def detect_install(app_dir: Path) -> str | None:
    """How the test job installs the app: its requirements.txt, else its pyproject.toml."""
    if (app_dir / "requirements.txt").is_file():
        return "python -m pip install -r requirements.txt"
    if (app_dir / "pyproject.toml").is_file():
        return "python -m pip install ."
    return None


def yaml_str(value: Any) -> str:
    """``value`` as a YAML double-quoted scalar (JSON's string syntax is a subset of it)."""
    return json.dumps(str(value), ensure_ascii=False)


def _with_header(templates: Templates, body: str, options: PipelineOptions, source: str) -> str:
    command = options.command or shlex.join(["procman", "pipeline", "generate", options.format])
    header = templates.render(
        HEADER_TEMPLATE,
        {
            "version": __version__,
            "command": command,
            "source": Path(source).name,
            "checksum": body_checksum(body),
        },
    )
    text = header + body
    read = read_generated(text)
    if read is None or read.edited():
        where = templates.source_of(HEADER_TEMPLATE)
        raise TemplateError(
            f"{where}: the header must be comment lines ending with"
            " '# procman-sha256: {{ checksum }}'",
            "keep that line last: it is how procman tells its own file from an edited one",
        )
    return text


def _same_as_written(path: Path, text: str, force: bool) -> bool:
    """Whether ``path`` already holds ``text``; raises OverwriteRefused when it holds something
    procman may not replace (unless ``force``)."""
    if path.is_dir():
        raise UsageError(f"{path} is a directory", "give the path of the file to write")
    if not path.exists():
        return False
    try:
        existing = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        if force:
            return False
        raise OverwriteRefused(path, f"cannot be read ({error})") from None
    if existing == text or force:
        return existing == text
    generated = read_generated(existing)
    if generated is None:
        raise OverwriteRefused(path, "was not written by procman (it has no procman-sha256 line)")
    if generated.edited():
        raise OverwriteRefused(path, "was edited since procman wrote it")
    return False
