"""One release artifact per git commit: ``git archive`` plus a manifest, gzipped deterministically.

The artifact's sha256 is its identity: production runs the exact bytes that passed staging. Git is
the one local I/O here and runs behind ``run_git``; packing and reading artifacts are pure.
"""

from __future__ import annotations

import getpass
import gzip
import hashlib
import io
import json
import re
import socket
import subprocess
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from procman.errors import ProcmanError, flag_of
from procman.procfile import Procfile, parse_procfile

MANIFEST_NAME = ".procman-release.json"
MANIFEST_FORMAT = 1
RELEASE_ID_PATTERN = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{7,40}")
STORE = Path(".procman") / "releases"
DIRTY_PATHS_SHOWN = 5
T = TypeVar("T")


class ReleaseError(ProcmanError):
    """The release artifact cannot be built or read."""


def validate_release_id(release_id: str) -> str:
    """``release_id`` itself when it looks like ``20261122T131955Z-1a2b3c4``, else ReleaseError."""
    if not RELEASE_ID_PATTERN.fullmatch(release_id):
        raise ReleaseError(
            f"bad release id {release_id!r}",
            "release ids look like 20261122T131955Z-1a2b3c4 (see procman releases ENV)",
        )
    return release_id


def release_id_for(created_at: datetime, git_sha: str) -> str:
    """UTC timestamp plus short sha: ``YYYYMMDDTHHMMSSZ-abcdef1``; ids sort by time."""
    return f"{created_at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{git_sha[:7]}"


@dataclass(frozen=True, slots=True)
class Manifest:
    app: str
    git_sha: str
    release_id: str
    process_types: tuple[str, ...]
    required_env: tuple[str, ...]
    created_at: str
    builder: str
    dirty: bool = False

    def to_json(self) -> str:
        data = {
            "format": MANIFEST_FORMAT,
            "app": self.app,
            "git_sha": self.git_sha,
            "release_id": self.release_id,
            "process_types": list(self.process_types),
            "required_env": list(self.required_env),
            "created_at": self.created_at,
            "builder": self.builder,
            "dirty": self.dirty,
        }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = MANIFEST_NAME) -> Manifest:
        try:
            data = json.loads(text)
            manifest = cls(
                app=_typed(data["app"], str),
                git_sha=_typed(data["git_sha"], str),
                release_id=validate_release_id(_typed(data["release_id"], str)),
                process_types=tuple(_typed(n, str) for n in _typed(data["process_types"], list)),
                required_env=tuple(_typed(n, str) for n in _typed(data["required_env"], list)),
                created_at=_typed(data["created_at"], str),
                builder=_typed(data["builder"], str),
                dirty=_typed(data.get("dirty", False), bool),
            )
        except (ValueError, KeyError, TypeError) as problem:
            raise ReleaseError(
                f"{source}: not a procman release manifest ({problem})",
                "rebuild the release with procman deploy",
            ) from None
        return manifest


def _typed(value: object, kind: type[T]) -> T:
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class Artifact:
    """A built release on local disk: ``<store>/<id>.tar.gz`` and ``<store>/<id>.sha256``."""

    release_id: str
    sha256: str
    path: Path
    manifest: Manifest

    @property
    def checksum_path(self) -> Path:
        return self.path.with_name(f"{self.release_id}.sha256")


# -- git: the one local I/O ------------------------------------------------------------------------


def run_git(repo: Path, args: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
    """Run ``git ARGS`` in ``repo``; the caller reads returncode, stdout and stderr."""
    try:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, check=False)
    except FileNotFoundError:
        raise ReleaseError("git: command not found", "install git to build releases") from None
    except NotADirectoryError:
        raise ReleaseError(f"{repo}: not a directory") from None


def _git_ok(repo: Path, args: Sequence[str], what: str) -> bytes:
    done = run_git(repo, args)
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip()
        raise ReleaseError(f"{repo}: {what} failed: {detail or f'git exit {done.returncode}'}")
    return done.stdout


