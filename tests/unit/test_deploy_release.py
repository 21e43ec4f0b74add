"""procman.deploy.release: one deterministic artifact per commit, built from a real git repo."""

from __future__ import annotations

import gzip
import hashlib
import io
import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from procman.deploy.release import (
    MANIFEST_NAME,
    Manifest,
    ReleaseError,
    build_release,
    config_state,
    load_artifact,
    read_manifest,
    release_id_for,
    validate_release_id,
)
from procman.errors import ProcmanError

NOW = datetime(2026, 11, 22, 13, 19, 55, tzinfo=UTC)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "Procfile").write_text("web: python -m app\nworker: procman worker\n")
    (repo / "app").mkdir()
    (repo / "app" / "__init__.py").write_text("print('hi')\n")
    (repo / "run.sh").write_text("#!/bin/sh\necho run\n")
    (repo / "run.sh").chmod(0o755)
    (repo / "b.txt").write_text("b\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    return repo


def build(repo: Path, store: Path | None = None, **options: object):  # type: ignore[no-untyped-def]
    return build_release(
        repo, app="snippets", now=NOW, builder="dev@laptop", store=store, **options
    )  # type: ignore[arg-type]


def test_artifact_and_checksum_are_stored_under_procman_releases(repo: Path) -> None:
    artifact = build(repo)
    sha = git(repo, "rev-parse", "HEAD")
    assert artifact.release_id == f"20261122T131955Z-{sha[:7]}"
    assert artifact.path == repo / ".procman" / "releases" / f"{artifact.release_id}.tar.gz"
    data = artifact.path.read_bytes()
    assert artifact.sha256 == hashlib.sha256(data).hexdigest()
    assert artifact.checksum_path.read_text() == f"{artifact.sha256}  {artifact.path.name}\n"
    assert load_artifact(repo / ".procman" / "releases", artifact.release_id) == artifact


def test_manifest_records_the_release(repo: Path) -> None:
    artifact = build(repo, required_env=["SECRET_KEY", "DATABASE_URL", "SECRET_KEY"])
    manifest = read_manifest(artifact.path.read_bytes())
    assert manifest == artifact.manifest
    assert manifest == Manifest(
        app="snippets",
        git_sha=git(repo, "rev-parse", "HEAD"),
        release_id=artifact.release_id,
        process_types=("web", "worker"),
        required_env=("DATABASE_URL", "SECRET_KEY"),
        created_at="2026-11-22T13:19:55Z",
        builder="dev@laptop",
        dirty=False,
    )
    assert Manifest.from_json(manifest.to_json()) == manifest


def test_members_are_sorted_owned_by_root_and_keep_modes(repo: Path) -> None:
    artifact = build(repo)
    commit_time = int(git(repo, "log", "-1", "--format=%ct"))
    with tarfile.open(artifact.path, "r:gz") as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names)
        assert set(names) == {
            MANIFEST_NAME,
            "Procfile",
            "app",
            "app/__init__.py",
            "b.txt",
            "run.sh",
        }
        assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
        assert {m.mtime for m in members} == {commit_time}
        assert tar.getmember("run.sh").mode & 0o777 == 0o755
        assert tar.getmember("b.txt").mode & 0o777 == 0o644
        assert tar.getmember("app").mode & 0o777 == 0o755
        assert tar.extractfile("b.txt").read() == b"b\n"  # type: ignore[union-attr]
    header = artifact.path.read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0"  # gzip mtime


def test_same_commit_built_twice_gives_the_same_sha256(repo: Path, tmp_path: Path) -> None:
    first = build(repo, store=tmp_path / "one")
    (repo / "untracked-but-ignored").write_text("x")
    (repo / ".git" / "info" / "exclude").write_text("untracked-but-ignored\n")
    second = build(repo, store=tmp_path / "two")
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()


