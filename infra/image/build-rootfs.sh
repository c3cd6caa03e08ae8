#!/usr/bin/env bash
# Build Omium's container image without a container engine: the same image as the Containerfile at
# the repository root, made from Debian packages and PyPI only.
#
#   infra/image/build-rootfs.sh [--no-oci] [--force] [--keep N]
#
# Two cached stages under .omium/image/ (OMIUM_IMAGE_DIR), like the Containerfile's layers:
#   base-<key>/   Debian bookworm (mmdebstrap, minbase) with python3, and a venv at /opt/omium
#                 holding omium[server] and all of its dependencies; key: pyproject.toml and this
#                 script. Rebuilt only when the dependencies change.
#   <key>/        the base plus Omium's wheel built from the checkout's sources, byte-compiled, the
#                 non-root user (uid/gid 10001); key: the base's key and the wheel's sources.
#                 Holds rootfs/ (the root filesystem), oci/ (an OCI image layout, tag = Omium's
#                 version, two layers: base and Omium; made with umoci), image.env and image.conf.
#   debs/, wheelhouse/  the .deb files and wheels of the last base build, reused by the next one.
# A rerun with unchanged inputs does nothing. The last line on stdout is the built <key>/ folder.
#
# Needs root (mmdebstrap's root mode, chroot); installs mmdebstrap and umoci with apt when missing.
# The apt sources are the host's Debian mirror lines (main and security) from /etc/apt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SCRIPT="$ROOT/infra/image/build-rootfs.sh"
OUT="${OMIUM_IMAGE_DIR:-$ROOT/.omium/image}"
SUITE=bookworm
# The image's runtime configuration; the Containerfile sets the same.
UID_GID=10001
VENV=/opt/omium
DATA_DIR=/var/lib/omium
# libatomic1: regopy's librego_shared.so links it; the build fails if any library is missing.
PACKAGES=python3,python3-venv,ca-certificates,netbase,libatomic1
IMAGE_ENV=(
  "PATH=$VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  "LANG=C.UTF-8"
  "PYTHONDONTWRITEBYTECODE=1"
  "PYTHONUNBUFFERED=1"
  "HOME=$DATA_DIR"
  "OMIUM_STACK__DATA_DIR=$DATA_DIR"
  "OMIUM_GATEWAY__HOST=0.0.0.0"
)

oci=1
force=0
keep=2
while [ $# -gt 0 ]; do
  case "$1" in
    --no-oci) oci=0 ;;
    --force) force=1 ;;
    --keep) keep="$2"; shift ;;
    -h|--help) sed -n '2,20p' "$SCRIPT"; exit 0 ;;
    *) echo "build-rootfs: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[image] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap root mode, chroot)"

# --- tools ----------------------------------------------------------------------------------------
missing=()
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
[ "$oci" -eq 0 ] || command -v umoci >/dev/null || missing+=(umoci)
command -v flock >/dev/null || missing+=(util-linux)
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# A host Python builds Omium's own (pure Python) wheel; the rootfs's pip installs everything.
pick_python() {
  local candidate
  for candidate in "${OMIUM_IMAGE_PYTHON:-}" "$ROOT/.venv/bin/python" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null \
      && "$candidate" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 13))' 2>/dev/null \
      && "$candidate" -m pip --version >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}
PY="$(pick_python)" || die "need a Python 3.11 or 3.12 with pip (the project's .venv, or python3.11)"

