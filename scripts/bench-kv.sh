#!/usr/bin/env bash
# bench-kv.sh - herd vs etcd on this machine, in one run: 3 members each on
# 127.0.0.1, fsync on, same load generator (kvbench from
# ../shared/bench/kv) with the same flags. Prints a side-by-side summary.
#
#   make bench-kv        (or: bash scripts/bench-kv.sh)
#
# What it does:
#   1. installs etcd-server/etcd-client from Debian if etcd is missing (root only);
#   2. builds herd (into the scratch dir) and kvbench (/tmp/kvbench-bin/kvbench);
#   3. starts 3 herd servers (data dirs in a mktemp dir) and waits for a leader;
#   4. kvbench -store http: put with 1 and CLIENTS_HI clients, linearizable
#      get with CLIENTS_HI clients (1 s warm-up, BENCH_DUR measured), round-robin
#      over the 3 HTTP endpoints;
#   5. FAILOVER_RUNS times: kvbench -mode failover SIGKILLs the leader (found
#      with GET /v1/status/leader?node) during a 1-client put loop with a
#      FAILOVER_OP_TIMEOUT op timeout; the killed member is restarted from its
#      data dir and the script waits until all 3 agree on a leader and serve
#      a put and a linearizable get, then 1 s more;
#   6. stops herd and runs the etcd baseline, ../shared/bench/kv/etcd-3node.sh
#      (same value size, keys, durations, clients, op timeout, FAILOVER_RUNS);
#   7. prints the summary (also in $RESULTS_DIR/summary.txt).
#
# Environment (defaults in brackets):
#   BENCH_DUR [10s]  FAILOVER_RUNS [10]  CLIENTS_HI [64]  VALUE_SIZE [256]  KEYS [10000]
#   FAILOVER_OP_TIMEOUT [100ms]  PORT_BASE [24100] (herd HTTP +1..3, gossip +11..13, Raft +21..23)
#   MAX_TIME [360] seconds before the watchdog stops everything
#   RESULTS_DIR [/tmp/herd-bench/kv-<timestamp>]
#   RUN_ETCD [1]  0 skips the etcd baseline (and its install)
#   RUN_GET [1]   0 skips herd's get row (etcd-3node.sh always runs its gets)
#   RUN_LOAD [1]  0 skips herd's put/get rows (failover only)
#   HERD_SRC [worktree]  worktree, or head (build a clean export of HEAD)
#   HERD_CONFIG []  a herd YAML config passed to every agent (e.g. other Raft timers)
#   SECURE [0]      1 runs herd secure (its default: mTLS, HTTPS API, ACL token); 0 --insecure, as etcd runs
#   KV_HARNESS [$REPO_ROOT/../shared/bench/kv]  GO [go from PATH]
set -u -o pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=scripts/bench-lib.sh
source "$HERE/bench-lib.sh"

KV_HARNESS=${KV_HARNESS:-$REPO_ROOT/../shared/bench/kv}
BENCH_DUR=${BENCH_DUR:-10s}
FAILOVER_RUNS=${FAILOVER_RUNS:-10}
CLIENTS_HI=${CLIENTS_HI:-64}
VALUE_SIZE=${VALUE_SIZE:-256}
KEYS=${KEYS:-10000}
FAILOVER_OP_TIMEOUT=${FAILOVER_OP_TIMEOUT:-100ms}
PORT_BASE=${PORT_BASE:-24100}
MAX_TIME=${MAX_TIME:-360}
RUN_ETCD=${RUN_ETCD:-1}
RUN_GET=${RUN_GET:-1}
RUN_LOAD=${RUN_LOAD:-1}
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS_DIR=${RESULTS_DIR:-/tmp/herd-bench/kv-$STAMP}
KVBENCH=/tmp/kvbench-bin/kvbench
NAMES=(n1 n2 n3)
HERD_SERVERS=3

mkdir -p "$RESULTS_DIR"
LOG=$RESULTS_DIR/full.log
SUMMARY=$RESULTS_DIR/summary.txt
: >"$LOG"

# ---- 1. etcd from Debian (never from make test) ----
if [[ $RUN_ETCD == 1 ]] && ! { command -v etcd && command -v etcdctl; } >/dev/null 2>&1; then
  if [[ $(id -u) != 0 ]]; then
    echo "etcd is not installed and this is not root: apt-get install -y etcd-server etcd-client, or RUN_ETCD=0" >&2
    exit 1
  fi
  log "installing etcd-server etcd-client from Debian ..."
  (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server etcd-client) >>"$LOG" 2>&1 ||
    { log "apt-get install etcd-server etcd-client failed (see $LOG)"; exit 1; }
