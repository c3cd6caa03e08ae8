#!/usr/bin/env bash
# Prepare a machine to run Omium's local stack and tests. Idempotent: every step checks first and
# does nothing when already done, so `make test` can call it each time.
#
#   1. system packages: PostgreSQL, Redis, Java 17, Maven (apt, only those missing)
#   2. .venv with `pip install -e '.[dev]'` (skipped while pyproject.toml is unchanged)
#   3. the stack's binaries: Kafka jars and OpenSearch via Maven into .omium/dist
#
# Runs as root on CI (fresh Debian 12, no stdin); as another user it uses sudo for apt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
STAMP="$VENV/.omium-install.sha256"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- 1. system packages -----------------------------------------------------------------------
missing=()
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
compgen -G '/usr/lib/jvm/*17*/bin/java' >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "system packages present (postgresql, redis-server, java 17, maven)"
fi

# --- 2. Python environment --------------------------------------------------------------------
pick_python() {
  local candidate
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null \
      && "$candidate" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 13)))'
    then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  PY="$(pick_python)" || { log "need Python 3.11 or 3.12 on PATH"; exit 1; }
  log "creating .venv with $("$PY" --version)"
  if ! "$PY" -m venv "$VENV"; then
    # Debian's interpreter ships venv support separately.
    rm -rf "$VENV"
    as_root apt-get install -y -q --no-install-recommends "python3-venv"
    "$PY" -m venv "$VENV"
  fi
fi

want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" != "$have" ] || [ ! -x "$VENV/bin/omium" ] || [ ! -x "$VENV/bin/moto_server" ]; then
  log "installing Omium into .venv (pip install -e '.[dev]')"
  "$VENV/bin/python" -m pip install -q --no-input --disable-pip-version-check -e '.[dev]'
  echo "$want" >"$STAMP"
else
  log ".venv up to date with pyproject.toml"
fi

# --- 3. stack binaries ------------------------------------------------------------------------
# Done here rather than in the first `omium up` so that up measures start-up, not downloads.
log "resolving Kafka and OpenSearch (Maven, into .omium/dist; skipped when present)"
"$VENV/bin/python" -m infra.localstack fetch full
log "done"
