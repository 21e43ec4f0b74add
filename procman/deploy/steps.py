"""The remote steps of a deploy, built as argv lists and never run here.

Every function returns the argv of one command for a deploy root on a host; the transport runs
it. Data never becomes shell text: where a step needs a shell (``&&``, a redirect), the script is a
constant and paths, ids and JSON travel as its positional arguments (``sh -c SCRIPT NAME ARG...``).
Roots and shared-file paths are validated (by ``remote_paths``, the rules procman.yml is
loaded with), release ids must match the release-id pattern.

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
from procman.deploy.remote_paths import normal_root, root_problem, shared_name, shared_problem
from procman.errors import ConfigError, ProcmanError

NO_RELEASE = "-"
"""In the lock's info: a change made while no release is current (``procman config set``)."""
LOCK_HELD_STATUS = 75
"""The exit status of ``take_lock`` when another deploy holds the lock (it prints the holder)."""

_SHA256 = re.compile(r"[0-9a-f]{64}")


class StepError(ProcmanError):
    """A remote step cannot be built, or its output does not make sense."""


def deploy_root(root: str) -> str:
    """``root`` normalized (no trailing slash); an error unless ``remote_paths.root_problem``
    accepts it (procman.yml's loader applies the same rule, with the key path)."""
    problem = root_problem(root)
    if problem is not None:
        raise ConfigError(f"deploy path {root!r} {problem}", "write it like /srv/myapp")
    return normal_root(root)


def shared_file(name: str) -> str:
    """A path relative to ``shared/`` and to the release (``.env``, ``media/uploads``); an error
    unless ``remote_paths.shared_problem`` accepts it (as procman.yml's loader does)."""
    problem = shared_problem(name)
    if problem is not None:
        raise ConfigError(f"shared file {name!r} {problem}", "write it like .env or media/uploads")
    return shared_name(name)


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
    if release_id != NO_RELEASE:
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


def parse_sha256(output: str) -> str:
    """The digest from ``sha256sum`` output (a name with odd characters starts with ``\\``)."""
    digest = output.lstrip("\\")[:64]
    if not _SHA256.fullmatch(digest):
        raise StepError(f"unexpected sha256sum output {output[:80]!r}")
    return digest


SHA256_MISMATCH_STATUS = 65
MISSING_SHARED_STATUS = 66
RELEASE_IS_CURRENT_STATUS = 67


def accept_checked_upload(root: str, release_id: str, expected: str) -> list[str]:
    """Check the upload's sha256 on the host and rename it to its artifact name; on a mismatch
    print ``sha256 ACTUAL`` and exit ``SHA256_MISMATCH_STATUS`` (the upload is removed)."""
    if not _SHA256.fullmatch(expected):
        raise StepError(f"bad sha256 {expected!r}")
    script = (
        'actual=$(sha256sum < "$1") && actual=${actual%% *} && '
        'if [ "$actual" != "$2" ]; then rm -f -- "$1"; echo "sha256 $actual"; '
        f"exit {SHA256_MISMATCH_STATUS}; fi && "
        'mv -T -- "$1" "$3"'
    )
    return _sh(
        "accept",
        script,
        upload_path(root, release_id),
        expected,
        artifact_path(root, release_id),
    )


_LINK_SHARED = (
    # Each of "$@" linked from $s (shared/) into the release $r, replacing what is there, unless
    # it is that link already.
    'for f; do case $f in */) f=${f%/}; mkdir -p -- "$s/$f";; '
    '*) if [ ! -e "$s/$f" ]; then [ "$f" = .env ] && continue; echo "missing $f"; '
    f"exit {MISSING_SHARED_STATUS}; "
    'fi;; esac; [ "$(readlink -- "$r/$f" || true)" = "$s/$f" ] && continue; '
    'mkdir -p -- "$(dirname -- "$r/$f")"; rm -rf -- "$r/$f"; '
    'ln -s -- "$s/$f" "$r/$f"; done; '
)


def _shared_names(shared: Sequence[str]) -> list[str]:
    return [shared_file(p.rstrip("/")) + ("/" if p.endswith("/") else "") for p in shared]


