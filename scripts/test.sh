#!/usr/bin/env bash
# Installs what the tests need (Go, docker.io, skopeo, umoci, podman, docker-registry, musl-gcc,
# node/npm, ...), starts a Docker engine if none runs, builds the toolchain images, and runs
# every check: formatting, clippy, unit and integration tests. The tests start and stop their own registries.
# Every test runs, the ones marked #[ignore = "needs ..."] (they need docker, podman, skopeo,
# go, ...) included, and a missing tool fails its test. docs/machine-setup.md says what this
# sets up and why.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh all
. scripts/env.sh
# The golang and node toolchain images, made from this machine's Go and Node (none can be
# pulled here), for the --toolchain docker|podman tests.
scripts/toolchain-images.sh docker podman
echo "test.sh: $(go version), docker $(docker version --format '{{.Server.Version}}'), $(skopeo --version), umoci $(umoci --version | awk '{print $NF}')"
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
# --include-ignored: also the tests that need tools (plain `cargo test` lists them as ignored);
# --nocapture: the tests print what they measured (e.g. cold and warm toolchain builds).
cargo test --all-targets -- --include-ignored --nocapture 2>&1
