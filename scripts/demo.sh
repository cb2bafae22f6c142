#!/usr/bin/env bash
# The main job on a fresh Debian machine: install Go if missing, build binpack, and pack the
# example HTTP server with the host toolchain into dist/hello-http.tar.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh go
. scripts/env.sh
cargo build --release --quiet
./target/release/binpack go examples/hello-http "$@"
echo
echo "run it:  docker load -i dist/hello-http.tar && docker run --rm --network host hello-http:latest"
