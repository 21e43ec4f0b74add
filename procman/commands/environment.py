"""Day-two commands on a deployed environment: ``procman config [set|unset] --env ENV`` and
``procman scale --env ENV``. Each composes the pipeline once (``commands.deploy.pipeline_for``)
and calls one function of ``procman.deploy.daytwo``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from procman.commands.deploy import PipelineOptions, pipeline_for
from procman.deploy.configvars import Changes, ConfigVar, ConfigVarError, check_name
from procman.deploy.configvars import parse_assignments as parse_values
from procman.deploy.daytwo import ConfigChanged, Scaled, change_config, read_config, scale
from procman.errors import UsageError


@dataclass(frozen=True, slots=True)
class ConfigChange:
    assignments: tuple[str, ...] = ()
    """``KEY=VALUE``, ``KEY=@FILE``, ``KEY=@-`` or ``-`` (see ``configvars.parse_assignments``)."""
    unset: tuple[str, ...] = ()
    restart: bool = True
    wait: float = 0.0


def config_list(options: PipelineOptions, environment: str) -> list[ConfigVar]:
    return read_config(pipeline_for(options), environment)


def config_change(
    options: PipelineOptions, environment: str, change: ConfigChange
) -> ConfigChanged:
    """Values are read (files, standard input) and names checked before connecting anywhere."""
    values = parse_values(change.assignments, _read_file, sys.stdin.read)
    for name in change.unset:
        check_name(name)
    if not values and not change.unset:
        raise UsageError("no variable given", "name KEY=VALUE to set, or KEY to unset")
    pipeline = pipeline_for(options)
    changes = Changes(set=values, unset=tuple(change.unset))
    return change_config(pipeline, environment, changes, restart=change.restart, wait=change.wait)


def scale_environment(
    options: PipelineOptions, environment: str, specs: Sequence[str], wait: float = 0.0
) -> Scaled:
    return scale(pipeline_for(options), environment, specs, wait)


def _read_file(name: str) -> str:
    try:
        return Path(name).read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ConfigVarError(
            f"{name}: cannot read the value ({reason})", "name a readable text file after @"
        ) from None
