#!/usr/bin/env bash
# bench-workload.sh - services that herd runs itself: how fast a replica
# lost with its node is replaced and routed, how many requests fail
# meanwhile, that a CPU-starved cluster does not replace healthy replicas,
# and the scheduler's placement speed.
#
#   make bench-workload        (or: bash scripts/bench-workload.sh)
#   HERD_SRC=head RUNS=5 SATURATE_S=60 bash scripts/bench-workload.sh
#
# The cluster: 4 agents on 127.0.0.1 (data dirs in a mktemp dir), 3 servers
# n1-n3 and 1 client c1; every one runs replicas (each its own replica
# port range, from a per-agent config file) and the HTTP gateway. The
# service "web" runs 3 replicas of internal/agent/testdata/webserver (exec
# driver, distinct_hosts: true, so one replica per node and one spare
# node: with 3 nodes and distinct_hosts the replacement of a lost replica
# would have nowhere to go). Health check GET /health every HC_INTERVAL,
# timeout HC_TIMEOUT, rise HC_RISE, fall HC_FALL; route "/" on every gateway.
# scripts/wlload (CLIENTS GET loops, RATE req/s in all, 0 = unpaced) loads
# n1's gateway; n1 is never killed, and its API is the observer.
#
#   1. Failover, RUNS times: with load on for PRE_S, SIGKILL one node's
#      agent and its replica's process in the same `kill` (a node other than
#      n1 that holds a replica, and not the Raft leader unless KILL_LEADER=1;
#      rotating over the candidates; the replica's pid is the process whose
#      environment has HERD_REPLICA_ID=<its id>). Poll n1's
#      GET /v1/replicas?service=web every 50 ms (a fresh wlload per run)
#      until the replica that `replaces` the killed one is running and
#      healthy, and watch wlload's log for the first answer from it through
#      the gateway. replace_ms = kill -> both (healthy in the API and routed).
#      The breakdown comes from herd's own timestamps (same clock): the
#      victim's gossip StatusSince on n1 (failed), its node's status_since
#      (down), the replacement's create_time (placed, after the node grace),
#      started_at and healthy_since. Failed requests (non-200 or transport
#      error) are counted over the whole run and from the kill to +10 s.
#      The load goes on until kill+10 s at least; then the agent restarts
#      from its data dir, and the run ends when the cluster is steady again
#      (4 nodes ready, exactly 3 replica records, all running and healthy,
#      the gateway answering from all 3) plus SETTLE_S.
#   2. No false failover: with load on, NCPU busy loops (bash) for
#      SATURATE_S; n1's replicas and nodes polled every 500 ms. PASS = the
#      replica IDs before and after are the same, no replica was ever lost
#      or asked to stop, no node went down. All agents share this machine's
#      cores, so this starves every node at once.
#   3. go test -bench 'Place10kOn1k|PlaceNodes' -benchmem ./internal/scheduler/
# Prints the figures (also in $RESULTS_DIR/summary.txt). The trap stops
# every agent, replica, load generator and busy loop it started, and checks
# with pgrep that none is left.
#
# Environment (defaults in brackets):
#   RUNS [5]  SATURATE_S [60]  CLIENTS [16]  RATE [0] (req/s over all clients; 0 = unpaced)
#   PRE_S [3] load before each kill  WINDOW_S [10] the after-kill window  SETTLE_S [2]
#   KILL_LEADER [0] (1: kill the Raft leader whenever it holds a replica; when n1
#     leads, that run loads and observes n2 instead)
#   HC_INTERVAL [200ms]  HC_TIMEOUT [150ms]  HC_RISE [1]  HC_FALL [2]
#   PORT_BASE [24400] (API +1..4, gossip +11..14, Raft +21..24, gateways +31..34,
#     replica ports +100.. in 20-port ranges per agent)
#   MAX_TIME [360 + 60*RUNS + SATURATE_S] seconds before the watchdog stops everything
#   RESULTS_DIR [/tmp/herd-bench/workload-<timestamp>]
#   HERD_SRC [worktree]  worktree, or head (herd, the web server and the scheduler
#     bench from a clean export of HEAD; wlload always from the working tree)
#   RUN_SCHED [1] 0 skips the scheduler bench   GO [go from PATH]
#   GW_TRACE [1]  each failover poll also saves n1's GET /v1/gateway/services
#     (ms after the kill, then the JSON) and its herd_gateway_* error counters
#     to $RESULTS_DIR/gw-run<N>.trace
set -u -o pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=scripts/bench-lib.sh
source "$HERE/bench-lib.sh"

