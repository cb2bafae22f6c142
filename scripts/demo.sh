#!/usr/bin/env bash
# The main job on a fresh Debian machine: install Go if missing, install binpack into
# ~/.cargo/bin (`cargo uninstall binpack` undoes it), pack the example HTTP server with the host
# toolchain into dist/hello-http.tar, and end with a command that works on this machine to
# look at the image (no engine may be running: then podman, skopeo or tar).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh go
. scripts/env.sh
cargo install --quiet --locked --path .
bin="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin/binpack"
"$bin" go examples/hello-http "$@"

archive=dist/hello-http.tar
image=hello-http:latest
answers() { timeout 20 "$@" >/dev/null 2>&1; }
echo
echo "binpack is installed at $bin (cargo uninstall binpack removes it)."
[ "$(command -v binpack)" = "$bin" ] || echo "  ${bin%/*} is not on PATH: export PATH=\"${bin%/*}:\$PATH\""
echo "Go 1.23 is in /usr/lib/go-1.23/bin: \`. scripts/env.sh\` puts it on PATH for binpack go."
echo "What you can do with $archive here:"
last="tar -tvf $archive"
if command -v skopeo >/dev/null; then
  echo "  inspect it:         skopeo inspect oci-archive:$archive"
  last="skopeo inspect oci-archive:$archive"
else
  echo "  inspect it:         apt-get install skopeo, then skopeo inspect oci-archive:$archive"
fi
if command -v podman >/dev/null && answers podman info; then
  echo "  run it with podman: podman load -i $archive && podman run --rm --network host $image"
  echo "                      (here podman wants CONTAINERS_CONF: docs/machine-setup.md)"
  last="podman load -i $archive"
else
  echo "  podman:             apt-get install podman (see docs/machine-setup.md for its configuration)"
fi
if command -v docker >/dev/null && answers docker info; then
  echo "  run it with docker: docker load -i $archive && docker run --rm --network host $image"
  last="docker load -i $archive"
elif command -v dockerd >/dev/null; then
  echo "  docker's engine does not answer: start it (dockerd --iptables=false --bridge=none &), then docker load -i $archive"
else
  echo "  docker:             apt-get install docker.io, start dockerd (docs/machine-setup.md), then docker load -i $archive"
fi
echo "Checking with one that works here: $last"
$last
