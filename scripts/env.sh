# Sourced by the scripts: the Go toolchain from bookworm-backports on PATH, and Go's caches
# somewhere sensible when the environment has no HOME (as under some CI runners).
export PATH="/usr/lib/go-1.23/bin:$PATH"
if [ -z "${HOME:-}" ]; then
  export GOCACHE="${GOCACHE:-/tmp/binpack-go/cache}" GOPATH="${GOPATH:-/tmp/binpack-go/path}"
fi