RUNS=${RUNS:-5}
SATURATE_S=${SATURATE_S:-60}
CLIENTS=${CLIENTS:-16}
RATE=${RATE:-0}
PRE_S=${PRE_S:-3}
WINDOW_S=${WINDOW_S:-10}
SETTLE_S=${SETTLE_S:-2}
KILL_LEADER=${KILL_LEADER:-0}
HC_INTERVAL=${HC_INTERVAL:-200ms}
HC_TIMEOUT=${HC_TIMEOUT:-150ms}
HC_RISE=${HC_RISE:-1}
HC_FALL=${HC_FALL:-2}
PORT_BASE=${PORT_BASE:-24400}
MAX_TIME=${MAX_TIME:-$((360 + 60 * RUNS + SATURATE_S))}
RUN_SCHED=${RUN_SCHED:-1}
GW_TRACE=${GW_TRACE:-1}
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS_DIR=${RESULTS_DIR:-/tmp/herd-bench/workload-$STAMP}
NAMES=(n1 n2 n3 c1)
declare -A IDX=([n1]=1 [n2]=2 [n3]=3 [c1]=4) KIND=([n1]=server [n2]=server [n3]=server [c1]=client)
HERD_SERVERS=3
OBS=n1 # load target and observer; never killed (n2 in a KILL_LEADER=1 run where n1 leads)
CMDLINE="$(printf '%q ' env RUNS="$RUNS" SATURATE_S="$SATURATE_S" CLIENTS="$CLIENTS" RATE="$RATE" \
  PORT_BASE="$PORT_BASE" HERD_SRC="${HERD_SRC:-worktree}" bash "$0" "$@")"

command -v jq >/dev/null || { echo "needs jq (apt-get install -y jq)" >&2; exit 1; }
command -v curl >/dev/null || { echo "needs curl" >&2; exit 1; }
mkdir -p "$RESULTS_DIR"
LOG=$RESULTS_DIR/full.log
SUMMARY=$RESULTS_DIR/summary.txt
: >"$LOG"

WORK=$(mktemp -d /tmp/herd-bench-workload.XXXXXX)
HERD=$WORK/herd
WEB=$WORK/webserver
WLLOAD=$WORK/wlload
declare -A PID HTTP GOSSIP RPC GW
WATCHDOG=""
LOAD_PID=""
SPIN_PIDS=()
SCHED_PID=""

# our_procs: pid and command of every process whose command line names
# $WORK (agents, replicas, wlload, busy loops), but not this script's own.
our_procs() { pgrep -af -- "$WORK/" | grep -v "^$$ " || true; }