fi

WORK=$(mktemp -d /tmp/herd-bench-kv.XXXXXX)
HERD=$WORK/herd
declare -A PID HTTP GOSSIP RPC
CHILD=""
WATCHDOG=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$CHILD" ]] && alive "$CHILD"; then
    kill -TERM "$CHILD" 2>/dev/null
    for _ in $(seq 100); do alive "$CHILD" || break; nap 0.1; done
    alive "$CHILD" && kill -KILL "$CHILD" 2>/dev/null
  fi
  bench_finish "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

start_watchdog

# run_child OUTFILE TIMEOUT_S CMD...: run CMD bounded in time, in the
# background so that the traps can stop it; returns its exit status.
run_child() {
  local out=$1 t=$2; shift 2
  timeout "$t" "$@" >"$out" 2>&1 &
  CHILD=$!
  wait "$CHILD"
  local rc=$?
  CHILD=""
  return $rc
}

ports=()
for i in 1 2 3; do ports+=($((PORT_BASE + i)) $((PORT_BASE + 10 + i)) $((PORT_BASE + 20 + i))); done
ports_free "${ports[@]}" || exit 1
if pgrep -x etcd >/dev/null; then
  log "warning: an etcd process is already running on this machine (Debian's etcd.service?): it adds noise"
fi

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "== herd vs etcd KV benchmark $STAMP =="
log "$(host_info); loadavg at start: $LOAD_START"

# ---- 2. builds ----
log "building herd (from ${HERD_SRC:-worktree}) and kvbench ..."
build_herd "$HERD" >>"$LOG" 2>&1 || { log "herd build failed (see $LOG)"; exit 1; }
(cd "$KV_HARNESS" && "$GO" build -o "$KVBENCH" ./kvbench) >>"$LOG" 2>&1 || { log "kvbench build failed (see $LOG)"; exit 1; }
ETCD_VER=""
if [[ $RUN_ETCD == 1 ]]; then
  ETCD_VER="$(etcd --version | sed -n 's/etcd Version: //p') ($(etcd --version | sed -n 's/Go Version: //p'); Debian $(dpkg-query -W -f='${Version}' etcd-server 2>/dev/null || echo '?'))"
fi
TIMERS="heartbeat 500ms, election 500ms, lease 250ms (defaults)"
[[ -n "${HERD_CONFIG:-}" ]] && TIMERS="from $HERD_CONFIG: $(tr '\n' ' ' <"$HERD_CONFIG")"
log "herd: commit $HERD_REV; Raft $TIMERS; log store raft-wal (fsync)"
[[ $RUN_ETCD == 1 ]] && log "etcd: $ETCD_VER"
log "kvbench: $KV_HARNESS, etcd client $(awk '$1=="go.etcd.io/etcd/client/v3"{print $2}' "$KV_HARNESS/go.mod")"

# ---- 3. herd cluster ----
log "starting herd servers (data under $WORK) ..."
t0=$SECONDS
herd_start n1 1 server
if [[ $SECURE == 1 ]] && ! herd_secure_bootstrap n1; then exit 1; fi
for i in 2 3; do herd_start "n$i" "$i" server; done
if ! herd_wait_ready 30 "${NAMES[@]}"; then
  log "herd cluster did not become ready; member logs are kept in $RESULTS_DIR"
  exit 1
fi
log "herd ready after $((SECONDS - t0))s, leader $READY_LEADER: pids $(for n in "${NAMES[@]}"; do printf '%s=%s ' "$n" "${PID[$n]}"; done)"
EPS=$(for n in "${NAMES[@]}"; do printf '%s,' "$(api_base "$n")"; done); EPS=${EPS%,}
# Secure: kvbench trusts the cluster CA (Go reads SSL_CERT_FILE) and sends the token.
KVSEC=()
if [[ $SECURE == 1 ]]; then export SSL_CERT_FILE=$CA; KVSEC=(-token "$TOKEN"); fi

