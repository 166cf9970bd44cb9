#!/usr/bin/env bash
# bench-gateway.sh - herd's gateway vs HAProxy, nginx and Caddy on this machine,
# side by side in one run, then the gateway's own figures.
#
#   make bench-gateway        (or: bash scripts/bench-gateway.sh)
#
# What it does:
#   1. installs nginx-light, haproxy, caddy and wrk from Debian when missing (root only);
#   2. builds herd into a scratch dir;
#   3. side by side: runs ../shared/bench/lb-compare.sh, which starts 3 small Go
#      backends on 127.0.0.1 (GOMAXPROCS=1 each) and, ROUNDS times interleaved,
#      measures direct, nginx (2 workers, upstream keepalive), haproxy (nbthread 2),
#      caddy, a bare httputil.ReverseProxy and herd with
#      `wrk -t2 -c64 -d10s --latency` on 64-byte responses: medians of the rounds,
#      p50/p99, and each proxy's CPU time per request. herd is a dev agent
#      (`herd agent --dev --gateway-http 127.0.0.1:PORT`) with one round_robin
#      service over the 3 backends, applied with `herd apply`;
#   4. kill test: wrk through herd while one of three backends is killed mid-run
#      (GET only): reports wrk's errors and non-2xx answers;
#   5. idle connections: opens IDLE_CONNS keep-alive client connections through
#      the gateway (one request each, then idle) and reports herd's RSS;
#   6. routing table: `go test -bench BenchmarkApply10kRoutes ./internal/gateway`,
#      the time to apply a change to a table of 10,000 routes.
#
# Environment (defaults in brackets):
#   ROUNDS [2]  DURATION [10]  PROXY_GOMAXPROCS []  (passed to lb-compare.sh; see its README)
#   SKIP_COMPARE [0]  1 runs only steps 4-6
#   IDLE_CONNS [10000]  KILL_DURATION [10]  LB_HARNESS [$REPO_ROOT/../shared/bench]
#   RESULTS_DIR [/tmp/herd-bench/gateway-<timestamp>]  HERD_SRC [worktree]  (worktree or head)
set -u -o pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=scripts/bench-lib.sh
source "$HERE/bench-lib.sh"