stop_load() {
  [[ -z "$LOAD_PID" ]] && return 0
  if alive "$LOAD_PID"; then
    kill -TERM "$LOAD_PID" 2>/dev/null
    for _ in $(seq 50); do alive "$LOAD_PID" || break; nap 0.1; done
    alive "$LOAD_PID" && kill -KILL "$LOAD_PID" 2>/dev/null
  fi
  wait "$LOAD_PID" 2>/dev/null
  LOAD_PID=""
}
stop_spinners() {
  local p
  for p in "${SPIN_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for p in "${SPIN_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  SPIN_PIDS=()
}
# replica_pids: the replica processes (our web server binary), by pid.
replica_pids() {
  local f p
  for f in /proc/[0-9]*/exe; do
    [[ "$(readlink "$f" 2>/dev/null)" == "$WEB" ]] || continue
    p=${f#/proc/}; echo "${p%/exe}"
  done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n "$SCHED_PID" ]] && kill -TERM "$SCHED_PID" 2>/dev/null
  stop_spinners
  stop_load
  herd_stop_all
  local p left
  for p in $(replica_pids); do kill -KILL "$p" 2>/dev/null; done
  for _ in $(seq 20); do [[ -z "$(our_procs)" ]] && break; nap 0.1; done
  left=$(our_procs)
  if [[ -n "$left" ]]; then
    log "LEFT OVER after the clean-up (killing them now):"; log "$left"
    [[ -f "$SUMMARY" ]] && { echo "clean-up: LEFT OVER processes, killed:"; echo "$left"; } >>"$SUMMARY"
    while read -r p _; do kill -KILL "$p" 2>/dev/null; done <<<"$left"
    nap 0.5
    [[ -n "$(our_procs)" ]] && log "STILL LEFT: $(our_procs)"
    ((rc == 0)) && rc=3
  else
    log "clean-up: no agent, replica, load generator or busy loop left (pgrep -f $WORK/)"
    [[ -f "$SUMMARY" ]] && echo "clean-up: nothing left running (pgrep -f $WORK/ finds no process)" >>"$SUMMARY"
  fi
  bench_finish "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM
start_watchdog

# ports: API/gossip/Raft per lib, gateways +31..34, replica ranges +100..+179.
ports=()
for i in 1 2 3 4; do ports+=($((PORT_BASE + i)) $((PORT_BASE + 10 + i)) $((PORT_BASE + 20 + i)) $((PORT_BASE + 30 + i))); done
for ((p = PORT_BASE + 100; p < PORT_BASE + 180; p++)); do ports+=("$p"); done
ports_free "${ports[@]}" || exit 1

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "== herd workload benchmark $STAMP =="
log "$(host_info); loadavg at start: $LOAD_START"
log "command: $CMDLINE"

# ---- builds ----
# HERD_SRC=head: one export of HEAD (resolved once, so that a commit made
# meanwhile cannot mix in) for herd, the web server and the scheduler bench;
# worktree: bench-lib's build_herd (which marks a dirty tree).
SRC=$REPO_ROOT
if [[ ${HERD_SRC:-worktree} == head ]]; then
  commit=$(git -C "$REPO_ROOT" rev-parse HEAD) || { log "git rev-parse HEAD failed"; exit 1; }
  HERD_REV=${commit:0:7}
  SRC=$WORK/src; mkdir -p "$SRC"
  git -C "$REPO_ROOT" archive "$commit" | tar -x -C "$SRC" || { log "git archive $commit failed"; exit 1; }
fi
log "building herd and the web server (from ${HERD_SRC:-worktree}: $SRC) and wlload (working tree) ..."
if [[ ${HERD_SRC:-worktree} == head ]]; then
  (cd "$SRC" && "$GO" build -o "$HERD" ./cmd/herd) >>"$LOG" 2>&1 || { log "herd build failed (see $LOG)"; exit 1; }
else
  build_herd "$HERD" >>"$LOG" 2>&1 || { log "herd build failed (see $LOG)"; exit 1; }
fi
(cd "$SRC" && "$GO" build -o "$WEB" ./internal/agent/testdata/webserver) >>"$LOG" 2>&1 || { log "webserver build failed (see $LOG)"; exit 1; }
(cd "$REPO_ROOT" && "$GO" build -o "$WLLOAD" ./scripts/wlload) >>"$LOG" 2>&1 || { log "wlload build failed (see $LOG)"; exit 1; }
log "herd: commit $HERD_REV"

# ---- helpers ----
api() { echo "http://127.0.0.1:${HTTP[$1]}"; }
ms_since() { echo $((($(now_us) - $1) / 1000)); } # T0_US -> ms
ts_us() { [[ -n "$1" && "$1" != null ]] && date -d "$1" +%s%6N; } # RFC 3339 -> µs
rel_ms() { # TS T0_US: ms from T0 to the RFC 3339 time TS ("-" if none)
  local u; u=$(ts_us "$1") || { echo -; return; }
  [[ -z "$u" ]] && { echo -; return; }
  awk -v a="$u" -v b="$2" 'BEGIN{printf "%d", (a-b)/1000}'
}
start_node() { # NAME
  local n=$1 i=${IDX[$1]}
  GW[$n]=$((PORT_BASE + 30 + i))
  HERD_CONFIG=$WORK/$n.yaml herd_start "$n" "$i" "${KIND[$n]}" --gateway-http "127.0.0.1:${GW[$n]}"
}
replicas_json() { curl -s -m 2 "$(api "$OBS")/v1/replicas?service=web"; }

# steady LIMIT_S: 4 nodes ready, exactly 3 replica records, all meant to
# run, running and healthy on 3 nodes, and the load node's gateway answering
# from all 3.
# Sets STEADY_IDS (sorted, space-separated) and STEADY_JSON.
steady() {
  local limit=$1 t0=$SECONDS js nodes ids seen body k
  while :; do
    js=$(replicas_json)
    ids=$(jq -r 'if length == 3 and (map(select(.desired == "run" and .state == "running" and .health == "healthy")) | length) == 3
                 and (map(.node) | unique | length) == 3 then map(.id) | sort | join(" ") else empty end' <<<"$js" 2>/dev/null)
    nodes=$(curl -s -m 2 "$(api "$OBS")/v1/nodes" | jq -r 'map(select(.status == "ready")) | length' 2>/dev/null)
    if [[ -n "$ids" && "$nodes" == 4 ]]; then
      seen=" "
      for k in $(seq 12); do
        body=$(curl -s -m 1 "http://127.0.0.1:${GW[$OBS]}/") && seen+="${body%% *} "
      done
      local all=1 id
      for id in $ids; do [[ $seen == *" $id "* ]] || all=0; done
      if ((all)); then STEADY_IDS=$ids; STEADY_JSON=$js; return 0; fi
    fi
    if ((SECONDS - t0 >= limit)); then
      log "not steady after ${limit}s: ready nodes ${nodes:-?}; replicas: $(jq -c 'map([.id, .node, .desired, .state, .health])' <<<"$js" 2>/dev/null)"
      return 1
    fi
    nap 0.2
  done
}

# load_start FILE: wlload on the load node's gateway, events to FILE.
load_start() {
  "$WLLOAD" -url "http://127.0.0.1:${GW[$OBS]}/" -c "$CLIENTS" -rate "$RATE" -timeout 2s -out "$1" >"$1.result" 2>&1 &
  LOAD_PID=$!
}
# load_stop FILE: stop wlload, set LOAD_RESULT to its RESULT line.
load_stop() {
  stop_load
  LOAD_RESULT=$(grep '^RESULT ' "$1.result" | tail -1)
}
# window FILE FROM_MS TO_MS: "ok failed kinds" of the requests that ended in
# (FROM, TO], from the TICK lines (100 ms buckets) and FAIL lines.
window() {
  awk -v a="$2" -v b="$3" '
    $1 == "TICK" && $2 > a && $2 <= b + 99 { ok += $3; f += $4 }
    $1 == "FAIL" && $2 > a && $2 <= b { k[$3]++ }
    END { s = ""; for (x in k) s = s (s == "" ? "" : ",") x ":" k[x]; printf "%d %d %s\n", ok, f, (s == "" ? "-" : s) }' "$1"
}
# fail_reasons FILE T0_MS: the distinct failures (kind and body or error),
# most frequent first, with the first and last time after T0_MS.
fail_reasons() {
  awk -v t0="$2" '$1 == "FAIL" { k = $3 " " $5; c[k]++; if (!(k in a)) a[k] = $2 - t0; z[k] = $2 - t0 }
    END { for (k in c) printf "    %6d %s (%d..%d ms)\n", c[k], k, a[k], z[k] }' "$1" | sort -rn | head -5
}
ratio() { awk -v f="$1" -v t="$2" 'BEGIN{ if (t > 0) printf "%.4f%%", 100 * f / t; else print "-" }'; }
stats() {
  if (($# == 0)); then echo "n=0"; return; fi
  local mm; mm=$(printf '%s\n' "$@" | minmax)
  printf 'median %s  min %s  max %s  (n=%d)' "$(printf '%s\n' "$@" | median)" "${mm% *}" "${mm#* }" "$#"
}

# ---- cluster ----
for n in "${NAMES[@]}"; do
  i=${IDX[$n]}
  lo=$((PORT_BASE + 100 + (i - 1) * 20))
  printf 'workload:\n  port_min: %d\n  port_max: %d\n' "$lo" $((lo + 19)) >"$WORK/$n.yaml"
done
log "starting 3 servers and 1 client, each running replicas and a gateway (data under $WORK) ..."
t0=$SECONDS
for n in "${NAMES[@]}"; do start_node "$n"; done
herd_wait_ready 30 "${NAMES[@]}" || { log "cluster not ready"; exit 1; }
log "cluster ready after $((SECONDS - t0))s, leader $READY_LEADER; pids $(for n in "${NAMES[@]}"; do printf '%s=%s ' "$n" "${PID[$n]}"; done)"

cat >"$WORK/web.yaml" <<EOF
kind: service
name: web
routes:
  - path_prefix: /
health_check:
  path: /health
  interval: $HC_INTERVAL
  timeout: $HC_TIMEOUT
  rise: $HC_RISE
  fall: $HC_FALL
run:
  driver: exec
  command: $WEB
  env:
    VERSION: v1
  replicas: 3
  distinct_hosts: true
  restart:
    delay: 100ms
    max_delay: 1s
EOF
sed 's/^/  | /' "$WORK/web.yaml" >>"$LOG"
"$HERD" apply --address "$(api "$OBS")" -f "$WORK/web.yaml" >>"$LOG" 2>&1 || { log "herd apply failed (see $LOG)"; exit 1; }
t0=$SECONDS
steady 60 || { log "the service did not get 3 healthy, routed replicas"; exit 1; }
log "service web: 3 replicas healthy and routed after $((SECONDS - t0))s: $(jq -r 'map("\(.id)@\(.node):\(.ports.http)") | join(" ")' <<<"$STEADY_JSON")"

# ---- 1. failover ----
FO_ROWS=() FO_REPLACE=() FO_REASONS=() B_FAILED=() B_PLACED=() B_STARTED=() B_HEALTHY=() B_ROUTED=() FO_FAILS=() FO_WFAILS=() FO_TOTAL_FAIL=0 FO_TOTAL=0
FO_BROKEN=""
for run in $(seq "$RUNS"); do
  OBS=n1
  if [[ $KILL_LEADER == 1 && "$(leader_seen_by n1)" == n1 ]]; then OBS=n2; fi # so that the leader can be killed
  steady 60 || { FO_BROKEN="run $run: not steady before the kill"; break; }
  leader=$(leader_seen_by "$OBS")
  cands=()
  for n in "${NAMES[@]}"; do
    [[ $n == "$OBS" ]] && continue
    [[ $KILL_LEADER != 1 && $n == "$leader" ]] && continue
    jq -e --arg n "$n" 'any(.[]; .node == $n)' <<<"$STEADY_JSON" >/dev/null && cands+=("$n")
  done
  ((${#cands[@]})) || { FO_BROKEN="run $run: no node to kill (leader $leader)"; break; }
  victim=${cands[$(((run - 1) % ${#cands[@]}))]}
  if [[ $KILL_LEADER == 1 && " ${cands[*]} " == *" $leader "* ]]; then victim=$leader; fi
  lost=$(jq -r --arg n "$victim" '.[] | select(.node == $n) | .id' <<<"$STEADY_JSON")
  rpid=$(grep -lzx "HERD_REPLICA_ID=$lost" /proc/[0-9]*/environ 2>/dev/null | sed -n 's#^/proc/\([0-9]*\)/environ$#\1#p' | head -1)
  if [[ -z "$rpid" || "$(readlink "/proc/$rpid/exe")" != "$WEB" ]]; then
    FO_BROKEN="run $run: no process found for replica $lost"; break
  fi
  role=${KIND[$victim]}; [[ $victim == "$leader" ]] && role+="/leader"
  EV=$RESULTS_DIR/load-run$run.log
  log ""
  log "--- failover run $run/$RUNS: load $CLIENTS clients on $OBS's gateway; will kill $victim ($role, agent pid ${PID[$victim]}) with replica $lost (pid $rpid); leader $leader; loadavg $(cut -d' ' -f1-3 /proc/loadavg) ---"
  load_start "$EV"
  nap "$PRE_S"
  t_kill=$(now_us)
  kill -KILL "${PID[$victim]}" "$rpid"
  kill_ms=$((t_kill / 1000))
  repl="" rnode="" t_api="" t_routed="" t_lostseen="" t_failed=""
  membersurl="$(api "$OBS")/v1/agent/members"
  next=$t_kill
  while :; do
    now=$(now_us)
    ((now - t_kill > 30000000)) && break
    if [[ -z "$t_failed" ]]; then
      body=$(curl -s -m 0.5 "$membersurl")
      re="\"Name\":\"$victim\"[^}]*\"Status\":\"failed\""
      [[ $body =~ $re ]] && t_failed=$(ms_since "$t_kill")
    fi
    if [[ -z "$t_api" ]]; then
      read -r lstate rid rn rst rh < <(replicas_json | jq -r --arg l "$lost" \
        '((.[] | select(.id == $l) | .state) // "gone") as $ls | ([.[] | select(.replaces == $l)] | first) as $r |
         "\($ls) \($r.id // "-") \($r.node // "-") \($r.state // "-") \($r.health // "-")"' 2>/dev/null)
      [[ -z "$t_lostseen" && ${lstate:-} == lost ]] && t_lostseen=$(ms_since "$t_kill")
      if [[ ${rid:--} != - ]]; then
        repl=$rid; rnode=$rn
        [[ $rst == running && $rh == healthy ]] && t_api=$(ms_since "$t_kill")
      fi
    fi
    if [[ $GW_TRACE == 1 ]]; then
      printf '%s ' "$(ms_since "$t_kill")" >>"$RESULTS_DIR/gw-run$run.trace"
      curl -s -m 0.5 "http://127.0.0.1:${HTTP[$OBS]}/v1/gateway/services" >>"$RESULTS_DIR/gw-run$run.trace"
      echo >>"$RESULTS_DIR/gw-run$run.trace"
      curl -s -m 0.5 "http://127.0.0.1:${HTTP[$OBS]}/v1/metrics" | grep -E '^herd_gateway_(backend_connect_errors|retry_budget_exhausted|retries|failed_requests|no_backend|circuit_breaker|ejections|health_transitions)' |
        sed 's/^/  /' >>"$RESULTS_DIR/gw-run$run.trace"
    fi
    if [[ -n "$repl" && -z "$t_routed" ]]; then
      f=$(grep -m1 " $repl\$" "$EV" | awk '$1 == "FIRST" {print $2}')
      [[ -n "$f" ]] && t_routed=$((f - kill_ms))
    fi
    [[ -n "$t_api" && -n "$t_routed" ]] && break
    next=$((next + 50000)); d=$((next - $(now_us)))
    ((d > 0)) && nap "$(printf '0.%06d' "$d")"
  done
  # herd's own timestamps, before the victim comes back and changes them
  rj=$(replicas_json | jq -c --arg l "$lost" '[.[] | select(.replaces == $l)] | first // {}')
  since_failed=$(curl -s -m 1 "$membersurl" | jq -r --arg n "$victim" '.[] | select(.Name == $n) | .StatusSince')
  node_since=$(curl -s -m 1 "$(api "$OBS")/v1/node/$victim" | jq -r 'if .status == "down" then .status_since else empty end')
  b_failed=$(rel_ms "$since_failed" "$t_kill")
  b_down=$(rel_ms "$node_since" "$t_kill")
  b_placed=$(rel_ms "$(jq -r '.create_time // empty' <<<"$rj")" "$t_kill")
  b_started=$(rel_ms "$(jq -r '.started_at // empty' <<<"$rj")" "$t_kill")
  b_healthy=$(rel_ms "$(jq -r '.healthy_since // empty' <<<"$rj")" "$t_kill")
  replace=""
  if [[ -n "$t_api" && -n "$t_routed" ]]; then
    replace=$((t_api > t_routed ? t_api : t_routed))
    FO_REPLACE+=("$replace")
    [[ $b_failed != - ]] && B_FAILED+=("$b_failed")
    [[ $b_placed != - ]] && B_PLACED+=("$b_placed")
    [[ $b_started != - ]] && B_STARTED+=("$b_started")
    [[ $b_healthy != - ]] && B_HEALTHY+=("$b_healthy")
    B_ROUTED+=("$t_routed")
    log "replacement $repl on $rnode: healthy in the API ${t_api} ms, first answer through $OBS's gateway ${t_routed} ms after the kill => ${replace} ms"
  else
    log "run $run: NO healthy, routed replacement within 30 s (replacement ${repl:-none}, api ${t_api:-never}, routed ${t_routed:-never})"
  fi
  log "  herd's timestamps (ms after the kill): member failed on $OBS $b_failed, node down $b_down, replacement placed $b_placed, started $b_started, healthy $b_healthy; polls: member failed ${t_failed:-?}, lost seen ${t_lostseen:-?}"
  # keep the load on until the end of the window
  d=$((t_kill + WINDOW_S * 1000000 - $(now_us)))
  ((d > 0)) && nap "$(printf '%d.%06d' $((d / 1000000)) $((d % 1000000)))"
  t_r=$SECONDS
  start_node "$victim"
  ok=1
  herd_wait_ready 30 "${NAMES[@]}" && steady 60 || ok=0
  if ((ok)); then
    log "$victim back and the cluster steady $((SECONDS - t_r))s after its restart: $STEADY_IDS"
    nap "$SETTLE_S"
  fi
  load_stop "$EV"
  read -r w_ok w_fail w_kinds < <(window "$EV" "$kill_ms" $((kill_ms + WINDOW_S * 1000)))
  w_tot=$((w_ok + w_fail))
  tot=$(field "$LOAD_RESULT" total); fl=$(field "$LOAD_RESULT" failed)
  log "load: $LOAD_RESULT"
  log "  failed requests: run $fl/$tot ($(ratio "$fl" "$tot")); kill..+${WINDOW_S}s $w_fail/$w_tot ($(ratio "$w_fail" "$w_tot")) $w_kinds"
  if ((${fl:-0} > 0)); then
    reasons=$(fail_reasons "$EV" "$kill_ms")
    log "  failures by answer (count, kind, body/error; first..last in ms after the kill):"$'\n'"$reasons"
    while read -r line; do FO_REASONS+=("run $run: $line"); done <<<"$reasons"
  fi
  FO_TOTAL=$((FO_TOTAL + ${tot:-0})); FO_TOTAL_FAIL=$((FO_TOTAL_FAIL + ${fl:-0}))
  FO_FAILS+=("$(ratio "$fl" "$tot")"); FO_WFAILS+=("$(ratio "$w_fail" "$w_tot")")
  FO_ROWS+=("$(printf '%3s %-3s %-13s %-12s %-12s %-3s %7s %6s %6s %7s %7s %6s %6s %8s %15s %17s %s' "$run" "$victim" "$role" "$lost" \
    "${repl:--}" "${rnode:--}" "$b_failed" "$b_down" "$b_placed" "$b_started" "$b_healthy" "${t_api:--}" "${t_routed:--}" \
    "${replace:-FAIL}" "$fl/$tot" "$w_fail/$w_tot" "$w_kinds")")
  if ((!ok)); then
    FO_BROKEN="run $run: $victim restarted but the cluster was not steady within 90 s"
    alive "${PID[$victim]}" || FO_BROKEN+=" ($victim exited: $(grep -m1 -E '^panic:|^fatal error:|^Error:' "$WORK/$victim.log"))"
    break
  fi
done

# ---- 2. no false failover under CPU saturation ----
OBS=n1
SAT_VERDICT="not run" SAT_NOTE="" SAT_LOAD=""
if [[ -n "$FO_BROKEN" ]]; then
  SAT_VERDICT="not run (failover broke)"
elif ((SATURATE_S <= 0)); then
  SAT_VERDICT="skipped (SATURATE_S=0)"
elif ! steady 60; then
  SAT_VERDICT="not run (the cluster was not steady before it)"
else
  before=$STEADY_IDS
  EV=$RESULTS_DIR/load-saturate.log
  log ""
  log "--- saturation: $NCPU busy loops for ${SATURATE_S}s on this $NCPU-core machine (all 4 agents share it: every node starves at once); load $CLIENTS clients on $OBS's gateway; replicas $before; loadavg $(cut -d' ' -f1-3 /proc/loadavg) ---"
  load_start "$EV"
  nap 2
  s0=$(now_us)
  for ((k = 0; k < NCPU; k++)); do
    bash -c 'while :; do :; done' "$WORK/spin" &
    SPIN_PIDS+=($!)
  done
  declare -A moved=()
  polls=0 pollfail=0 lostseen="" newids="" stopseen="" downseen="" unhealthy=0 failedseen=""
  next=$s0
  while (($(now_us) - s0 < SATURATE_S * 1000000)); do
    polls=$((polls + 1))
    js=$(replicas_json)
    if [[ -z "$js" ]] || ! jq -e 'type == "array"' <<<"$js" >/dev/null 2>&1; then
      pollfail=$((pollfail + 1))
    else
      at="+$(($(ms_since "$s0") / 1000))s"
      while read -r id node desired st h; do
        [[ " $before " == *" $id "* ]] || { [[ -z "${moved[new-$id]:-}" ]] && { moved[new-$id]=1; newids+=" $id@$node$at"; }; }
        [[ $st == lost && -z "${moved[lost-$id]:-}" ]] && { moved[lost-$id]=1; lostseen+=" $id$at"; }
        [[ $desired != run && -z "${moved[stop-$id]:-}" ]] && { moved[stop-$id]=1; stopseen+=" $id$at"; }
        [[ $st != running || $h != healthy ]] && unhealthy=$((unhealthy + 1))
      done < <(jq -r '.[] | "\(.id) \(.node) \(.desired) \(.state) \(.health)"' <<<"$js")
      while read -r nn ns; do
        [[ $ns != ready && -z "${moved[down-$nn]:-}" ]] && { moved[down-$nn]=1; downseen+=" $nn:$ns$at"; }
      done < <(curl -s -m 2 "$(api "$OBS")/v1/nodes" | jq -r '.[] | "\(.name) \(.status)"' 2>/dev/null)
      body=$(curl -s -m 2 "$(api "$OBS")/v1/agent/members")
      for nn in "${NAMES[@]}"; do
        re="\"Name\":\"$nn\"[^}]*\"Status\":\"(failed|left)\""
        [[ $body =~ $re && -z "${moved[failed-$nn]:-}" ]] && { moved[failed-$nn]=1; failedseen+=" $nn$at"; }
      done
    fi
    next=$((next + 500000)); d=$((next - $(now_us)))
    ((d > 0)) && nap "$(printf '0.%06d' "$d")"
  done
  s1=$(now_us)
  stop_spinners
  log "busy loops stopped after $(($(ms_since "$s0") / 1000))s; loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
  nap 3
  load_stop "$EV"
  after=$(replicas_json | jq -r 'map(.id) | sort | join(" ")' 2>/dev/null)
  read -r w_ok w_fail w_kinds < <(window "$EV" $((s0 / 1000)) $((s1 / 1000)))
  w_tot=$((w_ok + w_fail))
  SAT_LOAD="during the busy loops $w_fail/$w_tot failed ($(ratio "$w_fail" "$w_tot")) $w_kinds; whole load run $(field "$LOAD_RESULT" failed)/$(field "$LOAD_RESULT" total), p50 $(field "$LOAD_RESULT" p50_ms) ms, p99 $(field "$LOAD_RESULT" p99_ms) ms, max $(field "$LOAD_RESULT" max_ms) ms"
  log "load: $LOAD_RESULT"
  SAT_VERDICT=PASS
  [[ "$after" != "$before" || -n "$lostseen$newids$stopseen$downseen" ]] && SAT_VERDICT=FAIL
  SAT_NOTE="replicas before: $before; after: ${after:-?}; new:${newids:- none}; lost:${lostseen:- none}; asked to stop:${stopseen:- none}; nodes not ready:${downseen:- none}; members failed on $OBS:${failedseen:- none}; $polls polls ($pollfail unanswered), $unhealthy replica-polls not running+healthy"
  log "saturation: $SAT_VERDICT - $SAT_NOTE"
  log "saturation load: $SAT_LOAD"
  [[ -n "$failedseen" && $SAT_VERDICT == PASS ]] && SAT_NOTE+=" (gossip flapped but no replica moved)"
fi

# stop the cluster before the scheduler bench: remove the service (the
# nodes stop their replicas), then the trap-level clean-up does the rest.
curl -s -m 5 -X DELETE "$(api "$OBS")/v1/service/web" >/dev/null
for _ in $(seq 50); do [[ -z "$(replica_pids)" ]] && break; nap 0.2; done
[[ -n "$(replica_pids)" ]] && log "replicas still running 10 s after the service was removed: $(replica_pids | tr '\n' ' ')"
herd_stop_all
for n in "${NAMES[@]}"; do cp "$WORK/$n.log" "$RESULTS_DIR/herd-$n.log"; done
HERD_ERR=$(cat "$WORK"/n?.log "$WORK"/c1.log | grep -c -E 'level=ERROR' || true)
HERD_WARN=$(cat "$WORK"/n?.log "$WORK"/c1.log | grep -c -E 'level=WARN' || true)
HERD_PANICS=$(cat "$WORK"/n?.log "$WORK"/c1.log | grep -c -E '^panic:|fatal error:' || true)
HERD_TOPERR=$(cat "$WORK"/n?.log "$WORK"/c1.log | sed -n -E 's/.*level=(ERROR|WARN) (msg="[^"]*").*/\1 \2/p' | sort | uniq -c | sort -rn | head -6)

# ---- 3. scheduler ----
SCHED=""
if [[ $RUN_SCHED == 1 ]]; then
  log ""
  log "--- scheduler bench (go test in $SRC; loadavg $(cut -d' ' -f1-3 /proc/loadavg)) ---"
  (cd "$SRC" && timeout 300 "$GO" test -run XXX -bench 'Place10kOn1k|PlaceNodes' -benchmem ./internal/scheduler/) >"$WORK/sched.out" 2>&1 &
  SCHED_PID=$!
  wait "$SCHED_PID"; rc=$?; SCHED_PID=""
  cat "$WORK/sched.out" >>"$LOG"
  SCHED=$(grep -E '^(Benchmark|goos|goarch|cpu|ok|FAIL|---)' "$WORK/sched.out")
  ((rc)) && SCHED+=$'\n'"(go test exit $rc)"
fi

# ---- summary ----
{
  echo ""
  echo "================ herd workloads, SUMMARY ($STAMP) ================"
  host_info
  echo "loadavg: start $LOAD_START, end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "herd $HERD_REV (HERD_SRC=${HERD_SRC:-worktree}); command: $CMDLINE"
  echo "cluster: 3 servers + 1 client on 127.0.0.1, all running replicas and a gateway; node grace 2s (default)"
  echo "service web: 3 replicas of testdata/webserver (exec), distinct_hosts; health GET /health every $HC_INTERVAL, timeout $HC_TIMEOUT, rise $HC_RISE, fall $HC_FALL"
  echo "load: wlload, $CLIENTS GET loops on $OBS's gateway, rate $([[ $RATE == 0 ]] && echo unpaced || echo "$RATE req/s"), 2 s timeout; failed = not 200 or transport error"
  echo ""
  echo "1. failover: SIGKILL a node's agent and its replica together (never the load node$([[ $KILL_LEADER != 1 ]] && echo ", never the Raft leader" || echo ", the Raft leader when it can"));"
  echo "   ms after the kill: failed = victim's gossip StatusSince on the load node, down = node status_since, placed/started/healthy = the replacement's"
  echo "   create_time/started_at/healthy_since, api = poll (50 ms) saw it running+healthy, routed = first answer from it through the gateway,"
  echo "   replace = max(api, routed); fails = failed/total requests over the run, and from the kill to +${WINDOW_S}s"
  printf '%3s %-3s %-13s %-12s %-12s %-3s %7s %6s %6s %7s %7s %6s %6s %8s %15s %17s %s\n' run vic role lost replacement on \
    failed down placed started healthy api routed replace fails_run "fails_+${WINDOW_S}s" kinds
  for r in "${FO_ROWS[@]}"; do echo "$r"; done
  echo "   replace_ms: $(stats "${FO_REPLACE[@]}")   target: median <= 5000"
  echo "   medians of the steps (ms after the kill): member failed $(printf '%s\n' "${B_FAILED[@]}" | median), replacement placed $(printf '%s\n' "${B_PLACED[@]}" | median) (node grace 2 s after 'down'),"
  echo "     started $(printf '%s\n' "${B_STARTED[@]}" | median), healthy $(printf '%s\n' "${B_HEALTHY[@]}" | median), first answer through the gateway $(printf '%s\n' "${B_ROUTED[@]}" | median)"
  echo "   failed requests, all runs: $FO_TOTAL_FAIL/$FO_TOTAL ($(ratio "$FO_TOTAL_FAIL" "$FO_TOTAL")); per run: ${FO_FAILS[*]:-none}; kill..+${WINDOW_S}s: ${FO_WFAILS[*]:-none}   target: 0 for GETs, <= 0.1% worst"
  if ((${#FO_REASONS[@]})); then
    echo "   failed requests by answer (count, kind, body or error, first..last ms after the kill):"
    for r in "${FO_REASONS[@]}"; do echo "     $r"; done
  fi
  [[ -n "$FO_BROKEN" ]] && echo "   BROKEN: $FO_BROKEN"
  echo ""
  echo "2. no false failover: $NCPU busy loops for ${SATURATE_S}s with the load on (one machine: all nodes starve at once): $SAT_VERDICT"
  [[ -n "$SAT_NOTE" ]] && echo "   $SAT_NOTE"
  [[ -n "$SAT_LOAD" ]] && echo "   load: $SAT_LOAD"
  echo ""
  echo "3. scheduler: go test -run XXX -bench 'Place10kOn1k|PlaceNodes' -benchmem ./internal/scheduler/"
  if [[ -n "$SCHED" ]]; then sed 's/^/   /' <<<"$SCHED"; else echo "   not run"; fi
  echo ""
  echo "herd logs: $HERD_ERR ERROR, $HERD_WARN WARN lines, $HERD_PANICS panics (in $RESULTS_DIR/herd-*.log); most frequent:"
  sed 's/^/  /' <<<"$HERD_TOPERR"
  echo "total time: ${SECONDS}s; full log: $LOG; load event logs: $RESULTS_DIR/load-*.log"
} | tee -a "$LOG" >"$SUMMARY"
cat "$SUMMARY"
[[ -z "$FO_BROKEN" && $SAT_VERDICT != FAIL ]]
