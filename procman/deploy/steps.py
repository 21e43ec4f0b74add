"""The remote steps of a deploy, built as argv lists and never run here.

Every function returns the argv of one command for a deploy root on a host; the transport runs
it. Data never becomes shell text: where a step needs a shell (``&&``, a redirect), the script is a
constant and paths, ids and JSON travel as its positional arguments (``sh -c SCRIPT NAME ARG...``).
Roots and shared-file paths are validated, release ids must match the release-id pattern.

The layout under a root::

    releases/<id>/                 unpacked releases
    shared/                        files kept across releases, linked into each one
    current -> releases/<id>       switched atomically (a temporary symlink renamed onto it)
    .procman/artifacts/<id>.tar.gz uploaded artifacts (uploaded as <id>.tar.gz.part, then verified)
    .procman/lock/info             the deploy lock, a directory made atomically by mkdir
    .procman/history.jsonl         one JSON line per deploy, promote or rollback
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

from procman.deploy.release import RELEASE_ID_PATTERN, validate_release_id
from procman.errors import ConfigError, ProcmanError

LOCK_HELD_STATUS = 75
"""The exit status of ``take_lock`` when another deploy holds the lock (it prints the holder)."""

_SHA256 = re.compile(r"[0-9a-f]{64}")


class StepError(ProcmanError):
    """A remote step cannot be built, or its output does not make sense."""


def deploy_root(root: str) -> str:
    """``root`` normalized (no trailing slash); an error unless it is an absolute path."""
    if "\0" in root or "\n" in root:
        raise ConfigError(f"deploy path {root!r} contains a NUL or newline character")
    path = PurePosixPath(root)
    if not path.is_absolute() or ".." in path.parts or path == PurePosixPath("/"):
        raise ConfigError(
            f"deploy path {root!r} must be an absolute directory below /",
            "write it like /srv/myapp",
        )
    return str(path)


def shared_file(name: str) -> str:
    """A path relative to ``shared/`` and to the release (``.env``, ``media/uploads``)."""
    path = PurePosixPath(name)
    if (
        not name
        or "\0" in name
        or "\n" in name
        or path.is_absolute()
        or ".." in path.parts
        or str(path) == "."
    ):
        raise ConfigError(
            f"shared file {name!r} must be a relative path inside the release",
            "write it like .env or media/uploads",
        )
    return str(path)


# -- paths -----------------------------------------------------------------------------------------


def releases_dir(root: str) -> str:
    return f"{deploy_root(root)}/releases"


def release_dir(root: str, release_id: str) -> str:
    return f"{releases_dir(root)}/{validate_release_id(release_id)}"


def shared_dir(root: str) -> str:
    return f"{deploy_root(root)}/shared"


def current_link(root: str) -> str:
    return f"{deploy_root(root)}/current"


def state_dir(root: str) -> str:
    return f"{deploy_root(root)}/.procman"


def artifact_path(root: str, release_id: str) -> str:
    return f"{state_dir(root)}/artifacts/{validate_release_id(release_id)}.tar.gz"


def upload_path(root: str, release_id: str) -> str:
    """Where the transport uploads an artifact before ``accept_upload`` renames it."""
    return artifact_path(root, release_id) + ".part"


def lock_dir(root: str) -> str:
    return f"{state_dir(root)}/lock"


def history_path(root: str) -> str:
    return f"{state_dir(root)}/history.jsonl"


def _sh(name: str, script: str, *args: str) -> list[str]:
    return ["sh", "-c", script, f"procman-{name}", *args]


# -- steps -----------------------------------------------------------------------------------------


def ensure_layout(root: str) -> list[str]:
    return [
        "mkdir",
        "-p",
        "--",
        releases_dir(root),
        shared_dir(root),
        state_dir(root),
        f"{state_dir(root)}/artifacts",
    ]


def lock_info(holder: str, time: str, release_id: str) -> str:
    """The one JSON line written into the lock: who holds it, since when, for which release."""
    return json.dumps({"holder": holder, "time": time, "release": release_id}, sort_keys=True)


def take_lock(root: str, holder: str, time: str, release_id: str) -> list[str]:
    """``mkdir`` the lock (atomic: one deploy wins) and record the holder in it. If the lock is
    held, print its info and exit ``LOCK_HELD_STATUS``."""
    script = (
        'if mkdir -- "$1" 2>/dev/null; then printf "%s\\n" "$2" > "$1/info"; '
        f'elif [ -d "$1" ]; then cat -- "$1/info" 2>/dev/null; exit {LOCK_HELD_STATUS}; '
        'else mkdir -- "$1"; fi'
    )
    validate_release_id(release_id)
    return _sh("lock", script, lock_dir(root), lock_info(holder, time, release_id))


def read_lock(root: str) -> list[str]:
    """The lock's info line; no output when nobody holds it."""
    return _sh("read-lock", 'if [ -d "$1" ]; then cat -- "$1/info" 2>/dev/null; fi', lock_dir(root))


def release_lock(root: str) -> list[str]:
    return ["rm", "-rf", "--", lock_dir(root)]


def parse_lock_info(output: str) -> dict[str, str]:
    """``holder``, ``time`` and ``release`` from a lock's info (``?`` for what is unreadable)."""
    try:
        data = json.loads(output)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    return {key: str(data.get(key, "?")) for key in ("holder", "time", "release")}