# ---- 4. load ----
declare -A H_RES H_CPU
bench() { # key op clients
  local key=$1 op=$2 clients=$3
  log ""
  log "--- herd $op clients=$clients duration=$BENCH_DUR (loadavg $(cut -d' ' -f1-3 /proc/loadavg)) ---"
  local b0 b1 w0 w1 h0 h1
  b0=$(sys_busy_ticks); h0=$(ticks_of "${PID[@]}"); w0=$EPOCHREALTIME
  run_child "$WORK/bench.out" 90 "$KVBENCH" -store http -endpoints "$EPS" "${KVSEC[@]}" -op "$op" -clients "$clients" \
    -duration "$BENCH_DUR" -warmup 1s -value-size "$VALUE_SIZE" -keys "$KEYS"
  local rc=$?
  b1=$(sys_busy_ticks); h1=$(ticks_of "${PID[@]}"); w1=$EPOCHREALTIME
  tee -a "$LOG" <"$WORK/bench.out"
  local r; r=$(grep '^RESULT ' "$WORK/bench.out" | tail -1)
  if [[ $rc -ne 0 || -z "$r" ]]; then
    log "herd $op clients=$clients FAILED (exit $rc)"
    H_RES[$key]="FAILED"
    return
  fi
  H_CPU[$key]=$(awk -v b="$((b1 - b0))" -v h="$((h1 - h0))" -v c="$(field "$r" client_cpu_s)" \
    -v w="$(awk -v a="$w0" -v z="$w1" 'BEGIN{print z-a}')" -v hz="$HZ" -v n="$NCPU" \
    'BEGIN{cap=w*hz*n; o=b-h-c*hz; if (o<0) o=0; printf "%d/%d/%d", 100*h/cap, 100*c*hz/cap, 100*o/cap}')
  log "cpu share over the run (herd/kvbench/other, % of $NCPU cores): ${H_CPU[$key]}"
  H_RES[$key]=$r
}
if [[ $RUN_LOAD == 1 ]]; then
  bench put1 put 1
  bench puthi put "$CLIENTS_HI"
  [[ $RUN_GET == 1 ]] && bench gethi get "$CLIENTS_HI"
fi

# ---- 5. failover ----
H_FO_ROWS=() H_FO_MS=() H_FO_EL=()
FO_BROKEN=""
for run in $(seq "$FAILOVER_RUNS"); do
  log ""
  log "--- herd failover run $run/$FAILOVER_RUNS (loadavg $(cut -d' ' -f1-3 /proc/loadavg)) ---"
  pids=$(for n in "${NAMES[@]}"; do printf '%s=%s,' "$n" "${PID[$n]}"; done)
  run_child "$WORK/fo.out" 60 "$KVBENCH" -store http -endpoints "$EPS" "${KVSEC[@]}" -mode failover \
    -http-leader-path '/v1/status/leader?node' -pids "${pids%,}" \
    -op-timeout "$FAILOVER_OP_TIMEOUT" -pre-kill 1s -max-wait 30s -value-size "$VALUE_SIZE"
  rc=$?
  tee -a "$LOG" <"$WORK/fo.out"
  r=$(grep '^RESULT ' "$WORK/fo.out" | tail -1)
  if [[ -n "$r" ]]; then
    ms=$(field "$r" failover_ms)
    H_FO_ROWS+=("$(printf '%3s %-7s %12s %18s %-10s %10s' "$run" "$(field "$r" killed)" "$ms" \
      "$(field "$r" leader_elected_ms)" "$(field "$r" new_leader)" "$(field "$r" errors_after_kill)")")
    if [[ $rc -eq 0 ]]; then H_FO_MS+=("$ms"); H_FO_EL+=("$(field "$r" leader_elected_ms)"); fi
  else
    H_FO_ROWS+=("$(printf '%3s FAILED (exit %s): %s' "$run" "$rc" "$(grep -m1 'kvbench' "$WORK/fo.out")")")
  fi
  t_r=$SECONDS
  for i in 1 2 3; do
    n=n$i
    if ! alive "${PID[$n]}"; then
      log "restarting $n from $WORK/$n"
      herd_start "$n" "$i" server
    fi
  done
  if ! herd_wait_ready 30 "${NAMES[@]}"; then
    log "herd FAILED to recover within 30 s after failover run $run; stopping the failover runs (member logs kept in $RESULTS_DIR)"
    FO_BROKEN="run $run: no agreed leader / no successful put+get on every member within 30 s of the restart"
    for n in "${NAMES[@]}"; do
      alive "${PID[$n]}" && continue
      why=$(grep -m1 -E '^panic:|^fatal error:|^Error:' "$WORK/$n.log" | tail -1)
      log "  $n is not running after its restart: ${why:-see its log}; its data dir is kept in $RESULTS_DIR/data-$n"
      FO_BROKEN+="; $n exited after restart: ${why:-see herd-$n.log}"
      cp -a "$WORK/$n" "$RESULTS_DIR/data-$n"
    done
    break
  fi
  log "herd ready again after $((SECONDS - t_r))s (leader $READY_LEADER)"
  nap 1 # let the restarted member settle, as etcd-3node.sh does
