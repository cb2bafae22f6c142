#!/usr/bin/env bash
# Builds the toolchain images the tests use, from this machine's own Go and Node (no image can
# be pulled here), and tags them like the real ones: golang:1.23-bookworm,
# node:20-bookworm-slim and python:3.11-slim-bookworm. Each holds the toolchain, its shared
# libraries with an ld.so.cache, busybox for sh/cp/chown, CA certificates and, for node, npm;
# for python, pip and the machine's package database (status and file lists, which scanners
# and binpack's closure read).
#   scripts/toolchain-images.sh docker podman    (the engines to import into; default docker)
# An image that is already there is kept (--force rebuilds).
set -euo pipefail

force=0
engines=()
for a in "$@"; do
  case "$a" in
    --force) force=1 ;;
    *) engines+=("$a") ;;
  esac
done
[ "${#engines[@]}" -gt 0 ] || engines=(docker)
log() { printf 'toolchain-images: %s\n' "$*" >&2; }

GO_IMAGE=golang:1.23-bookworm
NODE_IMAGE=node:20-bookworm-slim
PYTHON_IMAGE=python:3.11-slim-bookworm
PATH_ENV='PATH=/usr/local/bin:/usr/lib/go-1.23/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin'

work=$(mktemp -d /tmp/binpack-toolchain-images.XXXXXX)
trap 'rm -rf "$work"' EXIT
# podman here needs runc and no default ulimits (docs/machine-setup.md); never edit /etc for it.
if [ -z "${CONTAINERS_CONF:-}" ]; then
  printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' >"$work/containers.conf"
  export CONTAINERS_CONF=$work/containers.conf
fi

# The parts every toolchain image has: busybox as sh and the few tools binpack's steps use,
# root's passwd entry, /tmp, certificates.
base_rootfs() {
  local root=$1
  mkdir -p "$root"/{bin,etc/ssl/certs,root,tmp,usr/bin,usr/local/bin}
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for tool in sh cat chown cp env id ls mkdir mv rm; do ln -s busybox "$root/bin/$tool"; done
  ln -s ../../bin/busybox "$root/usr/bin/env"
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
}

# Copies host paths into the root at the same place (cp --parents trips over existing parents).
# With -h, symlinks are followed.
copy_in() {
  local root=$1 deref=
  shift
  if [ "$1" = -h ]; then deref=h; shift; fi
  tar -C / -c${deref}f - "${@#/}" | tar -C "$root" -xf -
}

# An ELF's shared libraries and the loader configuration, at the paths the host loader uses.
add_libraries() {
  local root=$1 elf=$2
  ldd "$elf" | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}' | while read -r lib; do
    copy_in "$root" -h "$lib"
  done
  copy_in "$root" /etc/ld.so.conf /etc/ld.so.conf.d
  ldconfig -r "$root"
}

build_go() {
  local root=$work/go
  base_rootfs "$root"
  # Debian's GOROOT links into /usr/share; the go command is static.
  copy_in "$root" /usr/lib/go-1.23 /usr/share/go-1.23
  tar -C "$root" -cf "$work/go.tar" .
}

build_node() {
  local root=$work/node
  base_rootfs "$root"
  cp /usr/bin/node "$root/usr/local/bin/node"
  add_libraries "$root" /usr/bin/node
  copy_in "$root" /usr/lib/node_modules/npm
  ln -s /usr/lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  # The machine's npm configuration (its CA file, for a TLS-inspecting proxy), where npm's
  # global config is read from a node in /usr/local.
  if [ -f /etc/npmrc ]; then mkdir -p "$root/usr/local/etc" && cp /etc/npmrc "$root/usr/local/etc/npmrc"; fi
  tar -C "$root" -cf "$work/node.tar" .
}

# Debian's python3.11 as the machine has it: the interpreter, its whole standard library with
# lib-dynload and the libraries those load, pip (python3-pip, which binpack installs uv with),
# time zones, and dpkg's status and file lists so that the image's packages are known.
build_python() {
  local root=$work/python arch lib
  base_rootfs "$root"
  # Debian's merged /usr, so that every library sits where the host's package put it.
  mkdir -p "$root/usr/lib" "$root/usr/lib64"
  ln -s usr/lib "$root/lib"
  ln -s usr/lib64 "$root/lib64"
  copy_in "$root" /usr/bin/python3.11 /usr/lib/python3.11 /usr/lib/python3/dist-packages \
    /etc/python3.11 /usr/share/zoneinfo /var/lib/dpkg/status /etc/os-release /usr/lib/os-release
  ln -s python3.11 "$root/usr/bin/python3"
  mkdir -p "$root/var/lib/dpkg/info"
  cp /var/lib/dpkg/info/*.list "$root/var/lib/dpkg/info/"
  # The libraries of the interpreter and its extension modules (each link and the file it
  # names), and, as Debian's base system has them, all of libc6 and libgcc_s (uv needs them).
  arch=$(dpkg --print-architecture)
  {
    for elf in /usr/bin/python3.11 /usr/lib/python3.11/lib-dynload/*.so; do
      ldd "$elf" | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}'
    done
    dpkg -L "libc6:$arch" "libgcc-s1:$arch" | grep -E '^/(usr/)?lib.*/lib[^/]*\.so[.0-9]*$'
  } | sort -u | while read -r lib; do
    copy_in "$root" "$lib" "$(readlink -f "$lib")"
  done
  copy_in "$root" /etc/ld.so.conf /etc/ld.so.conf.d
  ldconfig -r "$root"
  tar -C "$root" -cf "$work/python.tar" .
}

have_image() { "$1" image inspect "$2" >/dev/null 2>&1; }

import() {
  local engine=$1 tar=$2 image=$3
  if [ "$force" -eq 0 ] && have_image "$engine" "docker.io/library/$image"; then
    log "$engine already has $image"
    return
  fi
  [ -f "$tar.tar" ] || "build_${tar##*/}"
  log "$engine import $image"
  # podman reports every step: show its output only when the import fails.
  if ! "$engine" import --change "ENV $PATH_ENV" --change 'CMD ["sh"]' "$tar.tar" \
    "docker.io/library/$image" >"$work/import.log" 2>&1; then
    cat "$work/import.log" >&2
    exit 1
  fi
}

for engine in "${engines[@]}"; do
  import "$engine" "$work/go" "$GO_IMAGE"
  import "$engine" "$work/node" "$NODE_IMAGE"
  import "$engine" "$work/python" "$PYTHON_IMAGE"
done
