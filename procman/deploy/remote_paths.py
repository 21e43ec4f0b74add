"""The rules for paths on a deploy host: the deploy root and the ``shared`` entries.

One rule each, pure. ``deploy/config.py`` applies them when procman.yml is loaded, so a bad path
is refused with its key path before any connection; ``deploy/steps.py`` applies the same rules to
what it is given, so a step can never be built from a path the config would refuse.
"""

from __future__ import annotations

from pathlib import PurePosixPath

ROOT_HINT = "the absolute directory on each host, like /srv/snippets"
SHARED_HINT = "list paths inside the release, like [.env, media/] (a trailing / is a directory)"


def root_problem(root: str) -> str | None:
    """What is wrong with ``root`` as a deploy root; None when it is a usable one."""
    if not root.startswith("/") or root.strip() != root:
        return "must be an absolute path"
    if "\0" in root or "\n" in root:
        return "must not contain a NUL or newline character"
    if ".." in root.split("/"):
        return "must not go up with '..'"
    if root.rstrip("/") == "":
        return "must not be the root directory"
    return None


def normal_root(root: str) -> str:
    """A root that ``root_problem`` accepts, as steps write it (``/srv/./app/`` is ``/srv/app``)."""
    return str(PurePosixPath(root))


def shared_problem(entry: str) -> str | None:
    """What is wrong with ``entry`` as a ``shared`` path (``.env``, ``media/``); None when fine.

    A path inside the release: relative, no empty, ``.`` or ``..`` part (a trailing ``/`` marks a
    directory and is allowed), no NUL or newline."""
    bare = entry.rstrip("/")
    if (
        not bare
        or bare.startswith("/")
        or any(part in ("", ".", "..") for part in bare.split("/"))
        or "\0" in entry
        or "\n" in entry
    ):
        return "is not a path inside the release"
    return None


def shared_name(entry: str) -> str:
    """An entry ``shared_problem`` accepts as the path under ``shared/`` (no trailing slash)."""
    return str(PurePosixPath(entry.rstrip("/")))
