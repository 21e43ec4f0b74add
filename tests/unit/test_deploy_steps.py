"""procman.deploy.steps: remote command lines as data, checked as exact strings, then run by a real
``sh`` (as SSH's remote shell would run them) against a deploy root with a hostile name."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tarfile
from pathlib import Path

import pytest

from procman.deploy import steps
from procman.deploy.release import ReleaseError
from procman.errors import ConfigError

ROOT = "/srv/my app"
ID = "20261122T131955Z-0123456"
OLDER = "20261120T090000Z-89abcde"


def line(argv: list[str]) -> str:
    return shlex.join(argv)


def test_ensure_layout() -> None:
    assert line(steps.ensure_layout(ROOT + "/")) == (
        "mkdir -p -- '/srv/my app/releases' '/srv/my app/shared' '/srv/my app/.procman' "
        "'/srv/my app/.procman/artifacts'"
    )


def test_take_lock_writes_holder_time_and_release_as_one_json_argument() -> None:
    argv = steps.take_lock(ROOT, "dev@laptop", "2026-11-22T13:19:55Z", ID)
    assert line(argv) == (
        """sh -c 'if mkdir -- "$1" 2>/dev/null; then printf "%s\\n" "$2" > "$1/info"; """
        """elif [ -d "$1" ]; then cat -- "$1/info" 2>/dev/null; exit 75; else mkdir -- "$1"; fi' """
        "procman-lock '/srv/my app/.procman/lock' "
        """'{"holder": "dev@laptop", "release": "20261122T131955Z-0123456", """
        """"time": "2026-11-22T13:19:55Z"}'"""
    )


def test_read_and_release_lock() -> None:
    assert line(steps.read_lock(ROOT)) == (
        """sh -c 'if [ -d "$1" ]; then cat -- "$1/info" 2>/dev/null; fi' procman-read-lock """
        "'/srv/my app/.procman/lock'"
    )
    assert line(steps.release_lock(ROOT)) == "rm -rf -- '/srv/my app/.procman/lock'"


def test_parse_lock_info() -> None:
    info = steps.lock_info("dev@laptop", "2026-11-22T13:19:55Z", ID)
    assert steps.parse_lock_info(info + "\n") == {
        "holder": "dev@laptop",
        "time": "2026-11-22T13:19:55Z",
        "release": ID,
    }
    assert steps.parse_lock_info("garbage") == {"holder": "?", "time": "?", "release": "?"}
    assert steps.parse_lock_info("[1]") == {"holder": "?", "time": "?", "release": "?"}


def test_accept_checked_upload_compares_the_digest_then_renames() -> None:
    part = "'/srv/my app/.procman/artifacts/20261122T131955Z-0123456.tar.gz.part'"
    assert line(steps.accept_checked_upload(ROOT, ID, "a" * 64)) == (
        """sh -c 'actual=$(sha256sum < "$1") && actual=${actual%% *} """
        """&& if [ "$actual" != "$2" ]; then rm -f -- "$1"; echo "sha256 $actual"; exit 65; fi """
        """&& mv -T -- "$1" "$3"' procman-accept """
        f"{part} {'a' * 64} '/srv/my app/.procman/artifacts/20261122T131955Z-0123456.tar.gz'"
    )
    with pytest.raises(steps.StepError, match="bad sha256"):
        steps.accept_checked_upload(ROOT, ID, "$(reboot)")


def test_parse_sha256() -> None:
    digest = "a" * 64
    assert steps.parse_sha256(f"{digest}  /srv/x.tar.gz\n") == digest
    assert steps.parse_sha256(f"\\{digest}  /srv/odd\\nname\n") == digest
    with pytest.raises(steps.StepError, match="unexpected sha256sum output"):
        steps.parse_sha256("sha256sum: /srv/x: No such file or directory\n")


def test_unpack_release_goes_through_a_temporary_directory() -> None:
    argv = steps.unpack_release(ROOT, ID, [".env", "media/uploads/"], "A='1'\n")
    assert argv[:2] == ["sh", "-c"]
    assert argv[3:] == [
        "procman-unpack",
        "/srv/my app/.procman/artifacts/20261122T131955Z-0123456.tar.gz",
        "/srv/my app/releases/.20261122T131955Z-0123456.unpacking",
        "/srv/my app/releases/20261122T131955Z-0123456",
        "/srv/my app/shared",
        "/srv/my app/current",
        "A='1'\n",
        ".env",
        "media/uploads/",
    ]


