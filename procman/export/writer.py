"""Writing an app's exported files into a directory that other apps' files may share.

The new set is written into a temporary directory inside the target first (where a full disk or
a permission problem shows), then each file is renamed into place. The files an earlier export of
the same app wrote and this one does not (a type scaled down) are removed; they are known from a
manifest, ``.APP.procman-export``, so another app's files are never touched, whatever their names.
If a rename fails half way, the files already replaced are put back: the old set stays whole.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from procman.errors import ProcmanError
from procman.export.render import ExportFile


class ExportWriteError(ProcmanError):
    """The export directory cannot be written."""


@dataclass(frozen=True, slots=True)
class Written:
    directory: Path
    written: tuple[str, ...]
    removed: tuple[str, ...]


def manifest_name(app: str) -> str:
    return f".{app}.procman-export"


def write_export(directory: Path, app: str, files: Sequence[ExportFile]) -> Written:
    """Put ``files`` in ``directory`` in place of ``app``'s previous export."""
    for file in files:
        _check_name(file.name)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".procman-export-", dir=directory))
    except OSError as error:
        raise _cannot_write(directory, error) from None
    try:
        for file in files:
            target = staging / "new" / file.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(file.content)
            target.chmod(0o755 if file.executable else 0o644)
        names = [file.name for file in files]
        manifest = staging / "new" / manifest_name(app)
        manifest.write_text("".join(f"{name}\n" for name in names))
        old = _previous(directory, app)
        stale = [name for name in old if name not in names]
        _swap(directory, staging, [*names, manifest_name(app)], stale)
    except OSError as error:
        raise _cannot_write(directory, error) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Written(directory=directory, written=tuple(names), removed=tuple(stale))


def _swap(directory: Path, staging: Path, names: list[str], stale: list[str]) -> None:
    """Rename the new files in and the stale ones out; on a failure, undo what was done."""
    backup = staging / "old"
    done: list[tuple[str, bool]] = []  # (name, had an old version)
    try:
        for name in names:
            target = directory / name
            had_old = target.is_file() and not target.is_symlink()
            if had_old:
                (backup / name).parent.mkdir(parents=True, exist_ok=True)
                os.link(target, backup / name)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / "new" / name, target)
            done.append((name, had_old))
        for name in stale:
            target = directory / name
            if target.is_file() and not target.is_symlink():
                (backup / name).parent.mkdir(parents=True, exist_ok=True)
                os.replace(target, backup / name)
                done.append((name, True))
                _remove_empty_parents(directory, target.parent)
    except OSError:
        for name, had_old in reversed(done):
            try:
                if had_old:
                    (directory / name).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(backup / name, directory / name)
                else:
                    (directory / name).unlink()
            except OSError:
                pass
        raise


def _previous(directory: Path, app: str) -> list[str]:
    """The files the last export of ``app`` here wrote (names that are not plain relative paths
    are ignored: a manifest never leads outside ``directory``)."""
    try:
        text = (directory / manifest_name(app)).read_text()
    except (OSError, UnicodeDecodeError):
        return []
    names = []
    for line in text.splitlines():
        try:
            _check_name(line)
        except ProcmanError:
            continue
        names.append(line)
    return names


def _check_name(name: str) -> None:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or name != str(path):
        raise ExportWriteError(
            f"an exporter asked to write {name!r}, outside the export directory",
            "fix the exporter: file names are relative and stay inside the directory",
        )


def _remove_empty_parents(directory: Path, parent: Path) -> None:
    while parent != directory and directory in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


def _cannot_write(directory: Path, error: OSError) -> ExportWriteError:
    reason = error.strerror or str(error)
    where = f"{error.filename}: " if error.filename and Path(error.filename) != directory else ""
    return ExportWriteError(
        f"cannot write to {directory}: {where}{reason}; nothing was changed there",
        "choose a directory you can write to, or run as a user who can (systemd units go in "
        "/etc/systemd/system, which needs root)",
    )