# --- apt sources: the host's Debian mirrors (main and security) -----------------------------------
debian_sources() {
  local files=() f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ "${#files[@]}" -gt 0 ] || return 0
  # One-line ("deb URI SUITE COMPONENTS") and deb822 (Types/URIs/Suites) entries; keep the Debian
  # archive and its security archive, print "deb URI SUITE main" for each bookworm suite.
  awk -v want="$SUITE" '
    function emit(types, uris, suites,   t, u, s, nt, nu, ns, i, j, k) {
      nt = split(types, t, /[ \t]+/); nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
      for (i = 1; i <= nt; i++) if (t[i] == "deb")
        for (j = 1; j <= nu; j++) if (u[j] ~ /\/debian(-security)?\/?$/)
          for (k = 1; k <= ns; k++) if (s[k] ~ ("^" want "(-updates|-security)?$"))
            print "deb " u[j] " " s[k] " main"
    }
    FNR == 1 { if (types != "") emit(types, uris, suites); types = uris = suites = "" }
    /^[ \t]*#/ { next }
    FILENAME !~ /\.sources$/ {
      line = $0; sub(/\[[^]]*\]/, "", line); n = split(line, f, /[ \t]+/)
      if (f[1] == "deb" && n >= 4) emit("deb", f[2], f[3])
      next
    }
    /^[ \t]*$/ { if (types != "") emit(types, uris, suites); types = uris = suites = ""; next }
    tolower($1) == "types:" { $1 = ""; types = $0 }
    tolower($1) == "uris:" { $1 = ""; uris = $0 }
    tolower($1) == "suites:" { $1 = ""; suites = $0 }
    END { if (types != "") emit(types, uris, suites) }
  ' "${files[@]}" | sed 's/  */ /g' | sort -u
}
mapfile -t MIRRORS < <(debian_sources)
if [ "${#MIRRORS[@]}" -eq 0 ]; then
  MIRRORS=("deb http://deb.debian.org/debian $SUITE $SUITE-updates main"
           "deb http://deb.debian.org/debian-security $SUITE-security main")
fi
grep -q -- '-security' <<<"${MIRRORS[*]}" \
  || MIRRORS+=("deb http://deb.debian.org/debian-security $SUITE-security main")

# --- cache keys -----------------------------------------------------------------------------------
version="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$ROOT/pyproject.toml" | head -n1)"
[ -n "$version" ] || die "no version in pyproject.toml"
base_key="$( { cat "$ROOT/pyproject.toml" "$SCRIPT"; printf '%s\n' "$oci" "$PACKAGES" "${MIRRORS[@]}"; } \
  | sha256sum | cut -c1-16)"
# The wheel's sources: what `pip wheel .` reads (the links into omium/ are followed).
sources_hash() {
  (cd "$ROOT" && find -L omium README.md pyproject.toml -type f \
      ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path 'omium/infra/image/*' -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}
key="$( { echo "$base_key"; sources_hash; } | sha256sum | cut -c1-16)"
BASE="$OUT/base-$base_key"
FINAL="$OUT/$key"

mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9

# A build killed mid-way (SIGKILL, a crash) can leave mmdebstrap's mounts (/proc, /sys, /dev
# nodes) in its work folder: unmount them before removing anything, and never cross into them.
remove_tree() {
  local dir="$1" point
  [ -e "$dir" ] || return 0
  dir="$(realpath "$dir")"
  awk -v dir="$dir" '$5 == dir || index($5, dir "/") == 1 {print $5}' /proc/self/mountinfo \
    | sort -r | while IFS= read -r point; do umount -l "$point" || true; done
  rm -rf --one-file-system "$dir"
}
for stale in "$OUT"/.work.*; do remove_tree "$stale"; done

if [ "$force" -eq 0 ] && [ -f "$FINAL/.done" ]; then
  log "up to date: $FINAL"
  touch "$FINAL"
  echo "$FINAL"
  exit 0
fi

started=$SECONDS
work="$(mktemp -d "$OUT/.work.XXXXXX")"
cleanup() { remove_tree "$work"; }
trap cleanup EXIT

# --- Omium's wheel and the wheelhouse of its dependencies (host pip) -------------------------------
log "building Omium's wheel ($version) with $("$PY" --version)"
mkdir -p "$work/src" "$work/wheels"
tar -C "$ROOT" --exclude=__pycache__ --exclude='*.pyc' -cf - \
    pyproject.toml README.md omium commands streams projections gateway infra schemas \
  | tar -C "$work/src" -xf -
"$PY" -m pip wheel -q --no-input --disable-pip-version-check --no-deps -w "$work/wheels" \
  "$work/src" >&2
wheel="$(find "$work/wheels" -name 'omium-*.whl' -print -quit)"
[ -n "$wheel" ] || die "pip wheel made no omium wheel"
wheel_name="$(basename "$wheel")"

dpkg_slim=(
  --dpkgopt=force-unsafe-io
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
)

# --- stage 1: the base (Debian + Python + omium[server]'s dependencies) ----------------------------
# The rootfs's own pip resolves the dependencies: environment markers see its exact interpreter
# (Debian's 3.11.2 needs async-timeout, a 3.11.7 would not). Wheels are kept in $OUT/wheelhouse; a
# rebuild resolves offline from there first and reaches the index only when that fails.
if [ "$force" -eq 1 ] || [ ! -f "$BASE/.done" ]; then
  rm -rf "$BASE"
  mkdir -p "$work/base" "$OUT/wheelhouse"
  if [ "$oci" -eq 1 ]; then
    umoci init --layout "$work/base/oci"
    umoci new --image "$work/base/oci:base"
    umoci unpack --image "$work/base/oci:base" "$work/base/bundle" >&2
    rootfs="$work/base/bundle/rootfs"
  else
    rootfs="$work/base/rootfs"
  fi
  # Run by mmdebstrap as a hook, with /proc, /sys and /dev mounted in the rootfs ($1).
  pass_env=()
  for name in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST PIP_DEFAULT_TIMEOUT \
      http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -z "${!name:-}" ] || pass_env+=("$name=${!name}")
  done
  cat >"$work/deps.sh" <<HOOK