def test_a_clone_with_other_file_times_and_umask_gives_the_same_sha256(
    repo: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    (clone / "b.txt").touch()
    git(clone, "config", "tar.umask", "0077")
    assert build(repo, store=tmp_path / "one").sha256 == build(clone, store=tmp_path / "two").sha256


def test_variable_manifest_fields_change_the_sha256(repo: Path, tmp_path: Path) -> None:
    first = build(repo, store=tmp_path / "one")
    other = build_release(repo, app="snippets", now=NOW, builder="ci@runner", store=tmp_path / "b")
    assert first.sha256 != other.sha256


def test_gzip_and_tar_are_valid(repo: Path) -> None:
    data = build(repo).path.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r:") as tar:
        assert tar.getmember(MANIFEST_NAME).isfile()


def test_an_older_commit_can_be_built(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    (repo / "Procfile").write_text("web: python -m app\n")
    git(repo, "commit", "-q", "-am", "second")
    artifact = build(repo, commit=first[:10])
    assert artifact.manifest.git_sha == first
    assert artifact.manifest.process_types == ("web", "worker")


def test_not_a_git_repository(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="not a git repository") as caught:
        build(tmp_path)
    assert caught.value.hint and "git init" in caught.value.hint


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="no such directory"):
        build(tmp_path / "nope")


def test_unknown_commit(repo: Path) -> None:
    with pytest.raises(ReleaseError, match="unknown commit 'no-such-branch'"):
        build(repo, commit="no-such-branch")


def test_an_option_looking_commit_is_unknown_not_an_option(repo: Path) -> None:
    with pytest.raises(ReleaseError, match="unknown commit '--all'"):
        build(repo, commit="--all")


def test_dirty_tree_is_refused_with_the_first_paths(repo: Path) -> None:
    (repo / "b.txt").write_text("changed\n")
    for name in "cdefgh":
        (repo / f"{name}.new").write_text("")
    (repo / ".procman" / "run").mkdir(parents=True)
    (repo / ".procman" / "run" / "x").write_text("")
    with pytest.raises(ReleaseError) as caught:
        build(repo)
    assert caught.value.message == (
        f"{repo}: the working tree has uncommitted changes: "
        "b.txt, c.new, d.new, e.new, f.new and 2 more"
    )
    assert caught.value.hint and "the allow-dirty option" in str(caught.value)


def test_allow_dirty_builds_the_commit_and_records_it(repo: Path) -> None:
    (repo / "b.txt").write_text("changed\n")
    artifact = build(repo, allow_dirty=True)
    assert artifact.manifest.dirty is True
    with tarfile.open(artifact.path, "r:gz") as tar:
        assert tar.extractfile("b.txt").read() == b"b\n"  # type: ignore[union-attr]


def test_the_release_store_itself_does_not_make_the_tree_dirty(repo: Path) -> None:
    (repo / ".gitignore").write_text("")  # .procman/ not ignored by the app
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore nothing")
    build(repo)
    assert build(repo).manifest.dirty is False


def test_config_state_is_the_file_sha256_and_whether_it_differs_from_head(
    repo: Path, tmp_path: Path
) -> None:
    config = repo / "procman.yml"
    config.write_text("app: a\n")
    digest = hashlib.sha256(b"app: a\n").hexdigest()
    assert config_state(config) == (digest, True)  # untracked
    git(repo, "add", "procman.yml")
    assert config_state(config) == (digest, True)  # staged, not committed
    git(repo, "commit", "-q", "-m", "config")
    assert config_state(config) == (digest, False)
    (repo / "b.txt").write_text("other files do not count\n")
    assert config_state(config) == (digest, False)
    config.write_text("app: b\n")
    assert config_state(config) == (hashlib.sha256(b"app: b\n").hexdigest(), True)
    (repo / ".gitignore").write_text("other.yml\n")
    (repo / "other.yml").write_text("app: a\n")
    assert config_state(repo / "other.yml")[1] is True  # ignored
    outside = tmp_path / "procman.yml"
    outside.write_text("app: a\n")
    assert config_state(outside) == (digest, True)  # no repository


def test_a_commit_without_a_procfile_is_refused(repo: Path) -> None:
    git(repo, "rm", "-q", "Procfile")
    git(repo, "commit", "-q", "-m", "no procfile")
    with pytest.raises(ReleaseError, match="has no Procfile"):
        build(repo)


def test_a_bad_procfile_in_the_commit_is_reported(repo: Path) -> None:
    (repo / "Procfile").write_text("web python\n")
    git(repo, "commit", "-q", "-am", "bad")
    with pytest.raises(ProcmanError, match=r"Procfile \(commit [0-9a-f]{7}\):1"):
        build(repo)


def test_a_committed_manifest_name_is_refused(repo: Path) -> None:
    (repo / MANIFEST_NAME).write_text("{}")
    git(repo, "add", MANIFEST_NAME)
    git(repo, "commit", "-q", "-m", "clash")
    with pytest.raises(ReleaseError, match="already contains"):
        build(repo)


def test_load_artifact_rejects_a_changed_file(repo: Path) -> None:
    artifact = build(repo)
    artifact.path.write_bytes(artifact.path.read_bytes() + b"\0")
    assert load_artifact(artifact.path.parent, artifact.release_id) is None
    assert load_artifact(artifact.path.parent, "20261122T131955Z-0000000") is None


def test_read_manifest_of_something_else() -> None:
    with pytest.raises(ReleaseError, match="not a procman release artifact"):
        read_manifest(b"not gzip", "x.tar.gz")


def test_bad_manifest_json() -> None:
    with pytest.raises(ReleaseError, match=r"m\.json: not a procman release manifest"):
        Manifest.from_json('{"app": 1}', "m.json")


def test_release_ids() -> None:
    assert release_id_for(NOW, "0123456789abcdef") == "20261122T131955Z-0123456"
    assert validate_release_id("20261122T131955Z-0123456") == "20261122T131955Z-0123456"
    for bad in ["", "latest", "20261122T131955Z-0123456/../x", "20261122T131955Z-0123456 ; rm",
                "../20261122T131955Z-0123456", "20261122T131955Z-ABCDEFG"]:  # fmt: skip
        with pytest.raises(ReleaseError, match="bad release id"):
            validate_release_id(bad)


def test_required_env_is_what_the_procfile_uses_without_a_default() -> None:
    from procman.deploy.release import required_env_names

    commands = [
        "gunicorn -b 0.0.0.0:$PORT app:app --log-level ${LOG_LEVEL:-info}",
        'celery -A "$APP_MODULE" worker --broker ${REDIS_URL} --name $PS.$HOSTNAME',
        "python -m clock --every ${EVERY-60} --token $API_TOKEN $1 $$",
    ]
    assert required_env_names(commands) == ("API_TOKEN", "APP_MODULE", "REDIS_URL")