def test_run_in_release_passes_the_command_as_one_argument() -> None:
    argv = steps.run_in_release(ROOT, ID, "pip install -r requirements.txt && echo '$HOME'")
    assert argv[-1] == "pip install -r requirements.txt && echo '$HOME'"
    assert line(argv) == (
        """sh -c 'cd -- "$1" && exec sh -c "$2"' procman-run """
        "'/srv/my app/releases/20261122T131955Z-0123456' "
        """'pip install -r requirements.txt && echo '"'"'$HOME'"'"''"""
    )


def test_switch_current_links_shared_then_renames_a_temporary_symlink() -> None:
    argv = steps.switch_current(ROOT, ID, [".env", "media/uploads/"])
    assert argv[:2] == ["sh", "-c"]
    assert argv[2].startswith("set -e; n=$1; t=$2; c=$3; r=$4; s=$5; shift 5; for f; do ")
    assert argv[2].endswith('done; ln -sfn -- "$n" "$t"; mv -T -- "$t" "$c"')
    assert argv[3:] == [
        "procman-switch",
        "releases/20261122T131955Z-0123456",
        "/srv/my app/.current.tmp",
        "/srv/my app/current",
        "/srv/my app/releases/20261122T131955Z-0123456",
        "/srv/my app/shared",
        ".env",
        "media/uploads/",
    ]


def test_switching_links_what_shared_has_now(tmp_path: Path) -> None:
    """A .env put in shared/ after the release was unpacked is linked at the next switch (a
    rollback, a redeploy), replacing the committed one; links already there are left alone; a
    shared file gone missing stops the switch before current moves."""
    root_path = tmp_path / "a b;$(touch pwned)"
    root = str(root_path)
    ok(steps.ensure_layout(root), tmp_path)
    make_artifact(Path(steps.artifact_path(root, ID)), "web: run\n")
    ok(steps.unpack_release(root, ID, [".env", "data/"], ""), tmp_path)
    release = root_path / "releases" / ID
    (release / ".env").write_text("COMMITTED=1\n")  # as if the commit had one
    data_link = (release / "data").lstat()

    ok(steps.switch_current(root, ID, [".env", "data/"]), tmp_path)
    assert (release / ".env").read_text() == "COMMITTED=1\n"  # shared/ has none yet
    (root_path / "shared" / ".env").write_text("REDISTOGO_URL=redis://x\n")
    ok(steps.switch_current(root, ID, [".env", "data/"]), tmp_path)
    assert (release / ".env").is_symlink()
    assert (release / ".env").read_text() == "REDISTOGO_URL=redis://x\n"
    assert (release / "data").lstat().st_ino == data_link.st_ino  # not made again

    make_artifact(Path(steps.artifact_path(root, OLDER)), "web: old\n")
    ok(steps.unpack_release(root, OLDER, [], ""), tmp_path)
    missing = run(steps.switch_current(root, OLDER, [".env", "secrets.yml"]), tmp_path)
    assert (missing.returncode, missing.stdout) == (
        steps.MISSING_SHARED_STATUS,
        "missing secrets.yml\n",
    )
    assert steps.parse_current(ok(steps.read_current(root), tmp_path)) == ID
    assert not list(tmp_path.rglob("pwned*"))


def test_read_current_and_parse() -> None:
    assert line(steps.read_current(ROOT)) == (
        """sh -c 'if [ -L "$1" ]; then readlink -- "$1"; fi' procman-current """
        "'/srv/my app/current'"
    )
    assert steps.parse_current("") is None
    assert steps.parse_current(f"releases/{ID}\n") == ID
    assert steps.parse_current(f"/srv/my app/releases/{ID}\n") == ID
    with pytest.raises(steps.StepError, match="not at a release"):
        steps.parse_current("/etc\n")


def test_list_releases_and_parse() -> None:
    assert line(steps.list_releases(ROOT)) == (
        "find '/srv/my app/releases' -mindepth 1 -maxdepth 1 -type d -printf '%f\\n'"
    )
    output = f"{ID}\n.{ID}.unpacking\nlost+found\n{OLDER}\n"
    assert steps.parse_releases(output) == [OLDER, ID]


def test_releases_to_prune_keeps_the_newest_and_never_current_or_previous() -> None:
    ids = [f"2026110{day}T000000Z-000000{day}" for day in range(1, 8)]
    assert steps.releases_to_prune(ids, 5, [ids[-1], ids[-2]]) == ids[:2]
    assert steps.releases_to_prune(ids, 2, [ids[0], ids[1]]) == ids[2:5]
    assert steps.releases_to_prune(ids, 1, [ids[3], None]) == [*ids[:3], *ids[4:6]]
    assert steps.releases_to_prune(ids[:3], 5, []) == []
    # Failed releases do not take a healthy one's place; the newest failed is kept to inspect.
    failed = ids[2:5]
    assert steps.releases_to_prune(ids, 3, [ids[6], ids[5]], failed) == [ids[0], *ids[2:4]]
    assert steps.releases_to_prune(ids, 3, [ids[6], ids[5]], ["2020"]) == ids[:4]
    with pytest.raises(ConfigError, match="keep_releases must be at least 1"):
        steps.releases_to_prune(ids, 0, [])


