# Shared by scripts/run, scripts/test and scripts/bench. Source it; do not run it.
# Everything here is idempotent: a second call finds the work done and returns.

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV_DIR="${PRESSLUFT_VENV:-$REPO_DIR/.venv}"
PY="$VENV_DIR/bin/python"

log() { printf '\033[1m[pressluft]\033[0m %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

require_root() {
  [ "$(id -u)" = 0 ] || die "run this as root (it installs system packages)"
}

apt_install() {
  # apt_install PACKAGE... : install the missing ones only.
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${_PRESSLUFT_APT_UPDATED:-}" ]; then
    apt-get update -qq || die "apt-get update failed"
    _PRESSLUFT_APT_UPDATED=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
}

# What the browser tests (tests/browser) drive: Debian's Chromium, never a
# browser build downloaded by Playwright; a font so screenshots are legible.
BROWSER_TEST_PACKAGES=(chromium fonts-dejavu-core)
# The playwright package brings its driver; browsers come from apt only.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

install_browser_packages() {
  apt_install "${BROWSER_TEST_PACKAGES[@]}"
}

find_python() {
  # A Python >= 3.11 that can make virtual environments.
  local candidate
  for candidate in "${PRESSLUFT_PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

ensure_python_env() {
  local base
  if [ ! -x "$PY" ]; then
    base="$(find_python)" || { apt_install python3 python3-venv; base="$(find_python)" || die "no Python 3.11+ found"; }
    if ! "$base" -m venv --help >/dev/null 2>&1 || ! "$base" -c 'import ensurepip' >/dev/null 2>&1; then
      apt_install python3-venv
    fi
    log "creating the Python environment in $VENV_DIR"
    "$base" -m venv "$VENV_DIR" || { apt_install python3-venv; "$base" -m venv "$VENV_DIR"; } || die "cannot create $VENV_DIR"
  fi
  local stamp="$VENV_DIR/.requirements.sha256"
  local want
  want="$(sha256sum "$REPO_DIR/requirements.lock" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing Python packages from requirements.lock"
    "$PY" -m pip install -q --disable-pip-version-check -r "$REPO_DIR/requirements.lock" || die "pip install failed"
    echo "$want" > "$stamp"
  fi
}

pg_bin() {
  # pg_bin NAME : path of a PostgreSQL server program (initdb, pg_ctl, postgres).
  local found
  found="$(command -v "$1" 2>/dev/null)" && { echo "$found"; return 0; }
  found="$(ls -d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$found" ] && { echo "$found"; return 0; }
  return 1
}

ensure_postgres_installed() {
  pg_bin initdb >/dev/null && pg_bin pg_ctl >/dev/null && return 0
  apt_install postgresql
  pg_bin initdb >/dev/null || die "PostgreSQL installed but initdb not found"
}

# start_postgres DIR PORT : a throwaway cluster owned by the postgres user.
start_postgres() {
  local dir="$1" port="$2"
  ensure_postgres_installed
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  mkdir -p "$dir"
  chown postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    runuser -u postgres -- "$(pg_bin initdb)" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  fi
  runuser -u postgres -- "$(pg_bin pg_ctl)" -D "$dir/data" -l "$dir/pg.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { cat "$dir/pg.log" >&2; die "PostgreSQL did not start"; }
}

stop_postgres() {
  local dir="$1"
  [ -f "$dir/data/postmaster.pid" ] || return 0
  runuser -u postgres -- "$(pg_bin pg_ctl)" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