set -euo pipefail
r="\$1"
in_root() {
  chroot "\$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_NO_CACHE_DIR=1 PIP_CERT=/tmp/host-ca.crt \\
    ${pass_env[*]@Q} "\$@"
}
cp /etc/ssl/certs/ca-certificates.crt "\$r/tmp/host-ca.crt"
mkdir "\$r/tmp/cache" "\$r/tmp/wheels"
cp -al '$OUT/wheelhouse/.' "\$r/tmp/cache/"
cp '$wheel' "\$r/tmp/"
in_root python3 -m venv $VENV
want='omium[server] @ file:///tmp/$wheel_name'
if ! in_root $VENV/bin/pip wheel -q --no-index -f /tmp/cache -w /tmp/wheels "\$want" 2>/dev/null; then
  echo "[image] resolving omium[server] against the package index" >&2
  in_root $VENV/bin/pip wheel -q -f /tmp/cache -w /tmp/wheels "\$want"
fi
in_root $VENV/bin/pip install -q --no-index -f /tmp/wheels "\$want"
rm -rf '$OUT/wheelhouse.new'
mkdir '$OUT/wheelhouse.new'
cp -al "\$r/tmp/wheels/." '$OUT/wheelhouse.new/'
rm -f '$OUT/wheelhouse.new/$wheel_name'
rm -rf '$OUT/wheelhouse'
mv '$OUT/wheelhouse.new' '$OUT/wheelhouse'
# Only what this hook made: mmdebstrap keeps its own apt configuration in /tmp until it is done.
rm -rf "\$r/tmp/host-ca.crt" "\$r/tmp/cache" "\$r/tmp/wheels" "\$r/tmp/$wheel_name" "\$r/root/.cache" \\
  "\$r/etc/resolv.conf" "\$r/etc/hostname"
HOOK
  log "base $base_key: mmdebstrap $SUITE ($PACKAGES) from ${MIRRORS[*]}"
  # The .deb files are kept in $OUT/debs (apt checks their hashes against the fresh lists).
  mkdir -p "$OUT/debs"
  keep_debs="rm -rf '$OUT/debs.new' && mkdir '$OUT/debs.new' \
    && find \"\$1/var/cache/apt/archives\" -maxdepth 1 -name '*.deb' -exec cp -al -t '$OUT/debs.new/' {} + \
    && rm -rf '$OUT/debs' && mv '$OUT/debs.new' '$OUT/debs'"
  mmdebstrap --variant=minbase --include="$PACKAGES" --aptopt='APT::Install-Recommends "false"' \
    "${dpkg_slim[@]}" --skip=essential/unlink \
    --setup-hook="mkdir -p \"\$1/var/cache/apt/archives/partial\" \
      && cp -al '$OUT/debs/.' \"\$1/var/cache/apt/archives/\"" \
    --customize-hook="$keep_debs" \
    --customize-hook="bash '$work/deps.sh' \"\$1\"" \
    "$SUITE" "$rootfs" "${MIRRORS[@]}" >&2
  if [ "$oci" -eq 1 ]; then
    log "base $base_key: packing the base layer (umoci)"
    umoci repack --image "$work/base/oci:base" "$work/base/bundle" >&2
    rm -rf "$work/base/bundle"
  fi
  touch "$work/base/.done"
  mv "$work/base" "$BASE"
else
  log "base $base_key: cached"
fi

# --- stage 2: Omium's wheel on the base, the user, the image config --------------------------------
log "image $key: installing $wheel_name"
mkdir -p "$work/final"
if [ "$oci" -eq 1 ]; then
  mkdir -p "$work/final/oci"
  cp -a "$BASE/oci/oci-layout" "$BASE/oci/index.json" "$work/final/oci/"
  cp -al "$BASE/oci/blobs" "$work/final/oci/blobs"
  umoci unpack --image "$work/final/oci:base" "$work/final/bundle" >&2
  rootfs="$work/final/bundle/rootfs"
