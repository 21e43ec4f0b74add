"""``procman start``: validate the app, expand the formation and supervise it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from procman.errors import ConfigError, ProcmanError, collect, raise_collected
from procman.formation import Instance, check_names, check_types, expand, parse_formation
from procman.procfile import Procfile, load_procfile
from procman.settings import App, AppOptions, load_app, procfile_path
from procman.supervisor.output import Prefixer, Sink, StreamStyle
from procman.supervisor.spawn import Spawner
from procman.supervisor.supervisor import Supervisor


@dataclass(frozen=True, slots=True)
class StartOptions:
    app: AppOptions
    names: tuple[str, ...] = ()
    formation: str | None = None
    formation_option: str = "-m/--formation"
    stop_timeout: float = 5.0
    style: StreamStyle = StreamStyle()  # noqa: RUF009 (frozen, so sharing it is safe)
    tty: bool = False
    output_fd: int = 1


def load_app_and_procfile(options: AppOptions) -> tuple[App, Procfile]:
    """Load both, reporting the problems of each together rather than the first one only."""
    errors: list[ProcmanError] = []
    app = collect(lambda: load_app(options), errors)
    procfile = collect(lambda: load_procfile(procfile_path(options)), errors)
    raise_collected(errors)
    assert app is not None and procfile is not None
    return app, procfile


def plan(options: StartOptions) -> tuple[App, Procfile, list[Instance]]:
    """Everything checked before the first process starts."""
    app, procfile = load_app_and_procfile(options.app)
    check_names(options.names, procfile)
    counts: dict[str, int] = {}
    if options.formation is not None:
        counts = parse_formation(options.formation, options.formation_option)
        check_types(counts, procfile, options.formation_option)
    instances = expand(procfile, counts, app.base_port, options.names)
    if not instances:
        raise ConfigError(
            "the formation starts no process",
            f"give at least one type a count above 0 in {options.formation_option}",
        )
    return app, procfile, instances


def start(options: StartOptions) -> int:
    app, procfile, instances = plan(options)
    prefixer = Prefixer(options.style)
    columns, rows = shutil.get_terminal_size()
    name_width = max(len(i.name) for i in instances)
    supervisor = Supervisor(
        instances,
        spawner=Spawner(app.root, tty=options.tty, columns=columns - name_width - 12, rows=rows),
        environment=lambda instance: app.process_env(
            {"PORT": str(instance.port), "PS": instance.name}
        ),
        prefixer=prefixer,
        sink=Sink(options.output_fd),
        stop_timeout=options.stop_timeout,
        type_order=procfile.names,
    )
    return supervisor.run()