LB_HARNESS=${LB_HARNESS:-$REPO_ROOT/../shared/bench}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10}
IDLE_CONNS=${IDLE_CONNS:-10000}
KILL_DURATION=${KILL_DURATION:-10}
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS_DIR=${RESULTS_DIR:-/tmp/herd-bench/gateway-$STAMP}
mkdir -p "$RESULTS_DIR"
LOG=$RESULTS_DIR/full.log
: >"$LOG"

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v haproxy >/dev/null || need+=(haproxy)
command -v caddy >/dev/null || need+=(caddy)
command -v wrk >/dev/null || need+=(wrk)
if ((${#need[@]})); then
  if [[ $(id -u) != 0 ]]; then
    echo "missing ${need[*]}: apt-get install -y ${need[*]} (as root)" >&2
    exit 1
  fi
  log "installing ${need[*]} from Debian ..."
  (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}") >>"$LOG" 2>&1 ||
    { log "apt-get install failed (see $LOG)"; exit 1; }
fi

WORK=$(mktemp -d /tmp/herd-bench-gw.XXXXXX)
HERD=$WORK/herd
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo interrupted >&2; exit 130' INT TERM

log "== herd gateway benchmark $STAMP =="
log "building herd (from ${HERD_SRC:-worktree}) ..."
build_herd "$HERD" >>"$LOG" 2>&1 || { log "herd build failed (see $LOG)"; exit 1; }
log "herd $HERD_REV; $(nginx -v 2>&1); $(haproxy -v | head -1); caddy $(caddy version | cut -d' ' -f1); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"

# herd_gateway_cmd: the PROXY_CMD for lb-compare.sh. It starts a dev agent
# whose gateway listens on $PROXY_PORT, applies a service over $BACKENDS,
# and stays in the foreground.
export HERD
HERD_CMD='
set -e
api=$((PROXY_PORT + 100))
"$HERD" agent --dev --insecure --http-port $api --gossip-port $((api + 1)) --rpc-port $((api + 2)) \
  --gateway-http 127.0.0.1:$PROXY_PORT --log-level warn >"$BENCH_PROXY_DIR/herd.log" 2>&1 &
agent=$!
trap "kill -TERM $agent; wait $agent" TERM INT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$api/v1/status/leader" >/dev/null && break; sleep 0.1; done
{
  echo "kind: service"; echo "name: bench"; echo "routes: [{path_prefix: /}]"; echo "backends:"
  for b in ${BACKENDS//,/ }; do echo "  - address: $b"; done
} >"$BENCH_PROXY_DIR/bench.yaml"
"$HERD" --address "http://127.0.0.1:$api" apply -f "$BENCH_PROXY_DIR/bench.yaml" >>"$BENCH_PROXY_DIR/herd.log"
wait $agent
'

: >"$RESULTS_DIR/compare.txt"
if [[ ${SKIP_COMPARE:-0} != 1 ]]; then
  log ""
  log "--- side by side: $LB_HARNESS/lb-compare.sh, ROUNDS=$ROUNDS DURATION=$DURATION ---"
  PROXY_CMD="$HERD_CMD" PROXY_NAME=herd ROUNDS=$ROUNDS DURATION=$DURATION \
    bash "$LB_HARNESS/lb-compare.sh" 2>>"$LOG" | tee -a "$LOG" "$RESULTS_DIR/compare.txt"
fi

# ---- kill test and idle connections: herd alone ----
BPORTS=(18181 18182 18183)
GW=18195
API=18295
for i in 0 1 2; do
  setsid env GOMAXPROCS=1 /tmp/bench-backend -listen "127.0.0.1:${BPORTS[$i]}" -name "b$i" -size 64 >>"$LOG" 2>&1 &
  PIDS+=($!)
done
setsid "$HERD" agent --dev --insecure --http-port $API --gossip-port $((API + 1)) --rpc-port $((API + 2)) \
  --gateway-http 127.0.0.1:$GW --log-level warn >>"$LOG" 2>&1 &
HPID=$!
PIDS+=($HPID)
ready=0
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$API/v1/status/leader" >/dev/null && { ready=1; break; }; nap 0.1; done
if [[ $ready != 1 ]]; then
  log "herd agent for steps 4-5 did not start (ports $API-$((API + 2)), gateway $GW busy?); see $LOG"
  exit 1
fi
cat >"$WORK/bench.yaml" <<YAML
kind: service
name: bench
routes: [{path_prefix: /}]
backends:
  - address: 127.0.0.1:${BPORTS[0]}
  - address: 127.0.0.1:${BPORTS[1]}
  - address: 127.0.0.1:${BPORTS[2]}
health_check: {path: /, interval: 1s, timeout: 500ms}
YAML
"$HERD" --address "http://127.0.0.1:$API" apply -f "$WORK/bench.yaml" >>"$LOG"
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$GW/" >/dev/null && break; nap 0.1; done

log ""
log "--- kill test: wrk -t2 -c64 -d${KILL_DURATION}s through herd; backend b1 is SIGKILLed after $((KILL_DURATION / 2))s ---"
(sleep $((KILL_DURATION / 2)); kill -KILL -- "-${PIDS[1]}") &
killer=$!
wrk -t2 -c64 -d"${KILL_DURATION}s" --latency "http://127.0.0.1:$GW/" >"$WORK/kill.out" 2>&1
wait "$killer"
tee -a "$LOG" <"$WORK/kill.out"
reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$WORK/kill.out")
non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\)/\1/p' "$WORK/kill.out"); non2xx=${non2xx:-0}
sockerr=$(sed -n 's/^ *Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\)/\1 \2 \3 \4/p' "$WORK/kill.out" | awk '{print $1+$2+$3+$4}'); sockerr=${sockerr:-0}
KILL_LINE="RESULT test=kill requests=$reqs non_2xx=$non2xx socket_errors=$sockerr"
log "$KILL_LINE"
log "herd's counters after the kill test:"
curl -fs "http://127.0.0.1:$API/v1/metrics" | grep -E '^herd_gateway_(retries|retry_budget_exhausted|failed_requests|no_backend|backend_connect_errors|ejections)_total' | tee -a "$LOG"

log ""
log "--- idle connections: $IDLE_CONNS keep-alive client connections through herd ---"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(cd "$REPO_ROOT" && "$GO" build -o "$WORK/idleconns" ./scripts/idleconns) >>"$LOG" 2>&1
rss_before=$(awk '/VmRSS/{print $2}' "/proc/$HPID/status")
"$WORK/idleconns" -addr "127.0.0.1:$GW" -n "$IDLE_CONNS" -hold 3s -pid "$HPID" >"$WORK/idle.out" 2>&1
tee -a "$LOG" <"$WORK/idle.out"
IDLE_LINE="$(grep '^RESULT' "$WORK/idle.out") rss_before_kib=$rss_before"

log ""
log "--- routing table: apply a change to 10,000 routes ---"
(cd "$REPO_ROOT" && "$GO" test -run '^$' -bench 'BenchmarkApply10kRoutes' -benchtime 20x ./internal/gateway) 2>&1 | tee -a "$LOG" >"$WORK/routes.out"
ROUTES_LINE=$(grep '^BenchmarkApply10kRoutes' "$WORK/routes.out")

{
  echo ""
  echo "================ herd gateway, SUMMARY ($STAMP) ================"
  echo "herd $HERD_REV"
  grep -E '^RESULT|^ *(name|direct|nginx|haproxy|caddy|go-httputil|herd) ' "$RESULTS_DIR/compare.txt"
  echo "$KILL_LINE"
  echo "$IDLE_LINE"
  echo "$ROUTES_LINE"
  echo "full log: $LOG"
} | tee "$RESULTS_DIR/summary.txt"