def resolve_commit(repo: Path, commit: str) -> str:
    """The full sha of ``commit`` in ``repo``; precise errors for no repo and an unknown commit."""
    if not repo.is_dir():
        raise ReleaseError(f"{repo}: no such directory", "run procman deploy in the app's git repo")
    if run_git(repo, ["rev-parse", "--git-dir"]).returncode != 0:
        raise ReleaseError(
            f"{repo}: not a git repository",
            "procman deploys git commits; run it in the app's repository (git init, git commit)",
        )
    spec = f"{commit}^{{commit}}"
    done = run_git(repo, ["rev-parse", "--verify", "--quiet", "--end-of-options", spec])
    if done.returncode != 0:
        raise ReleaseError(
            f"{repo}: unknown commit {commit!r}",
            "name a commit, branch or tag that exists (git log --oneline)",
        )
    return done.stdout.decode().strip()


def dirty_paths(repo: Path) -> list[str]:
    """Paths with uncommitted changes (untracked included, ignored and ``.procman/`` left out)."""
    out = _git_ok(repo, ["status", "--porcelain=v1", "-z", "--untracked-files=all"], "git status")
    paths: list[str] = []
    entries = iter(out.decode(errors="replace").split("\0"))
    for entry in entries:
        if not entry:
            continue
        if entry[0] in "RC":
            next(entries, None)  # the rename's source path follows
        path = entry[3:]
        if not path.startswith(".procman/"):
            paths.append(path)
    return paths


def config_state(config_path: Path) -> tuple[str, bool]:
    """The sha256 of the deploy file as it is on disk, and whether it differs from the committed
    one: changed or staged since HEAD, untracked, ignored, or outside a git repository."""
    try:
        data = config_path.read_bytes()
    except OSError as error:
        raise ReleaseError(f"{config_path}: cannot read ({error.strerror})") from None
    status = run_git(
        config_path.parent, ["status", "--porcelain=v1", "--ignored", "--", config_path.name]
    )
    return sha256_hex(data), status.returncode != 0 or bool(status.stdout.strip())


def check_clean(paths: Sequence[str], repo: Path) -> None:
    if not paths:
        return
    shown = ", ".join(paths[:DIRTY_PATHS_SHOWN])
    more = len(paths) - DIRTY_PATHS_SHOWN
    if more > 0:
        shown += f" and {more} more"
    raise ReleaseError(
        f"{repo}: the working tree has uncommitted changes: {shown}",
        f"commit or stash them, or deploy anyway with {flag_of('allow_dirty')} "
        "(recorded in history)",
    )


# -- packing: pure ---------------------------------------------------------------------------------


PROVIDED_ENV = frozenset({"PORT", "PS", "HOME", "PATH", "PWD", "USER", "SHELL", "HOSTNAME"})
"""Set for every process by procman or the system: never listed as required."""
_REFERENCE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<default>:?[-=])?"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def required_env_names(commands: Iterable[str]) -> tuple[str, ...]:
    """The variables the commands use (``$NAME``, ``${NAME}``) without a default
    (``${NAME:-x}``) and that procman does not set itself (``PORT``, ``PS``...), sorted."""
    names = set()
    for command in commands:
        for match in _REFERENCE.finditer(command):
            if match["default"]:
                continue
            names.add(match["braced"] or match["bare"])
    return tuple(sorted(names - PROVIDED_ENV))


