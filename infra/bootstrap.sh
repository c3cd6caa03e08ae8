#!/usr/bin/env bash
# Prepare a machine to run Omium's local stack and tests. Idempotent: every step checks first and
# does nothing when already done, so `make test` can call it each time.
#
#   1. system packages: PostgreSQL, Redis, Java 17, Maven (apt, only those missing)
#   2. .venv with `pip install -e '.[dev]'` (skipped while pyproject.toml is unchanged)
#   3. the stack's binaries: Kafka jars and OpenSearch via Maven into .omium/dist
#   4. the web UI: `npm ci` and `npm run build` in ui/ (skipped while its inputs are unchanged)
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
# The web UI's end-to-end tests drive Debian's Chromium (Playwright cannot download browsers here).
[ -x /usr/bin/chromium ] || missing+=(chromium)
# Node.js builds the UI; the machine image has Node 20 (Vite needs >= 20.19), Debian's is older.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "system packages present (postgresql, redis-server, java 17, maven, chromium, node)"
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
"$VENV/bin/python" -m omium.infra.localstack fetch full

# --- 4. the web UI ----------------------------------------------------------------------------
# Built once here and served by the gateway from ui/dist (OMIUM_GATEWAY__UI_DIR to override).
UI="$ROOT/ui"
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number);
                process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  log "the web UI needs Node.js >= 20.19 (found $(node --version)); install it, then re-run"
  exit 1
fi
want="$(sha256sum "$UI/package-lock.json" | cut -d' ' -f1)"
if [ "$want" != "$(cat "$UI/node_modules/.omium-lock.sha256" 2>/dev/null || true)" ]; then
  log "installing the UI's packages (npm ci in ui/)"
  # Playwright's browsers are not used (tests drive /usr/bin/chromium) and not reachable.
  (cd "$UI" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$UI/node_modules/.omium-lock.sha256"
else
  log "ui/node_modules up to date with package-lock.json"
fi
want="$(cd "$UI" && find src public index.html package-lock.json vite.config.ts tsconfig*.json \
          -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
if [ "$want" != "$(cat "$UI/dist/.omium-build.sha256" 2>/dev/null || true)" ]; then
  log "building the UI (npm run build in ui/ -> ui/dist)"
  (cd "$UI" && npm run --silent build >/dev/null)
  echo "$want" >"$UI/dist/.omium-build.sha256"
else
  log "ui/dist up to date with its sources"
fi
log "done"
