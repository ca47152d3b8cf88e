#!/usr/bin/env bash
# End-to-end benchmark of one machine, server and load generator together:
#   cold and warm start, idle RSS, batch ingest (100-event JSON batches), the bare JetStream
#   baselines of the same messages in the same run (publish only, and publish read by two
#   explicit-ack consumers), and single events at 2,000 req/s; with the warehouse sink and the
#   reaction engine reading throughout: how long after the load its lag is back to zero,
#   whether every accepted event is in the lake, and bytes per event on disk.
# Usage: scripts/bench.sh [duration]   (default 30s per load run; BIN=path to the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/causality}
DUR=${1:-30s}
PORT=${PORT:-18080}
PASSWORD=bench-password-1
FLUSH=${FLUSH:-10s} # --flush-interval of the server under test
work=$(mktemp -d /tmp/causality-bench.XXXXXX)
chmod 755 "$work" # the embedded Postgres runs unprivileged when we are root
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

ms() { date +%s%3N; }
serve() {
  "$BIN" serve --data-dir "$work/data" --http-addr "127.0.0.1:$PORT" --admin-password "$PASSWORD" \
    --flush-interval "$FLUSH" --log-level warn >>"$work/serve.log" 2>&1 &
  pid=$!
  local t0; t0=$(ms)
  until curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log"; exit 1; }
    sleep 0.05
  done
  started_ms=$(( $(ms) - t0 ))
}
stop() { kill -TERM "$pid"; wait "$pid" || true; pid=; }
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$pid/status"; }
# accepted events/s from a report's "events ... accepted (12345/s)" line
rate() { grep -m1 '^events' "$1" | grep -o '([0-9.]*/s)' | tr -d '(/s)'; }
metric() { curl -fsS "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '!done && ($1 == m || index($1, m "{") == 1) { print $2; done = 1 }'; }
# wait_lake: after a load, time until the warehouse has written everything, then what the lake holds
wait_lake() {
  local t0; t0=$(ms)
  until [ "$(metric causality_warehouse_consumer_lag)" = "0" ] && [ "$(metric causality_warehouse_buffered_events)" = "0" ]; do
    sleep 0.2
  done
  echo "warehouse lag back to 0 $(( $(ms) - t0 )) ms after the load stopped (flush interval $FLUSH)"
  echo "lake: $(go run ./tools/lakestat "$work/data/warehouse")"
}

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $("$BIN" version)"
serve; cold=$started_ms; stop
serve; warm=$started_ms
echo "cold start ${cold} ms, warm start ${warm} ms (launch to /readyz 200)"
sleep 10
echo "idle RSS $(rss_mb) MiB"

key=$(curl -fsS -u "admin:$PASSWORD" -X POST "http://127.0.0.1:$PORT/api/v1/admin/keys" \
  -d '{"app_id":"bench","name":"bench"}' | grep -o '"key":"[^"]*"' | cut -d'"' -f4)
common=(--url "http://127.0.0.1:$PORT" --key "$key" --app bench --duration "$DUR")

echo; echo "== batch ingest: 100-event JSON batches over HTTP"
"$BIN" bench "${common[@]}" --mode batch --batch-size 100 --concurrency 8 --rss-pid "$pid" | tee "$work/batch.txt"
echo "RSS after batch load $(rss_mb) MiB"
wait_lake

# Each load runs on a freshly started server (same data dir), so that one does not inherit
# the other's heap.
stop; serve
echo; echo "== single events at 2,000 req/s"
"$BIN" bench "${common[@]}" --mode single --rate 2000 --concurrency 32 --rss-pid "$pid" | tee "$work/single.txt"
wait_lake
stop

echo; echo "== bare JetStream baseline: the same messages, async publish with Nats-Msg-Id"
"$BIN" bench --target jetstream --app bench --batch-size 100 --concurrency 8 --duration "$DUR" \
  --store-dir "$work/js" --rss-pid self | tee "$work/js.txt"

echo; echo "== bare JetStream pipeline: the same publish, read and acked by 2 explicit-ack consumers"
echo "   (what the warehouse and reaction consumers cost JetStream, with no work of their own)"
"$BIN" bench --target jetstream --app bench --batch-size 100 --concurrency 8 --duration "$DUR" \
  --store-dir "$work/js2" --readers 2 --rss-pid self | tee "$work/pipe.txt"

http=$(rate "$work/batch.txt")
js=$(rate "$work/js.txt")
pipe=$(grep -m1 'readers:' "$work/pipe.txt" | grep -o 'read [0-9]* events/s' | grep -o '[0-9]*')
echo; echo "== summary"
awk -v h="$http" -v j="$js" -v p="$pipe" 'BEGIN {
  printf "end to end (HTTP batch ingest, warehouse and reaction consumers) %.0f events/s\n", h
  printf "bare JetStream publish %.0f events/s: ratio %.2f\n", j, h/j
  printf "bare JetStream pipeline (publish + 2 consumers) %.0f events/s: ratio %.2f\n", p, h/p
}'
