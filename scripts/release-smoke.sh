#!/usr/bin/env bash
# The release acceptance check: the binary of a release archive, copied alone into an empty
# directory, runs `serve` with a fresh HOME and data dir and nothing on PATH but the base
# system, takes an API key and an event, stops on SIGTERM, and has written the event as
# Parquet under <data-dir>/warehouse/events/. Prints the binary's and archive's sizes, the
# cold start (launch to /readyz 200 on a fresh data dir) and how long the stop took.
#
# Usage: scripts/release-smoke.sh [dist/causality_<version>_linux_<arch>.tar.gz]
#   (default: the archive for this machine's architecture in dist/, from `make snapshot`)
#
# As root it runs in a network namespace of its own with loopback only (unshare --net), so
# the run proves that nothing is fetched from the network, and with an empty /usr/local;
# otherwise it says so and runs with the machine's network. As root the embedded PostgreSQL runs as user causality or
# nobody (README, "Running as root"), so the temporary directory is made traversable.
set -euo pipefail

die() { echo "release-smoke: $*" >&2; exit 1; }
ms() { date +%s%3N; }

if [ "${RELEASE_SMOKE_INNER:-}" != 1 ]; then
  cd "$(dirname "$0")/.."
  archive=${1:-}
  if [ -z "$archive" ]; then
    case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) die "no release for $(uname -m)" ;; esac
    archive=$(ls dist/causality_*_linux_"$arch".tar.gz 2>/dev/null | head -n1) || true
    [ -n "$archive" ] || die "no dist/causality_*_linux_$arch.tar.gz: run make snapshot first"
  fi
  [ -f "$archive" ] || die "$archive: no such file"
  archive=$(cd "$(dirname "$archive")" && pwd)/$(basename "$archive")
  sums=$(dirname "$archive")/checksums.txt
  if [ -f "$sums" ]; then
    (cd "$(dirname "$archive")" && grep " $(basename "$archive")\$" checksums.txt | sha256sum --check --quiet) ||
      die "$archive does not match checksums.txt"
    echo "checksum OK ($(basename "$sums"))"
  fi
  if [ "$(id -u)" = 0 ] && unshare --net --mount true 2>/dev/null; then
    echo "network: a namespace of its own, loopback only; /usr/local hidden"
    exec unshare --net --mount --propagation private env RELEASE_SMOKE_INNER=1 RELEASE_SMOKE_NETNS=1 bash "$0" "$archive"
  fi
  echo "network: the machine's (not root, or unshare --net refused): the run uses loopback only, but nothing enforces it"
  exec env RELEASE_SMOKE_INNER=1 bash "$0" "$archive"
fi

archive=$1
if [ "${RELEASE_SMOKE_NETNS:-}" = 1 ]; then
  ip link set lo up
  mount -t tmpfs tmpfs /usr/local # whatever was installed there by hand (Go, a PostgreSQL) is gone
  if curl -fsS -m 3 -o /dev/null https://example.com/ 2>/dev/null; then die "the network namespace reaches the internet"; fi
  port=8080
else
  port=$((20000 + RANDOM % 20000))
fi

work=$(mktemp -d /tmp/causality-smoke.XXXXXX)
chmod 755 "$work"
pid=
cleanup() {
  local rc=$?
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  if [ $rc -ne 0 ]; then
    echo "--- serve output ($work/serve.log):" >&2
    tail -n 40 "$work/serve.log" >&2 2>/dev/null || true
    echo "release-smoke: FAILED (files kept in $work)" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# Unpack elsewhere; the run directory gets the binary alone.
mkdir "$work/unpack" "$work/run" "$work/home"
tar -xzf "$archive" -C "$work/unpack"
bin=$(find "$work/unpack" -type f -name causality | head -n1)
[ -n "$bin" ] || die "no causality binary in $archive"
cp "$bin" "$work/run/causality"
rm -rf "$work/unpack"
cd "$work/run"
# A clean environment: no Go, npm or PostgreSQL on PATH, a HOME with nothing in it.
clean_env=(env -i HOME="$work/home" PATH=/usr/bin:/bin LANG=C.UTF-8)
echo "archive: $(basename "$archive"), $(stat -c %s "$archive") bytes; binary: $(stat -c %s causality) bytes"
echo "version: $("${clean_env[@]}" ./causality version)"

t0=$(ms)
"${clean_env[@]}" ./causality serve --data-dir "$work/run/data" --http-addr "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
pid=$!
until curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; do
  kill -0 "$pid" 2>/dev/null || die "serve exited before it was ready"
  [ $(($(ms) - t0)) -lt 120000 ] || die "not ready after 120 s"
  sleep 0.05
done
cold=$(($(ms) - t0))
echo "cold start: ${cold} ms (launch to /readyz 200, fresh data dir)"

# The banner prints the generated password once it is ready; give the write a moment.
for _ in $(seq 50); do grep -q 'Admin password' "$work/serve.log" && break; sleep 0.1; done
password=$(sed -n 's/.*Admin password (generated, shown only this once): \([^ ]*\).*/\1/p' "$work/serve.log")
[ -n "$password" ] || die "no generated admin password in the output"

base=http://127.0.0.1:$port
created=$(curl -fsS -u "admin:$password" -X POST "$base/api/v1/admin/keys" -d '{"app_id":"smoke","name":"release-smoke"}')
key=$(printf '%s' "$created" | grep -o '"key":"[^"]*"' | cut -d'"' -f4)
[ -n "$key" ] || die "no key in $created"
answer=$(curl -fsS -H "X-API-Key: $key" -X POST "$base/v1/events/batch" \
  -d '{"events":[{"appId":"smoke","deviceId":"d-1","screenView":{"screenName":"Home"}}]}')
printf '%s' "$answer" | grep -q '"acceptedCount":1' || die "ingest answered $answer"
echo "ingest: $answer"

t0=$(ms)
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ $rc -eq 0 ] || die "serve exited $rc after SIGTERM"
echo "stop: $(($(ms) - t0)) ms after SIGTERM, exit 0"
if pgrep -f "$work/run/data" >/dev/null; then die "processes left behind: $(pgrep -af "$work/run/data")"; fi

files=$(find data/warehouse/events -name '*.parquet' -type f)
[ -n "$files" ] || die "no Parquet file under data/warehouse/events/"
for f in $files; do
  [ "$(head -c4 "$f")" = PAR1 ] && [ "$(tail -c4 "$f")" = PAR1 ] || die "$f is not a Parquet file"
  echo "parquet: ${f#data/} ($(stat -c %s "$f") bytes)"
done
echo "release-smoke: OK"