def unpack_release(root: str, release_id: str, shared: Sequence[str], env_text: str) -> list[str]:
    """In one command: unpack the artifact into ``releases/<id>`` through a temporary directory
    (replacing a release left there unbuilt by a failed deploy, never the current one: that exits
    ``RELEASE_IS_CURRENT_STATUS``), link each of ``shared`` from ``shared/`` into it and write the
    environment's env file. A directory in ``shared`` (trailing ``/``) is made in ``shared/``
    when missing; a file must exist there (``.env`` alone is optional), else the command prints
    ``missing PATH`` and exits ``MISSING_SHARED_STATUS``."""
    script = (
        "set -e; a=$1; t=$2; r=$3; s=$4; c=$5; env=$6; shift 6; "
        'if [ -e "$r" ]; then if [ "$(readlink -- "$c" || true)" = "releases/${r##*/}" ]; then '
        f'echo "$r is current"; exit {RELEASE_IS_CURRENT_STATUS}; fi; rm -rf -- "$r"; fi; '
        'rm -rf -- "$t"; mkdir -- "$t"; '
        'tar -xzf "$a" -C "$t" --no-same-owner; mv -T -- "$t" "$r"; '
        f"{_LINK_SHARED}"
        f'printf "%s" "$env" > "$r/{DEPLOY_ENV_FILE}"'
    )
    return _sh(
        "unpack",
        script,
        artifact_path(root, release_id),
        f"{releases_dir(root)}/.{release_id}.unpacking",
        release_dir(root, release_id),
        shared_dir(root),
        current_link(root),
        env_text,
        *_shared_names(shared),
    )


def finish_build(root: str, release_id: str) -> list[str]:
    """After ``build:``: check that the release can run procman (``.venv/bin`` or PATH; else exit
    ``NO_PROCMAN_STATUS``) and mark the release built."""
    script = (
        'cd -- "$1" && PATH="$PWD/.venv/bin:$PATH" && '
        f"{{ command -v procman >/dev/null 2>&1 || exit {NO_PROCMAN_STATUS}; }} && "
        'mkdir -p -- "$(dirname -- "$2")" && : > "$2"'
    )
    return _sh("built", script, release_dir(root, release_id), built_marker(root, release_id))


def run_in_release(root: str, release_id: str, command: str) -> list[str]:
    """Run the user's ``command`` (shell text from procman.yml, e.g. ``build:``) in the release."""
    return _sh("run", 'cd -- "$1" && exec sh -c "$2"', release_dir(root, release_id), command)


def switch_current(root: str, release_id: str, shared: Sequence[str] = ()) -> list[str]:
    """Link each of ``shared`` into the release as ``unpack_release`` does (so that files added
    to ``shared/`` since, ``.env`` above all, are seen by the next start; a missing one exits
    ``MISSING_SHARED_STATUS``), then point ``current`` at the release atomically: a temporary
    symlink renamed onto it."""
    temporary = f"{deploy_root(root)}/.current.tmp"
    target = f"releases/{validate_release_id(release_id)}"
    return _sh(
        "switch",
        f"set -e; n=$1; t=$2; c=$3; r=$4; s=$5; shift 5; {_LINK_SHARED}"
        'ln -sfn -- "$n" "$t"; mv -T -- "$t" "$c"',
        target,
        temporary,
        current_link(root),
        release_dir(root, release_id),
        shared_dir(root),
        *_shared_names(shared),
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
    releases: Iterable[str],
    keep: int,
    protect: Iterable[str | None],
    failed: Iterable[str] = (),
) -> list[str]:
    """The releases beyond the newest ``keep`` healthy ones, never one in ``protect`` (current,
    previous). ``failed`` releases (never healthy) do not count toward ``keep``: the newest of
    them is kept for inspection, the others are pruned."""
    if keep < 1:
        raise ConfigError(f"keep_releases must be at least 1, got {keep}")
    present = set(releases)
    kept = set(filter(None, protect))
    broken = set(failed) & present
    healthy_newest_first = sorted(present - broken, reverse=True)
    kept.update(healthy_newest_first[:keep])
    if broken:
        kept.add(max(broken))
    return sorted(present - kept)