else
  cp -a "$BASE/rootfs" "$work/final/rootfs"
  rootfs="$work/final/rootfs"
fi
cp "$wheel" "$rootfs/tmp/"
chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root \
  "$VENV/bin/pip" install -q --no-index --no-cache-dir --disable-pip-version-check --no-deps \
  --force-reinstall "/tmp/$wheel_name" >&2
rm -f "$rootfs/tmp/$wheel_name"
# Bytecode now: the image runs with a read-only root and PYTHONDONTWRITEBYTECODE=1.
chroot "$rootfs" /usr/bin/env -i PATH=/usr/bin:/bin "$VENV/bin/python" -m compileall -q -j 0 \
  "$VENV/lib" >&2 || die "compileall failed"
# Every shared library the wheels bring must resolve inside the image.
unresolved="$(find "$rootfs$VENV" -name '*.so*' -type f -printf "$VENV/%P\n" \
  | chroot "$rootfs" /bin/sh -c \
    'while read -r f; do ldd "$f" 2>/dev/null | grep "not found" | sed "s|^|$f:|"; done')"
[ -z "$unresolved" ] || die "libraries missing in the image (add their Debian packages):
$unresolved"
if ! chroot "$rootfs" getent passwd "$UID_GID" >/dev/null; then
  chroot "$rootfs" groupadd --gid "$UID_GID" omium
  chroot "$rootfs" useradd --uid "$UID_GID" --gid "$UID_GID" --no-create-home \
    --home-dir "$DATA_DIR" --shell /usr/sbin/nologin omium
fi
install -d -m 0750 -o "$UID_GID" -g "$UID_GID" "$rootfs$DATA_DIR"
rm -rf "$rootfs/root/.cache" "$rootfs/var/cache/debconf/"*-old "$rootfs/var/log/"*.log

printf '%s\n' "${IMAGE_ENV[@]}" >"$work/final/image.env"
{
  echo "VERSION=$version"
  echo "USER=$UID_GID:$UID_GID"
  echo "ENTRYPOINT=omium"
  echo "CMD=gateway"
  echo "WORKDIR=$DATA_DIR"
} >"$work/final/image.conf"

if [ "$oci" -eq 1 ]; then
  log "image $key: packing Omium's layer and the config (umoci)"
  umoci repack --image "$work/final/oci:$version" "$work/final/bundle" >&2
  env_args=()
  for e in "${IMAGE_ENV[@]}"; do env_args+=(--config.env "$e"); done
  umoci config --image "$work/final/oci:$version" \
    --config.user "$UID_GID:$UID_GID" \
    --config.entrypoint omium --config.cmd gateway \
    --config.workingdir "$DATA_DIR" \
    --config.exposedports 8000/tcp \
    --config.stopsignal SIGTERM \
    "${env_args[@]}" \
    --config.label "org.opencontainers.image.title=omium" \
    --config.label "org.opencontainers.image.description=Control plane for durable, checkable and recoverable multi-agent LLM workflows" \
    --config.label "org.opencontainers.image.version=$version" \
    --config.label "org.opencontainers.image.licenses=Apache-2.0" \
    --config.label "org.opencontainers.image.base.name=debian:$SUITE" \
    --history.created_by "infra/image/build-rootfs.sh" >&2
  umoci rm --image "$work/final/oci:base"
  umoci gc --layout "$work/final/oci"
  mv "$work/final/bundle/rootfs" "$work/final/rootfs"
  rm -rf "$work/final/bundle"
fi

touch "$work/final/.done"
rm -rf "$FINAL"
mv "$work/final" "$FINAL"

# Keep the newest few builds of each stage.
prune() {
  local regex="$1" n=0 dir
  while IFS= read -r dir; do
    n=$((n + 1))
    [ "$n" -le "$keep" ] || rm -rf "$dir"
  done < <(find "$OUT" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended \
    -regex "$OUT/$regex" -printf '%T@ %p\n' \
    | sort -rn | cut -d' ' -f2-)
}
touch "$BASE"
prune 'base-[0-9a-f]{16}'
prune '[0-9a-f]{16}'
log "built $FINAL in $((SECONDS - started))s"
echo "$FINAL"