def test_remove_releases_removes_directories_and_artifacts() -> None:
    assert line(steps.remove_releases(ROOT, [OLDER])) == (
        "rm -rf -- '/srv/my app/releases/20261120T090000Z-89abcde' "
        "'/srv/my app/.procman/artifacts/20261120T090000Z-89abcde.tar.gz' "
        "'/srv/my app/.procman/built/20261120T090000Z-89abcde'"
    )


def test_history_append_and_read() -> None:
    assert line(steps.append_history(ROOT, '{"who": "o\'brien"}')) == (
        """sh -c 'printf "%s\\n" "$2" >> "$1"' procman-history """
        """'/srv/my app/.procman/history.jsonl' '{"who": "o'"'"'brien"}'"""
    )
    assert line(steps.read_history(ROOT)) == (
        """sh -c 'if [ -f "$1" ]; then cat -- "$1"; fi' procman-read-history """
        "'/srv/my app/.procman/history.jsonl'"
    )
    with pytest.raises(steps.StepError, match="single line"):
        steps.append_history(ROOT, "{}\n{}")


HOSTILE_IDS = [
    "../../etc",
    f"{ID}; rm -rf /",
    f"{ID}/../..",
    "$(reboot)",
    f"{ID}\n",
    "-rf",
    "",
]


@pytest.mark.parametrize("release_id", HOSTILE_IDS)
def test_hostile_release_ids_are_rejected(release_id: str) -> None:
    for build in (
        lambda root, rid: steps.unpack_release(root, rid, [".env"], ""),
        steps.switch_current,
        lambda root, rid: steps.accept_checked_upload(root, rid, "a" * 64),
        steps.finish_build,
        lambda root, rid: steps.run_in_release(root, rid, "true"),
        lambda root, rid: steps.remove_releases(root, [rid]),
        lambda root, rid: steps.take_lock(root, "me", "now", rid),
    ):
        with pytest.raises(ReleaseError, match="bad release id"):
            build(ROOT, release_id)


@pytest.mark.parametrize("root", ["srv/app", "", ".", "/", "/srv/../etc", "/srv/a\nb", "/srv/\0"])
def test_bad_roots_are_rejected(root: str) -> None:
    with pytest.raises(ConfigError, match="deploy path"):
        steps.ensure_layout(root)


@pytest.mark.parametrize("name", ["", "/etc/passwd", "../x", "a/../../x", ".", "a\nb"])
def test_bad_shared_files_are_rejected(name: str) -> None:
    with pytest.raises(ConfigError, match="shared file"):
        steps.unpack_release(ROOT, ID, [name], "")


def test_hostile_root_is_one_quoted_word() -> None:
    root = "/srv/a b;$(touch pwned)`id`'\"&|*"
    argv = steps.release_lock(root)
    assert shlex.split(line(argv)) == ["rm", "-rf", "--", f"{root}/.procman/lock"]
    built = [steps.unpack_release(root, ID, [".env"], ""), steps.switch_current(root, ID)]
    built.append(steps.take_lock(root, "x'y", "t", ID))
    for argv in built:
        assert shlex.split(line(argv)) == argv