def remove_releases(root: str, release_ids: Sequence[str]) -> list[str]:
    """Delete releases and their artifacts (build the list with ``releases_to_prune``)."""
    paths: list[str] = []
    for release_id in release_ids:
        paths += [
            release_dir(root, release_id),
            artifact_path(root, release_id),
            built_marker(root, release_id),
        ]
    return ["rm", "-rf", "--", *paths]


def append_history(root: str, line: str) -> list[str]:
    """Append one JSON line (``HistoryRecord.to_json_line()``) to the history file."""
    if "\n" in line or "\0" in line:
        raise StepError("a history line must be a single line")
    return _sh("history", 'printf "%s\\n" "$2" >> "$1"', history_path(root), line)


def read_history(root: str) -> list[str]:
    """The history file's text; no output before the first deploy."""
    return _sh("read-history", 'if [ -f "$1" ]; then cat -- "$1"; fi', history_path(root))


# -- host checks -----------------------------------------------------------------------------------

HOST_TOOLS = ("python3", "tar", "sha256sum", "setsid", "flock", "find")
MISSING_TOOL_STATUS = 127


def preflight(root: str, make_layout: bool = True) -> list[str]:
    """Check the tools a deploy needs on the host and (unless only reading) make the layout; a
    missing tool prints ``missing NAME`` and exits ``MISSING_TOOL_STATUS``."""
    script = (
        f'for tool in {" ".join(HOST_TOOLS)}; do command -v "$tool" >/dev/null 2>&1 || '
        f'{{ echo "missing $tool"; exit {MISSING_TOOL_STATUS}; }}; done'
    )
    if not make_layout:
        return _sh("preflight", script)
    return _sh("preflight", f'{script}; mkdir -p -- "$@"', *ensure_layout(root)[3:])


def built_marker(root: str, release_id: str) -> str:
    """Present once the release's ``build:`` succeeded on this host."""
    return f"{state_dir(root)}/built/{validate_release_id(release_id)}"


def release_state(root: str, release_id: str) -> list[str]:
    """The artifact's ``sha256sum`` line if it is on the host, then ``built`` if the release was
    built here before."""
    script = (
        'if [ -f "$1" ]; then sha256sum -- "$1"; fi; '
        'if [ -f "$2" ] && [ -d "$3" ]; then echo built; fi'
    )
    return _sh(
        "state",
        script,
        artifact_path(root, release_id),
        built_marker(root, release_id),
        release_dir(root, release_id),
    )


def parse_release_state(output: str) -> tuple[str | None, bool]:
    """(the artifact's sha256 or None, whether the release is already built)."""
    digest = None
    built = False
    for line in output.splitlines():
        if line == "built":
            built = True
        elif line:
            digest = parse_sha256(line)
    return digest, built


def write_file(path: str, text: str) -> list[str]:
    """Write ``text`` to ``path`` atomically (a temporary file renamed over it)."""
    return _sh("write", 'printf "%s" "$2" > "$1.tmp" && mv -f -- "$1.tmp" "$1"', path, text)


# -- the processes on a host -----------------------------------------------------------------------

DEPLOY_ENV_FILE = ".procman-deploy.env"
"""Written into each release: the environment's ``env`` values from procman.yml."""
SUPERVISOR_LOG = ".procman/procman.log"
"""Where the host's ``procman start`` writes its prefixed output, inside the release: rotated to
``procman.log.1`` ... ``.LOG_BACKUPS`` before it passes ``LOG_MAX_BYTES``, so a release's logs
never take more than ``(LOG_BACKUPS + 1) * LOG_MAX_BYTES`` of the host's disk."""
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 3
NO_PROCMAN_STATUS = 126


def dotenv_text(values: dict[str, str] | Iterable[tuple[str, str]]) -> str:
    """``KEY='value'`` lines that python-dotenv reads back exactly (no interpolation in single
    quotes; ``\\`` and ``'`` escaped)."""
    items = values.items() if isinstance(values, dict) else values
    lines = []
    for key, value in items:
        quoted = value.replace("\\", "\\\\").replace("'", "\\'")
        lines.append(f"{key}='{quoted}'\n")
    return "".join(lines)