def archived_procfile(archive: bytes, git_sha: str) -> Procfile:
    """The ``Procfile`` at the root of the ``git archive`` tar."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        try:
            member = tar.getmember("Procfile")
        except KeyError:
            member = None
        data = tar.extractfile(member) if member is not None and member.isfile() else None
        if data is None:
            raise ReleaseError(
                f"commit {git_sha[:7]} has no Procfile at the repository root",
                "commit a Procfile with lines like 'web: python -m app' and deploy again",
            )
        text = data.read().decode("utf-8-sig", errors="replace")
    return parse_procfile(text, f"Procfile (commit {git_sha[:7]})")


def pack_artifact(archive: bytes, manifest: Manifest, mtime: int) -> bytes:
    """The gzipped tar of ``archive``'s members plus the manifest: members sorted by name, owner
    root/root with no names, modes 0755 or 0644, every mtime ``mtime``, gzip header mtime 0 -- so
    the same input gives the same bytes, hence the same sha256."""
    manifest_bytes = manifest.to_json().encode()
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as source:
        for info in source.getmembers():
            if info.name.rstrip("/") == MANIFEST_NAME:
                raise ReleaseError(
                    f"the commit already contains {MANIFEST_NAME}",
                    "procman writes that file into each release; remove it from the repository",
                )
            data = source.extractfile(info).read() if info.isfile() else None  # type: ignore[union-attr]
            members.append((_normalized(info, mtime), data))
    manifest_info = tarfile.TarInfo(MANIFEST_NAME)
    manifest_info.size = len(manifest_bytes)
    members.append((_normalized(manifest_info, mtime, mode=0o644), manifest_bytes))
    members.sort(key=lambda pair: pair[0].name)
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(tar_bytes.getvalue())
    return out.getvalue()


def _normalized(info: tarfile.TarInfo, mtime: int, mode: int | None = None) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = mtime
    info.pax_headers = {}
    if mode is not None:
        info.mode = mode
    elif info.isdir() or (info.isfile() and info.mode & 0o111):
        info.mode = 0o755  # whatever the builder's git tar.umask
    elif info.isfile():
        info.mode = 0o644
    return info


def read_manifest(artifact: bytes, source: str = "artifact") -> Manifest:
    """The manifest inside a packed artifact."""
    try:
        with tarfile.open(fileobj=io.BytesIO(artifact), mode="r:gz") as tar:
            member = tar.extractfile(MANIFEST_NAME)
            text = member.read().decode() if member is not None else ""
    except (tarfile.TarError, KeyError, OSError, EOFError, UnicodeDecodeError) as problem:
        raise ReleaseError(f"{source}: not a procman release artifact ({problem})") from None
    return Manifest.from_json(text, f"{source}: {MANIFEST_NAME}")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- building and the local store ------------------------------------------------------------------


def default_builder() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def build_release(
    repo: Path,
    *,
    app: str,
    commit: str = "HEAD",
    required_env: Sequence[str] = (),
    allow_dirty: bool = False,
    now: datetime | None = None,
    builder: str | None = None,
    store: Path | None = None,
) -> Artifact:
    """Build the artifact of ``commit`` and keep it under ``<repo>/.procman/releases``."""
    git_sha = resolve_commit(repo, commit)
    dirty = dirty_paths(repo)
    if not allow_dirty:
        check_clean(dirty, repo)
    archive = _git_ok(repo, ["archive", "--format=tar", git_sha], "git archive")
    commit_time = int(_git_ok(repo, ["log", "-1", "--format=%ct", git_sha], "git log").strip())
    created = (now or datetime.now(UTC)).astimezone(UTC)
    procfile = archived_procfile(archive, git_sha)
    manifest = Manifest(
        app=app,
        git_sha=git_sha,
        release_id=release_id_for(created, git_sha),
        process_types=tuple(procfile.names),
        required_env=tuple(
            sorted({*required_env, *required_env_names(p.command for p in procfile.processes)})
        ),
        created_at=f"{created:%Y-%m-%dT%H:%M:%SZ}",
        builder=builder if builder is not None else default_builder(),
        dirty=bool(dirty),
    )
    data = pack_artifact(archive, manifest, commit_time)
    return store_artifact(store if store is not None else repo / STORE, manifest, data)


def store_artifact(store: Path, manifest: Manifest, data: bytes) -> Artifact:
    """Write ``<id>.tar.gz`` then ``<id>.sha256`` (``sha256sum`` format), each atomically."""
    store.mkdir(parents=True, exist_ok=True)
    digest = sha256_hex(data)
    path = store / f"{manifest.release_id}.tar.gz"
    artifact = Artifact(manifest.release_id, digest, path, manifest)
    _write_atomic(path, data)
    _write_atomic(artifact.checksum_path, f"{digest}  {path.name}\n".encode())
    return artifact


def load_artifact(store: Path, release_id: str) -> Artifact | None:
    """The cached artifact of ``release_id`` if present and its bytes match its ``.sha256``."""
    path = store / f"{validate_release_id(release_id)}.tar.gz"
    try:
        data = path.read_bytes()
        recorded = path.with_name(f"{release_id}.sha256").read_text().split()[0]
    except (OSError, IndexError):
        return None
    digest = sha256_hex(data)
    if digest != recorded:
        return None
    return Artifact(release_id, digest, path, read_manifest(data, str(path)))


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