def sha256(path: str) -> list[str]:
    return ["sha256sum", "--", path]


def parse_sha256(output: str) -> str:
    """The digest from ``sha256sum`` output (a name with odd characters starts with ``\\``)."""
    digest = output.lstrip("\\")[:64]
    if not _SHA256.fullmatch(digest):
        raise StepError(f"unexpected sha256sum output {output[:80]!r}")
    return digest


def verify_sha256(output: str, expected: str, path: str) -> None:
    """Raise unless the ``sha256sum`` output for ``path`` shows ``expected``."""
    actual = parse_sha256(output)
    if actual != expected:
        raise StepError(
            f"{path}: sha256 is {actual}, expected {expected}",
            "the upload was damaged or the file was changed; deploy again to upload it anew",
        )


def accept_upload(root: str, release_id: str) -> list[str]:
    """Rename the verified upload to its artifact name."""
    return ["mv", "-T", "--", upload_path(root, release_id), artifact_path(root, release_id)]


def unpack(root: str, release_id: str) -> list[str]:
    """Unpack the artifact into a temporary directory, then rename it to ``releases/<id>``."""
    script = (
        'rm -rf -- "$2" && mkdir -- "$2" && tar -xzf "$1" -C "$2" --no-same-owner '
        '&& mv -T -- "$2" "$3"'
    )
    final = release_dir(root, release_id)
    temporary = f"{releases_dir(root)}/.{release_id}.unpacking"
    return _sh("unpack", script, artifact_path(root, release_id), temporary, final)


def link_shared(root: str, release_id: str, files: Sequence[str]) -> list[str]:
    """Symlink each of ``files`` from ``shared/`` into the release, replacing what is there."""
    script = (
        'set -e; r=$1; s=$2; shift 2; for f; do mkdir -p -- "$(dirname -- "$r/$f")"; '
        'rm -rf -- "$r/$f"; ln -s -- "$s/$f" "$r/$f"; done'
    )
    names = [shared_file(name) for name in files]
    return _sh("link-shared", script, release_dir(root, release_id), shared_dir(root), *names)


def run_in_release(root: str, release_id: str, command: str) -> list[str]:
    """Run the user's ``command`` (shell text from procman.yml, e.g. ``build:``) in the release."""
    return _sh("run", 'cd -- "$1" && exec sh -c "$2"', release_dir(root, release_id), command)


def switch_current(root: str, release_id: str) -> list[str]:
    """Point ``current`` at the release atomically: a temporary symlink renamed onto it."""
    temporary = f"{deploy_root(root)}/.current.tmp"
    target = f"releases/{validate_release_id(release_id)}"
    return _sh(
        "switch",
        'ln -sfn -- "$1" "$2" && mv -T -- "$2" "$3"',
        target,
        temporary,
        current_link(root),
    )


def read_current(root: str) -> list[str]:
    """The ``current`` symlink's target; no output when there is none."""
    return _sh("current", 'if [ -L "$1" ]; then readlink -- "$1"; fi', current_link(root))


def parse_current(output: str) -> str | None:
    """The release id ``current`` points at, or None when there is no ``current``."""
    target = output.strip("\n")
    if not target:
        return None
    name = PurePosixPath(target).name
    if not RELEASE_ID_PATTERN.fullmatch(name):
        raise StepError(f"current points at {target!r}, not at a release")
    return name


def list_releases(root: str) -> list[str]:
    return ["find", releases_dir(root), "-mindepth", "1", "-maxdepth", "1", "-type", "d",
            "-printf", "%f\\n"]  # fmt: skip


def parse_releases(output: str) -> list[str]:
    """Release ids in ``list_releases`` output, oldest first; temporary directories left out."""
    return sorted(name for name in output.split("\n") if RELEASE_ID_PATTERN.fullmatch(name))


def releases_to_prune(
    releases: Iterable[str], keep: int, protect: Iterable[str | None]
) -> list[str]:
    """The releases beyond the newest ``keep``, never one in ``protect`` (current, previous)."""
    if keep < 1:
        raise ConfigError(f"keep_releases must be at least 1, got {keep}")
    kept = set(filter(None, protect))
    newest_first = sorted(set(releases), reverse=True)
    return sorted(r for r in newest_first[keep:] if r not in kept)


def remove_releases(root: str, release_ids: Sequence[str]) -> list[str]:
    """Delete releases and their artifacts (build the list with ``releases_to_prune``)."""
    paths: list[str] = []
    for release_id in release_ids:
        paths += [release_dir(root, release_id), artifact_path(root, release_id)]
    return ["rm", "-rf", "--", *paths]


def append_history(root: str, line: str) -> list[str]:
    """Append one JSON line (``HistoryRecord.to_json_line()``) to the history file."""
    if "\n" in line or "\0" in line:
        raise StepError("a history line must be a single line")
    return _sh("history", 'printf "%s\\n" "$2" >> "$1"', history_path(root), line)


def read_history(root: str) -> list[str]:
    """The history file's text; no output before the first deploy."""
    return _sh("read-history", 'if [ -f "$1" ]; then cat -- "$1"; fi', history_path(root))