_PROCMAN_IN_RELEASE = (
    'cd -- "$1" && shift && PATH="$PWD/.venv/bin:$PATH" && export PATH && '
    "if ! command -v procman >/dev/null 2>&1; then "
    'echo "procman is not installed in the release (looked in .venv/bin and PATH)"; '
    f"exit {NO_PROCMAN_STATUS}; fi; "
    'e=$(printf "%s" "$1" | sed "s/,/ /g"); shift; files=; '
    'for f in $e; do [ -e "$f" ] && files="$files${files:+,}$f"; done; '
)


def procman_in_release(root: str, release_id: str, args: Sequence[str]) -> list[str]:
    """Run ``procman ARGS`` (a subcommand first) in the release, with its ``.venv/bin`` first on
    PATH and its env files (the deploy env, then the shared ``.env``, which wins)."""
    script = _PROCMAN_IN_RELEASE + 'sub=$1; shift; exec procman "$sub" ${files:+-e "$files"} "$@"'
    return _sh(
        "procman",
        script,
        release_dir(root, release_id),
        f"{DEPLOY_ENV_FILE},.env",
        *args,
    )


START_FAILED_STATUS = 125
"""``start_supervisor``: procman exited, or did not answer in time (its log says why)."""
UP_TIMEOUT = 20
"""Seconds for a freshly started ``procman start`` to take its lock and answer ``ps``."""


def start_supervisor(
    root: str, release_id: str, formation: str, stop_timeout: float, *, list_processes: bool
) -> list[str]:
    """Start ``procman start`` in the release, detached from the SSH session (a session of its
    own, its log stream in ``SUPERVISOR_LOG``, rotated and capped; what it says before that file
    is open, and its last words, appended to it), restarting crashed processes; wait until it
    holds its lock, then, with ``list_processes``, until it answers ``procman ps --json``, which
    is printed (without, ``[]`` is: one interpreter fewer on the host). Exit
    ``START_FAILED_STATUS`` when it exits first or does not get there within ``UP_TIMEOUT``
    seconds."""
    lock = f".procman/{LOCK_FILE}"
    script = (
        _PROCMAN_IN_RELEASE + "mkdir -p .procman; "
        'setsid procman start --no-color --restart all ${files:+-e "$files"} "$@" '
        f"--log-file {SUPERVISOR_LOG} --log-max-bytes {LOG_MAX_BYTES} --log-backups {LOG_BACKUPS} "
        f">> {SUPERVISOR_LOG} 2>&1 < /dev/null & pid=$!; "
        f"end=$(( $(date +%s) + {UP_TIMEOUT} )); "
        f"until [ -e {lock} ] && ! flock -n -s {lock} true 2>/dev/null; do "
        f"kill -0 $pid 2>/dev/null && [ $(date +%s) -lt $end ] || exit {START_FAILED_STATUS}; "
        "sleep 0.05; done; "
        f"{'' if list_processes else 'echo []; exit 0; '}"
        'until procman ps --json ${files:+-e "$files"} 2>/dev/null; do '
        f"kill -0 $pid 2>/dev/null && [ $(date +%s) -lt $end ] || exit {START_FAILED_STATUS}; "
        "sleep 0.1; done"
    )
    return _sh(
        "start",
        script,
        release_dir(root, release_id),
        f"{DEPLOY_ENV_FILE},.env",
        "-m",
        formation,
        "-t",
        f"{stop_timeout:g}",
    )


LOCK_FILE = "procman.pid"
"""The file a running ``procman start`` holds an exclusive ``flock`` on, in ``.procman/``."""


def running_supervisors(root: str) -> list[str]:
    """The releases where a ``procman start`` runs now: its lock file is locked (``flock``)."""
    script = (
        f'for f in "$1"/*/.procman/{LOCK_FILE}; do [ -e "$f" ] || continue; '
        'flock -n -s "$f" true 2>/dev/null || echo "${f%/.procman/*}"; done'
    )
    return _sh("running", script, releases_dir(root))