done
herd_stop_all
for n in "${NAMES[@]}"; do [[ -f "$WORK/$n.log" ]] && cp "$WORK/$n.log" "$RESULTS_DIR/herd-$n.log"; done
HERD_ERR_LINES=$(cat "$WORK"/n?.log | grep -c -E 'level=(ERROR|WARN)' || true)
HERD_PANICS=$(cat "$WORK"/n?.log | grep -c -E '^panic:|fatal error:' || true)
log "herd member logs: $HERD_ERR_LINES WARN/ERROR lines, $HERD_PANICS panics (copied to $RESULTS_DIR/herd-n*.log)"

# ---- 6. etcd baseline, same run ----
ETCD_DIR=$RESULTS_DIR/etcd
if [[ $RUN_ETCD == 1 ]]; then
  left=$((MAX_TIME - SECONDS - 15))
  if ((left < 60)); then
    log "not enough time left for the etcd baseline (${left}s); raise MAX_TIME"
  else
    log ""
    log "--- etcd baseline: $KV_HARNESS/etcd-3node.sh FAILOVER_RUNS=$FAILOVER_RUNS MAX_TIME=$left (loadavg $(cut -d' ' -f1-3 /proc/loadavg)) ---"
    run_child "$WORK/etcd.out" $((left + 10)) env GO="$GO" RESULTS_DIR="$ETCD_DIR" FAILOVER_RUNS="$FAILOVER_RUNS" \
      BENCH_DUR="$BENCH_DUR" CLIENTS_HI="$CLIENTS_HI" VALUE_SIZE="$VALUE_SIZE" KEYS="$KEYS" \
      FAILOVER_OP_TIMEOUT="$FAILOVER_OP_TIMEOUT" MAX_TIME="$left" bash "$KV_HARNESS/etcd-3node.sh"
    rc=$?
    cat "$WORK/etcd.out" >>"$LOG"
    log "etcd baseline exit $rc; its results: $ETCD_DIR"
  fi
fi

