"""One module per command family: each takes a typed options object, composes the app once
(settings, Procfile, run directory), calls the capability packages and returns a typed result.
``procman.cli`` only turns arguments into those options and the result into output.

This module holds what several commands compose alike: the app with its Procfile, and the PATH
of the app's processes (see :func:`path_with_own_procman`). It stays small: every command imports
it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from procman.errors import ProcmanError, collect, raise_collected
from procman.procfile import Procfile, load_procfile
from procman.settings import App, AppOptions, check_root, load_app, procfile_path


def app_dir(options: AppOptions) -> Path:
    """The app directory as given (``-d``, else the Procfile's directory), not resolved."""
    return options.root if options.root is not None else procfile_path(options).parent


def load_app_and_procfile(options: AppOptions) -> tuple[App, Procfile]:
    """Load both, reporting the problems of each together rather than the first one only."""
    check_root(options)  # else the Procfile under it would be reported missing too
    errors: list[ProcmanError] = []
    app = collect(lambda: load_app(options), errors)
    procfile = collect(lambda: load_procfile(procfile_path(options)), errors)
    raise_collected(errors)
    assert app is not None and procfile is not None
    return app, procfile


# ``procman`` lines in a Procfile run the procman that is running them.
#
# A Procfile's ``worker: procman worker`` is looked up on the children's PATH. When procman was
# started from a virtualenv that is not activated (``.venv/bin/procman start``), ``procman`` is not
# on that PATH, or is another install; the children then get a directory in front of their PATH
# that holds only a ``procman`` script running this one. Nothing else on PATH changes: ``python``
# and ``gunicorn`` stay the user's own choice.

SCRIPT = """#!/bin/sh
# Written by procman: the children's 'procman' is the one that started them.
exec {python} -m procman "$@"
"""


def path_with_own_procman(path: str, shim_dir: Path) -> str:
    """``path`` itself when its ``procman`` is this install, else ``shim_dir`` (where a
    ``procman`` script for this install is written) in front of it. A directory that cannot be
    written leaves ``path`` as it is."""
    from procman.queues.private_redis import find_executable

    if _is_this_install(find_executable("procman", path)):
        return path
    try:
        _write_script(shim_dir / "procman")
    except OSError:
        return path
    return os.pathsep.join([str(shim_dir), path]) if path else str(shim_dir)


def _is_this_install(found: str | None) -> bool:
    if found is None:
        return False
    here = os.path.dirname(os.path.abspath(sys.executable))
    return here in {os.path.dirname(found), os.path.dirname(os.path.realpath(found))}


def _write_script(target: Path) -> None:
    import shlex

    text = SCRIPT.format(python=shlex.quote(sys.executable))
    try:
        if target.read_text() == text:
            return
    except OSError:
        pass
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}")
    temporary.write_text(text)
    temporary.chmod(0o755)
    temporary.replace(target)