def parse_running_supervisors(output: str) -> list[str]:
    """Release ids from ``running_supervisors`` output (release directories, one a line)."""
    ids = {PurePosixPath(line).name for line in output.split("\n") if line}
    return sorted(i for i in ids if RELEASE_ID_PATTERN.fullmatch(i))


def tail_log(root: str, release_id: str, lines: int) -> list[str]:
    path = f"{release_dir(root, release_id)}/{SUPERVISOR_LOG}"
    return _sh("tail", 'if [ -f "$2" ]; then tail -n "$1" -- "$2"; fi', str(lines), path)


HEALTH_SCRIPT = """\
import json, sys, time, urllib.request, urllib.error
path, timeout = sys.argv[1], float(sys.argv[2])
ports = [int(p) for p in sys.argv[3:]]
deadline = time.monotonic() + timeout
status = {p: "no answer" for p in ports}
while True:
    for port in [p for p in ports if not str(status[p]).startswith("2")]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                status[port] = str(r.status)
        except urllib.error.HTTPError as e:
            status[port] = str(e.code)
        except Exception as e:
            status[port] = type(e).__name__ + ": " + str(getattr(e, "reason", e))
    if all(str(s).startswith("2") for s in status.values()) or time.monotonic() > deadline:
        break
    time.sleep(0.2)
print(json.dumps({str(p): s for p, s in status.items()}))
sys.exit(0 if all(str(s).startswith("2") for s in status.values()) else 1)
"""


def health_check(path: str, timeout: float, ports: Sequence[int]) -> list[str]:
    """Poll ``http://127.0.0.1:PORT/path`` for each port on the host until every one answers 2xx
    or ``timeout`` passes; prints ``{port: status}`` as JSON, exits 1 unless all are 2xx."""
    return ["python3", "-c", HEALTH_SCRIPT, path, f"{timeout:g}", *(str(p) for p in ports)]


