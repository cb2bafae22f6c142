#!/usr/bin/env bash
# Packing benchmark, measured side by side in one run (the machine is shared and noisy: read
# the medians and the ratios, not single timings).
#
#   scripts/bench.sh [RUNS] [BINARY]
#
# For an already-built static binary (default: examples/hello-http built here), each round
# times, one after the other:
#   binpack  binpack bin BINARY -o out.tar           (inspect, tar, gzip, hash, archive)
#   docker   docker build --no-cache, FROM scratch, COPY of the same files
#   gzip     gzip -6 of the binary alone              (the floor: every packer compresses it once)
# and prints medians, the ratios binpack/docker and binpack/gzip, and the image sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
scripts/install-deps.sh all
. scripts/env.sh
cargo build --release --quiet
binpack=$PWD/target/release/binpack

work=$(mktemp -d /tmp/binpack-bench.XXXXXX)
trap 'rm -rf "$work"; docker rmi -f binpack-bench/docker:latest >/dev/null 2>&1 || true' EXIT
bin=${2:-}
if [ -z "$bin" ]; then
  bin=$work/hello-http
  (cd examples/hello-http && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -buildid=" -o "$bin" .)
fi

# The same files binpack puts in the image, for docker build.
ctx=$work/ctx
mkdir -p "$ctx"
cp "$bin" "$ctx/app"
cp runtimes/ca-certificates.crt "$ctx/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$ctx/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$ctx/group"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY passwd group /etc/
COPY app /app/app
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532
ENTRYPOINT ["/app/app"]
DOCKERFILE

now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

: >"$work/binpack.ms"; : >"$work/docker.ms"; : >"$work/gzip.ms"
# Warm the page cache and the engine once, untimed.
"$binpack" -q bin "$bin" -o "$work/out.tar" >/dev/null
docker build -q -t binpack-bench/docker "$ctx" >/dev/null 2>&1
for i in $(seq 1 "$runs"); do
  t0=$(now); "$binpack" -q bin "$bin" -o "$work/out.tar" >/dev/null; t1=$(now)
  ms "$t0" "$t1" >>"$work/binpack.ms"
  docker rmi -f binpack-bench/docker >/dev/null 2>&1 || true
  t0=$(now); docker build -q --no-cache -t binpack-bench/docker "$ctx" >/dev/null 2>&1; t1=$(now)
  ms "$t0" "$t1" >>"$work/docker.ms"
  t0=$(now); gzip -6 -c "$bin" >"$work/bin.gz"; t1=$(now)
  ms "$t0" "$t1" >>"$work/gzip.ms"
  printf 'round %d: binpack %s ms, docker build %s ms, gzip -6 %s ms\n' "$i" \
    "$(tail -1 "$work/binpack.ms")" "$(tail -1 "$work/docker.ms")" "$(tail -1 "$work/gzip.ms")"
done

b=$(median <"$work/binpack.ms"); d=$(median <"$work/docker.ms"); g=$(median <"$work/gzip.ms")
summary=$("$binpack" -q bin "$bin" -o "$work/out.tar" --json)
comp=$(echo "$summary" | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"]["compressed"])')
uncomp=$(echo "$summary" | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"]["uncompressed"])')
binsize=$(stat -c %s "$bin"); casize=$(stat -c %s runtimes/ca-certificates.crt)
dsize=$(docker image inspect -f '{{.Size}}' binpack-bench/docker)
gzsize=$(stat -c %s "$work/bin.gz")

echo
echo "binary: $bin ($binsize bytes), $runs rounds, medians:"
printf '  binpack bin -> archive   %6s ms\n' "$b"
printf '  docker build (scratch)   %6s ms\n' "$d"
printf '  gzip -6 of the binary    %6s ms\n' "$g"
python3 - "$b" "$d" "$g" <<'PY'
import sys
b, d, g = map(float, sys.argv[1:])
print(f"  ratio binpack/docker build  {b/d:.2f}   (target <= 0.50)")
print(f"  ratio binpack/gzip floor    {b/g:.2f}   (target <= 1.50)")
PY
echo "sizes:"
printf '  binpack image  %9s compressed, %9s uncompressed\n' "$comp" "$uncomp"
printf '  docker image   %9s uncompressed (docker image inspect)\n' "$dsize"
printf '  gzip -6 binary %9s\n' "$gzsize"
printf '  binpack overhead over binary + CA bundle: %s bytes (target <= 16384)\n' "$((uncomp - binsize - casize))"