# ---- 7. summary ----
# etcd rows from the harness's log: a bench RESULT line, then its "cpu share" line.
declare -A E_RES E_CPU
if [[ -f $ETCD_DIR/full.log ]]; then
  while IFS=$'\t' read -r key res cpu; do E_RES[$key]=$res; E_CPU[$key]=$cpu; done < <(
    awk -v hi="$CLIENTS_HI" '
      /^RESULT store=etcd / { r = $0; c = ""; for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                              k = v["op"] (v["clients"] == 1 ? "1" : (v["clients"] == hi ? "hi" : v["clients"])); next }
      /^cpu share over the run/ && r != "" { print k "\t" r "\t" $NF; r = "" }' "$ETCD_DIR/full.log")
fi
ms() { awk -v u="$1" 'BEGIN{ if (u == "") print "-"; else printf "%.2f", u/1000 }'; }
row() { # label key
  local label=$1 key=$2 h=${H_RES[$2]:-} e=${E_RES[$2]:-}
  local hc=- ho=- hp50=- hp99=- he=- ec=- ep50=- ep99=- ee=- 
  if [[ -n "$h" && "$h" != FAILED ]]; then
    ho=$(field "$h" ops_per_s); hp50=$(ms "$(field "$h" p50_us)"); hp99=$(ms "$(field "$h" p99_us)"); he=$(field "$h" errors); hc=${H_CPU[$key]}
  elif [[ "$h" == FAILED ]]; then ho=FAILED
  fi
  if [[ -n "$e" ]]; then
    ec=${E_CPU[$key]}; ep50=$(ms "$(field "$e" p50_us)"); ep99=$(ms "$(field "$e" p99_us)"); ee=$(field "$e" errors)
    e=$(field "$e" ops_per_s)
  else e=-
  fi
  printf '%-22s | %9s %8s %8s %5s %9s | %9s %8s %8s %5s %9s\n' "$label" "$ho" "$hp50" "$hp99" "$he" "$hc" "$e" "$ep50" "$ep99" "$ee" "$ec"
}
fo_stats() { # values...
  if (($# == 0)); then echo "n=0"; return; fi
  local mm; mm=$(printf '%s\n' "$@" | minmax)
  printf 'median %s  min %s  max %s  (n=%d)' "$(printf '%s\n' "$@" | median)" "${mm% *}" "${mm#* }" "$#"
}
E_FO_MS=(); E_FO_EL=(); E_FO_RUNS=0
if [[ -f $ETCD_DIR/full.log ]]; then
  while read -r f e; do
    E_FO_RUNS=$((E_FO_RUNS + 1))
    if awk -v f="$f" 'BEGIN{exit !(f >= 0)}'; then E_FO_MS+=("$f"); E_FO_EL+=("$e"); fi
  done < <(grep '^RESULT mode=failover' "$ETCD_DIR/full.log" | sed -n 's/.* failover_ms=\([^ ]*\).* leader_elected_ms=\([^ ]*\).*/\1 \2/p')
fi

{
  echo ""
  echo "================ herd vs etcd, SUMMARY ($STAMP) ================"
  host_info
  echo "loadavg: start $LOAD_START, end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "herd $HERD_REV: 3 servers on 127.0.0.1, raft-wal with fsync, Raft $TIMERS; $([[ $SECURE == 1 ]] && echo "secure (mTLS between servers, HTTPS API with an ACL token)" || echo "--insecure (plaintext, no ACLs, as etcd runs here)")"
  [[ $RUN_ETCD == 1 ]] && echo "etcd $ETCD_VER: 3 members on 127.0.0.1, fsync, heartbeat 100ms, election 1000ms"
  echo "load: kvbench ($KV_HARNESS), ${VALUE_SIZE} B values, ${KEYS} keys uniform, ${BENCH_DUR} after 1 s warm-up, round-robin over 3 endpoints"
  echo "      herd: -store http (Consul KV API, GETs linearizable by default); etcd: -store etcd (gRPC client v3.5)"
  echo "cpu = % of all $NCPU cores during the run used by the store / kvbench / everything else (noise)"
  echo ""
  printf '%-22s | %9s %8s %8s %5s %9s | %9s %8s %8s %5s %9s\n' "" "herd" "" "" "" "" "etcd" "" "" "" ""
  printf '%-22s | %9s %8s %8s %5s %9s | %9s %8s %8s %5s %9s\n' "test" ops/s p50_ms p99_ms err cpu ops/s p50_ms p99_ms err cpu
  row "put, 1 client" put1
  row "put, $CLIENTS_HI clients" puthi
  [[ $RUN_GET == 1 ]] && row "get lin., $CLIENTS_HI clients" gethi
  echo ""
  echo "failover: SIGKILL the leader during a 1-client put loop, op timeout $FAILOVER_OP_TIMEOUT;"
  echo "failover_ms = kill -> end of the first successful put started after it; elected = a survivor names a new leader"
  echo "  herd failover_ms: $(fo_stats "${H_FO_MS[@]}")"
  echo "  herd elected_ms:  $(fo_stats "${H_FO_EL[@]}")"
  if [[ $RUN_ETCD == 1 ]]; then
    echo "  etcd failover_ms: $(fo_stats "${E_FO_MS[@]}")  [$((E_FO_RUNS - ${#E_FO_MS[@]})) failed]"
    echo "  etcd elected_ms:  $(fo_stats "${E_FO_EL[@]}")"
  fi
  echo "  herd runs: $((${#H_FO_ROWS[@]} - ${#H_FO_MS[@]})) failed of ${#H_FO_ROWS[@]}${FO_BROKEN:+; RECOVERY FAILED at $FO_BROKEN}"
  printf '  %3s %-7s %12s %18s %-10s %10s\n' run killed failover_ms leader_elected_ms new_leader put_errors
  for r in "${H_FO_ROWS[@]}"; do echo "  $r"; done
  if [[ $RUN_ETCD == 1 ]]; then
    echo "  etcd per run (ms): ${E_FO_MS[*]:-none}"
  fi
  echo "herd logs: $HERD_ERR_LINES WARN/ERROR lines, $HERD_PANICS panics"
  echo "total time: ${SECONDS}s; full log: $LOG"
  echo ""
  for k in put1 puthi gethi; do [[ -n "${H_RES[$k]:-}" && "${H_RES[$k]}" != FAILED ]] && echo "${H_RES[$k]}"; done
} | tee -a "$LOG" >"$SUMMARY"
cat "$SUMMARY"