def parse_health(output: str) -> dict[int, str]:
    try:
        data = json.loads(output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise StepError(f"unexpected health check output {output[:80]!r}") from None
    return {int(port): str(status) for port, status in data.items()}


# -- day-two reads: logs and processes -------------------------------------------------------------

NO_CURRENT_STATUS = 3
"""``follow_logs``: there is no ``current`` release on the host."""

FOLLOW_SCRIPT = """\
import os, re, select, sys, time
log, root, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
follow, poll, wanted = sys.argv[4] == "1", float(sys.argv[5]), set(sys.argv[6:])
path = root + "/current/" + log
line_name = re.compile(rb"^(?:\\d\\d:\\d\\d:\\d\\d )?(\\S+) +\\| ")
out = sys.stdout.buffer

def matches(line):
    if not wanted:
        return True
    found = line_name.match(line)
    if found is None:
        return False
    name = found.group(1).decode(errors="replace")
    return name in wanted or name.rsplit(".", 1)[0] in wanted

if not os.path.isdir(root + "/current"):
    sys.stderr.write("no release is current on this host\\n")
    sys.exit(3)

def identity(st):
    return (st.st_dev, st.st_ino)

def opened():
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None, None
    return f, identity(os.fstat(f.fileno()))

# The file followed is the one the backlog was read from, from where that read ended: a line
# written in between is not lost.
f, seen = opened()
data = f.read() if f is not None else b""
end = data.rfind(b"\\n") + 1
pending = data[end:]
backlog = [l for l in data[:end].splitlines(True) if matches(l)]
for number in range(1, 100):
    if len(backlog) >= count:
        break
    try:
        with open(path + "." + str(number), "rb") as old:
            lines = [l if l.endswith(b"\\n") else l + b"\\n" for l in old.read().splitlines(True)]
    except FileNotFoundError:
        break
    backlog = [l for l in lines if matches(l)] + backlog
out.write(b"".join(backlog[len(backlog) - count:] if count else []))
out.flush()
if not follow:
    sys.exit(0)

def emit(data):
    global pending
    data = pending + data
    end = data.rfind(b"\\n") + 1
    pending = data[end:]
    lines = [l for l in data[:end].splitlines(True) if matches(l)]
    if lines:
        out.write(b"".join(lines))
        out.flush()

while True:
    ready, _, _ = select.select([sys.stdin], [], [], poll)
    if ready and not os.read(sys.stdin.fileno(), 4096):
        sys.exit(0)
    if f is not None:
        emit(f.read())
    try:
        now = identity(os.stat(path))
    except FileNotFoundError:
        continue
    if f is None or now != seen:
        if f is not None:
            emit(f.read())
            f.close()
        f, seen = opened()
        pending = b""
    elif os.fstat(f.fileno()).st_size < f.tell():
        f.seek(0)
"""


def follow_logs(root: str, lines: int, follow: bool, targets: Sequence[str]) -> list[str]:
    """The last ``lines`` lines of the current release's log stream (``SUPERVISOR_LOG`` and its
    rotated files), of ``targets`` only (instance or type names) when given; with ``follow``,
    then every new line as it is written, following the file by name (across a rotation, a
    restart of procman and a deploy that switches ``current``) until standard input closes.
    Exits ``NO_CURRENT_STATUS`` when no release is current."""
    poll = "0.2"
    return ["python3", "-c", FOLLOW_SCRIPT, SUPERVISOR_LOG, deploy_root(root), str(lines),
            "1" if follow else "0", poll, *targets]  # fmt: skip


# -- files kept for the environment (shared/.env, the scaled formation), changed on every host ----

FORMATION_FILE = "formation.json"
"""In ``.procman/``: the formation ``procman scale --env`` set, for every later start."""
_STAGED, _SAVED, _ABSENT = ".procman-new", ".procman-old", ".procman-none"


def shared_env_path(root: str) -> str:
    return f"{shared_dir(root)}/.env"


def formation_path(root: str) -> str:
    return f"{state_dir(root)}/{FORMATION_FILE}"


def read_kept_file(path: str) -> list[str]:
    """``present`` and the file's text, or ``absent``."""
    return _sh(
        "read-file", 'if [ -f "$1" ]; then echo present; cat -- "$1"; else echo absent; fi', path
    )


def parse_kept_file(output: str) -> str | None:
    """The text ``read_kept_file`` printed, or None for a file that is not there."""
    first, _, text = output.partition("\n")
    if first == "absent":
        return None
    if first != "present":
        raise StepError(f"unexpected output {output[:80]!r}")
    return text


def stage_file(path: str, text: str) -> list[str]:
    """The first half of changing ``path`` on every host: write ``text`` next to it (mode 0600)
    and keep what is there now (a copy, mode 0600, or a mark that there is nothing), without
    touching ``path`` itself. ``commit_file`` renames it into place; ``discard_staged`` undoes
    this."""
    script = (
        'set -e; umask 077; mkdir -p -- "$(dirname -- "$1")"; '
        f'printf "%s" "$2" > "$1{_STAGED}"; '
        f'if [ -e "$1" ]; then cat -- "$1" > "$1{_SAVED}"; rm -f -- "$1{_ABSENT}"; '
        f'else rm -f -- "$1{_SAVED}"; : > "$1{_ABSENT}"; fi'
    )
    return _sh("stage", script, path, text)


def commit_file(path: str) -> list[str]:
    """Rename the staged file onto ``path`` (atomic on the host)."""
    return ["mv", "-f", "--", f"{path}{_STAGED}", path]


def discard_staged(path: str) -> list[str]:
    """Remove what ``stage_file`` wrote (after a commit: the copy of the old file)."""
    return ["rm", "-f", "--", f"{path}{_STAGED}", f"{path}{_SAVED}", f"{path}{_ABSENT}"]


def restore_file(path: str) -> list[str]:
    """Put back what ``path`` was before ``stage_file`` (removing it if there was nothing)."""
    script = (
        f'if [ -e "$1{_ABSENT}" ]; then rm -f -- "$1"; '
        f'elif [ -e "$1{_SAVED}" ]; then mv -f -- "$1{_SAVED}" "$1"; fi; '
        f'rm -f -- "$1{_STAGED}" "$1{_SAVED}" "$1{_ABSENT}"'
    )
    return _sh("restore", script, path)
