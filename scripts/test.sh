#!/usr/bin/env bash
# Installs what the tests need (Go, docker.io, skopeo, umoci, podman, docker-registry, musl-gcc,
# node/npm, ...), starts a Docker engine if none runs, builds the toolchain images, and runs
# every check: formatting, clippy, unit and integration tests, then the fuzz targets for a short
# fixed time each. The tests start and stop their own registries.
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
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
cargo clippy --all-targets --quiet -- -D warnings
# --include-ignored: also the tests that need tools (plain `cargo test` lists them as ignored);
# --nocapture: the tests print what they measured (e.g. cold and warm toolchain builds).
cargo test --all-targets --no-fail-fast -- --include-ignored --nocapture 2>&1
# The fuzz targets (fuzz/, README "Fuzzing"), each for a fixed time, with overflow checks on
# (-a) and no sanitizer (-s none: binpack has no unsafe code, and the runs go twice as far).
# A crash, a panic or an input slower than 10 s fails the run. New inputs go to a scratch
# corpus so the committed seeds stay as they are.
fuzz_seconds=${FUZZ_SECONDS:-30}
fuzz_scratch=$(mktemp -d)
trap 'rm -rf "$fuzz_scratch"' EXIT
for target in elf goinfo sea_inject reference challenge packages ld_so_conf registry_json config_toml; do
  mkdir "$fuzz_scratch/$target"
  # A target whose seeds are missing still runs (from an empty corpus), not fails.
  mkdir -p "$PWD/fuzz/corpus/$target"
  echo "test.sh: fuzzing $target for ${fuzz_seconds}s"
  cargo +nightly fuzz run -a -s none "$target" "$fuzz_scratch/$target" "$PWD/fuzz/corpus/$target" \
    -- -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | grep -v '^#[0-9]'
done
