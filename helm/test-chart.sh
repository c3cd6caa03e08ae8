#!/usr/bin/env bash
# Offline checks of the Helm chart helm/omium: no cluster, no network after the first build.
#
#   bash helm/test-chart.sh
#
# 1. Builds helm (v4, from the Go module proxy) and the manifest validator (helm/validate) once,
#    into .omium/tools/bin (OMIUM_TOOLS_DIR overrides); later runs reuse them.
# 2. `helm lint --strict` with the default values and with values-ha.yaml.
# 3. `helm template` with those and with helm/testdata/values/*.yaml, each piped into the
#    validator (strict decoding with the client-go scheme, plus the chart's own rules), and a
#    client-side `helm install --dry-run` that renders NOTES.txt.
# 4. Negative checks: every helm/testdata/invalid-values/*.yaml must be refused by values.schema.json
#    (lint and template), and every helm/testdata/invalid-manifests/*.yaml by the validator.
#
# Exits 0 when every check passed; prints "<n> passed, <m> failed" last.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
CHART="$HERE/omium"
TOOLS="${OMIUM_TOOLS_DIR:-$ROOT/.omium/tools}"
BIN="$TOOLS/bin"
HELM_VERSION="v4.3.2"
HELM="$BIN/helm"
VALIDATOR="$BIN/omium-validate-manifests"
RELEASE="omium-ci"

mkdir -p "$BIN"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# Keep helm away from the user's helm config, cache and repositories.
export HELM_CACHE_HOME="$WORK/helm/cache" HELM_CONFIG_HOME="$WORK/helm/config"
export HELM_DATA_HOME="$WORK/helm/data"

log() { printf 'chart-test: %s\n' "$*" >&2; }

need_go() {
  command -v go >/dev/null 2>&1 || {
    log "go is not installed: it is needed once to build $1"
    exit 1
  }
}

# Builds run under a lock, so parallel runs (pytest and a shell) do not race on the binaries.
exec 9>"$TOOLS/.build.lock"
flock 9

if [ -x "$HELM" ] && [ "$("$HELM" version --template '{{.Version}}' 2>/dev/null)" = "$HELM_VERSION" ]; then
  log "helm $HELM_VERSION cached at $HELM"
else
  need_go helm
  log "building helm $HELM_VERSION from the Go module proxy (once; a few minutes)"
  started=$SECONDS
  GOBIN="$BIN" GOFLAGS=-mod=mod go install \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
  log "helm built in $((SECONDS - started))s"
fi

# The validator is rebuilt whenever its sources change.
stamp="$(cat "$HERE/validate/go.mod" "$HERE/validate/go.sum" "$HERE"/validate/*.go | sha256sum | cut -d' ' -f1)"
if [ -x "$VALIDATOR" ] && [ "$(cat "$VALIDATOR.stamp" 2>/dev/null)" = "$stamp" ]; then
  log "validator cached at $VALIDATOR"
else
  need_go "the manifest validator"
  log "building the manifest validator (helm/validate)"
  started=$SECONDS
  (cd "$HERE/validate" && GOFLAGS=-mod=readonly go build -trimpath -o "$VALIDATOR.tmp" .)
  mv "$VALIDATOR.tmp" "$VALIDATOR"
  echo "$stamp" >"$VALIDATOR.stamp"
  log "validator built in $((SECONDS - started))s"
fi
flock -u 9

passed=0
failed=0
pass() {
  passed=$((passed + 1))
  log "ok    $1"
}
fail() {
  failed=$((failed + 1))
  log "FAIL  $1"
  [ -s "$WORK/out" ] && sed 's/^/      | /' "$WORK/out" | tail -n 40 >&2
  return 0
}

# expect_ok NAME COMMAND...: the command must exit 0.
expect_ok() {
  local name="$1"
  shift
  if "$@" >"$WORK/out" 2>&1; then pass "$name"; else fail "$name"; fi
}

# expect_refused NAME PATTERN COMMAND...: the command must fail and say PATTERN (a grep -E regex).
expect_refused() {
  local name="$1" pattern="$2"
  shift 2
  if "$@" >"$WORK/out" 2>&1; then
    fail "$name (was accepted)"
  elif grep -Eq -- "$pattern" "$WORK/out"; then
    pass "$name"
  else
    fail "$name (failed, but without /$pattern/)"
  fi
}

render_and_validate() {
  "$HELM" template "$RELEASE" "$CHART" --namespace omium "$@" >"$WORK/rendered.yaml"
  "$VALIDATOR" <"$WORK/rendered.yaml"
}

started=$SECONDS
if command -v gofmt >/dev/null 2>&1; then
  expect_ok "gofmt (helm/validate)" bash -c '[ -z "$(gofmt -l "$1")" ]' _ "$HERE/validate"
fi
expect_ok "helm lint --strict (default values)" "$HELM" lint --strict "$CHART"
expect_ok "helm lint --strict (values-ha.yaml)" "$HELM" lint --strict "$CHART" -f "$CHART/values-ha.yaml"
expect_ok "helm template | validate (default values)" render_and_validate
expect_ok "helm template | validate (values-ha.yaml)" render_and_validate -f "$CHART/values-ha.yaml"
# NOTES.txt is rendered only by install/upgrade; a client-side dry run needs no cluster.
render_notes() {
  "$HELM" install "$RELEASE" "$CHART" --namespace omium --dry-run=client "$@" >"$WORK/install.txt"
  grep -q "^NOTES:" "$WORK/install.txt" && grep -q "Processes (one Deployment each" "$WORK/install.txt"
}
expect_ok "helm install --dry-run=client renders NOTES.txt (default values)" render_notes
expect_ok "helm install --dry-run=client renders NOTES.txt (values-ha.yaml)" \
  render_notes -f "$CHART/values-ha.yaml"
for values in "$HERE"/testdata/values/*.yaml; do
  expect_ok "helm template | validate (testdata/values/$(basename "$values"))" \
    render_and_validate -f "$values"
  expect_ok "helm lint --strict (testdata/values/$(basename "$values"))" \
    "$HELM" lint --strict "$CHART" -f "$values"
done

for values in "$HERE"/testdata/invalid-values/*.yaml; do
  name="$(basename "$values")"
  expect_refused "helm lint refuses testdata/invalid-values/$name" "schema" \
    "$HELM" lint --strict "$CHART" -f "$values"
  expect_refused "helm template refuses testdata/invalid-values/$name" "schema" \
    "$HELM" template "$RELEASE" "$CHART" -f "$values"
done

for manifest in "$HERE"/testdata/invalid-manifests/*.yaml; do
  name="$(basename "$manifest")"
  expect_refused "validator refuses testdata/invalid-manifests/$name" "^FAIL document" \
    "$VALIDATOR" <"$manifest"
done

log "checks took $((SECONDS - started))s"
echo "helm chart: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