# -- run by a real shell -------------------------------------------------------------------------


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a step as SSH would: its joined line handed to a shell."""
    return subprocess.run(
        ["sh", "-c", line(argv)], cwd=cwd, capture_output=True, text=True, check=False
    )


def ok(argv: list[str], cwd: Path) -> str:
    done = run(argv, cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


def make_artifact(path: Path, text: str) -> None:
    source = path.parent / "source"
    source.mkdir(exist_ok=True)
    (source / "Procfile").write_text(text)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(source / "Procfile", arcname="Procfile")


def test_a_whole_deploy_runs_in_a_hostile_root(tmp_path: Path) -> None:
    root_path = tmp_path / "a b;$(touch pwned)`touch pwned2`'\"&|*"
    root = str(root_path)
    ok(steps.ensure_layout(root), tmp_path)
    assert sorted(p.name for p in root_path.iterdir()) == [".procman", "releases", "shared"]

    ok(steps.take_lock(root, "o'brien@laptop", "2026-11-22T13:19:55Z", ID), tmp_path)
    held = run(steps.take_lock(root, "other@ci", "later", OLDER), tmp_path)
    assert held.returncode == steps.LOCK_HELD_STATUS
    assert steps.parse_lock_info(held.stdout)["holder"] == "o'brien@laptop"
    assert steps.parse_lock_info(ok(steps.read_lock(root), tmp_path))["release"] == ID

    make_artifact(Path(steps.upload_path(root, ID)), "web: run\n")
    digest = steps.parse_sha256(
        subprocess.run(
            ["sha256sum", steps.upload_path(root, ID)], capture_output=True, text=True, check=True
        ).stdout
    )
    ok(steps.accept_checked_upload(root, ID, digest), tmp_path)
    (root_path / "shared" / ".env").write_text("A=1\n")
    ok(steps.unpack_release(root, ID, [".env", "media/uploads/"], "B='$(x)'\n"), tmp_path)
    release = root_path / "releases" / ID
    assert (release / "Procfile").read_text() == "web: run\n"
    assert (release / ".env").read_text() == "A=1\n"
    assert (release / "media" / "uploads").is_symlink()
    assert (release / steps.DEPLOY_ENV_FILE).read_text() == "B='$(x)'\n"

    ok(steps.run_in_release(root, ID, 'echo built > out; echo "$0" > zero'), tmp_path)
    assert (release / "out").read_text() == "built\n"

    assert steps.parse_current(ok(steps.read_current(root), tmp_path)) is None
    ok(steps.switch_current(root, ID), tmp_path)
    assert steps.parse_current(ok(steps.read_current(root), tmp_path)) == ID
    assert (root_path / "current" / "out").read_text() == "built\n"

    make_artifact(Path(steps.artifact_path(root, OLDER)), "web: old\n")
    ok(steps.unpack_release(root, OLDER, [], ""), tmp_path)
    ok(steps.switch_current(root, OLDER), tmp_path)
    assert (root_path / "current" / "Procfile").read_text() == "web: old\n"
    assert not (root_path / ".current.tmp").exists()

    assert steps.parse_releases(ok(steps.list_releases(root), tmp_path)) == [OLDER, ID]
    ok(steps.remove_releases(root, [ID]), tmp_path)
    assert steps.parse_releases(ok(steps.list_releases(root), tmp_path)) == [OLDER]
    assert not Path(steps.artifact_path(root, ID)).exists()

    assert ok(steps.read_history(root), tmp_path) == ""
    first = json.dumps({"who": "o'brien", "note": "$(touch pwned) `x` \\n"})
    ok(steps.append_history(root, first), tmp_path)
    ok(steps.append_history(root, "{}"), tmp_path)
    assert ok(steps.read_history(root), tmp_path) == first + "\n{}\n"

    ok(steps.release_lock(root), tmp_path)
    assert ok(steps.read_lock(root), tmp_path) == ""
    assert not list(tmp_path.rglob("pwned*"))


def test_unpack_replaces_an_unbuilt_release_but_never_the_current_one(tmp_path: Path) -> None:
    root = str(tmp_path / "app")
    ok(steps.ensure_layout(root), tmp_path)
    make_artifact(Path(steps.artifact_path(root, ID)), "web: new\n")
    release = tmp_path / "app" / "releases" / ID
    release.mkdir()
    (release / "left-by-a-failed-build").write_text("")
    ok(steps.unpack_release(root, ID, [], ""), tmp_path)
    assert sorted(p.name for p in release.iterdir()) == [steps.DEPLOY_ENV_FILE, "Procfile"]

    ok(steps.switch_current(root, ID), tmp_path)
    (release / "running").write_text("")
    refused = run(steps.unpack_release(root, ID, [], ""), tmp_path)
    assert refused.returncode == steps.RELEASE_IS_CURRENT_STATUS
    assert refused.stdout == f"{release} is current\n"
    assert (release / "running").exists()


def test_a_tampered_upload_is_removed_not_accepted(tmp_path: Path) -> None:
    root = str(tmp_path / "app")
    ok(steps.ensure_layout(root), tmp_path)
    make_artifact(Path(steps.upload_path(root, ID)), "web: x\n")
    done = run(steps.accept_checked_upload(root, ID, "b" * 64), tmp_path)
    assert done.returncode == steps.SHA256_MISMATCH_STATUS
    assert re.fullmatch(r"sha256 [0-9a-f]{64}\n", done.stdout)
    assert not Path(steps.upload_path(root, ID)).exists()
    assert not Path(steps.artifact_path(root, ID)).exists()


def test_lock_in_a_missing_root_is_an_error_not_held(tmp_path: Path) -> None:
    done = run(steps.take_lock(str(tmp_path / "missing"), "me", "now", ID), tmp_path)
    assert done.returncode not in (0, steps.LOCK_HELD_STATUS)
    assert "mkdir" in done.stderr
