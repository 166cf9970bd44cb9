#!/usr/bin/env bash
# bench-security.sh - what security costs, in one run on this machine:
#   1. KV put throughput of a 3-server loopback cluster, secure (herd's
#      default: mutual TLS 1.3 between servers, HTTPS API with an ACL token)
#      against --insecure (plaintext, no ACLs), ROUNDS alternating runs of
#      scripts/bench-kv.sh each (RUN_ETCD=0, no failover); the load generator
#      reuses its connections (kvbench: one HTTP/1.1 keep-alive pool);
#   2. the time for a new client node to join with a token: from starting
#      "herd agent --join ... --token ..." to the cluster listing it alive,
#      JOIN_RUNS times, against a plaintext join (--insecure, no token).
#
#   make bench-security        (or: bash scripts/bench-security.sh)
#
# Environment (defaults in brackets):
#   ROUNDS [3]  BENCH_DUR [10s]  CLIENTS_HI [64]  JOIN_RUNS [10]  PORT_BASE [24300]
#   RESULTS_DIR [/tmp/herd-bench/security-<timestamp>]  HERD_SRC [worktree]
set -u -o pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=scripts/bench-lib.sh
source "$HERE/bench-lib.sh"

ROUNDS=${ROUNDS:-3}
BENCH_DUR=${BENCH_DUR:-10s}
CLIENTS_HI=${CLIENTS_HI:-64}
JOIN_RUNS=${JOIN_RUNS:-10}
PORT_BASE=${PORT_BASE:-24300}
MAX_TIME=${MAX_TIME:-900}
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS_DIR=${RESULTS_DIR:-/tmp/herd-bench/security-$STAMP}
mkdir -p "$RESULTS_DIR"
LOG=$RESULTS_DIR/full.log
SUMMARY=$RESULTS_DIR/summary.txt
: >"$LOG"

WORK=$(mktemp -d /tmp/herd-bench-sec.XXXXXX)
HERD=$WORK/herd
NAMES=(n1)
HERD_SERVERS=1
declare -A PID HTTP GOSSIP RPC
WATCHDOG=""
trap 'bench_finish $?' EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM
start_watchdog

log "== herd security cost benchmark $STAMP =="
log "$(host_info); loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
build_herd "$HERD" >>"$LOG" 2>&1 || { log "herd build failed (see $LOG)"; exit 1; }
log "herd $HERD_REV"

# ---- 1. KV puts, secure vs insecure, alternating ----
declare -A OPS CPU
for round in $(seq "$ROUNDS"); do
  for secure in 0 1; do
    out=$RESULTS_DIR/kv-round$round-secure$secure
    log ""
    log "--- round $round/$ROUNDS, SECURE=$secure: bench-kv.sh (loadavg $(cut -d' ' -f1-3 /proc/loadavg)) ---"
    SECURE=$secure RUN_ETCD=0 RUN_GET=0 FAILOVER_RUNS=0 BENCH_DUR=$BENCH_DUR CLIENTS_HI=$CLIENTS_HI \
      HERD_SRC=${HERD_SRC:-worktree} RESULTS_DIR=$out PORT_BASE=$((PORT_BASE + 50)) MAX_TIME=200 \
      bash "$HERE/bench-kv.sh" >>"$LOG" 2>&1
    for k in 1 "$CLIENTS_HI"; do
      r=$(grep "^RESULT store=http clients=$k ops_per_s=" "$out/summary.txt" | tail -1)
      v=$(field "$r" ops_per_s)
      OPS[$secure,$k]+="${v:-FAILED} "
      # herd's CPU per put (µs): its share of the cores over the row
      # (the summary's cpu column, herd/kvbench/other %) / ops.
      label="put, 1 client"; [[ $k != 1 ]] && label="put, $k clients"
      share=$(grep "^$label " "$out/summary.txt" | awk -F'|' '{split($2, f, " "); split(f[5], c, "/"); print c[1]}')
      cpu=$(awk -v s="$share" -v n="$NCPU" -v o="$v" 'BEGIN{ if (o > 0 && s != "") printf "%.0f", s/100*n*1e6/o; else print "n/a" }')
      CPU[$secure,$k]+="$cpu "
      log "SECURE=$secure put clients=$k: ${v:-FAILED} ops/s, p99 $(field "$r" p99_us) us, herd CPU ${cpu} us/put (herd used ${share:-?}% of the cores)"
    done
  done
done

# ---- 2. join time ----
# One secure server (n1); a client joins with a token, is seen alive, and is
# stopped and wiped; then the same with --insecure.
join_time() { # secure name -> prints ms
  local secure=$1 n=$2 t0 t1
  t0=$(now_us)
  SECURE=$secure herd_start "$n" 4 client # secure: --retry-join n1 --token $JOIN_CLIENT
  while :; do
    [[ "$(SECURE=$secure member_status n1 "$n")" == alive ]] && break
    if (($(now_us) - t0 > 30000000)); then echo "FAILED"; return; fi
    nap 0.01
  done
  t1=$(now_us)
  kill -TERM "${PID[$n]}" 2>/dev/null
  for _ in $(seq 200); do alive "${PID[$n]}" || break; nap 0.1; done
  alive "${PID[$n]}" && kill -KILL "${PID[$n]}" 2>/dev/null
  awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", (b-a)/1000}'
}
JOIN=()
for secure in 1 0; do
  rm -rf "${WORK:?}/n1"
  SECURE=$secure herd_start n1 1 server
  if [[ $secure == 1 ]]; then
    SECURE=1 herd_secure_bootstrap n1 || exit 1
  fi
  SECURE=$secure herd_wait_ready 30 n1 || { log "n1 not ready"; exit 1; }
  ms=()
  for run in $(seq "$JOIN_RUNS"); do
    # A new name each time: a node rejoining under the name of one that
    # just left first has to refute its own departure, which is another
    # case.
    m=$(join_time "$secure" "j$secure-$run")
    ms+=("$m")
    log "join run $run SECURE=$secure: $m ms"
  done
  JOIN[$secure]="${ms[*]}"
  kill -TERM "${PID[n1]}"; for _ in $(seq 50); do alive "${PID[n1]}" || break; nap 0.1; done
done

stats() { # values... -> median min max
  local mm; mm=$(printf '%s\n' "$@" | grep -v FAILED | minmax)
  printf 'median %s  min %s  max %s' "$(printf '%s\n' "$@" | grep -v FAILED | median)" "${mm% *}" "${mm#* }"
}
{
  echo ""
  echo "================ herd security cost, SUMMARY ($STAMP) ================"
  host_info
  echo "herd $HERD_REV; 3 servers on 127.0.0.1 (bench-kv.sh: kvbench, 256 B values, $BENCH_DUR, keep-alive connections)"
  echo "secure = herd's default (mTLS 1.3 between servers, HTTPS API + ACL token); insecure = --insecure"
  echo ""
  printf '%-18s | %-40s | %-40s | %s\n' "put" "insecure ops/s per round" "secure ops/s per round" "secure/insecure (medians)"
  for k in 1 "$CLIENTS_HI"; do
    # shellcheck disable=SC2086
    mi=$(printf '%s\n' ${OPS[0,$k]} | median); ms=$(printf '%s\n' ${OPS[1,$k]} | median)
    printf '%-18s | %-40s | %-40s | %s\n' "$k client(s)" "${OPS[0,$k]}" "${OPS[1,$k]}" "$(awk -v a="$ms" -v b="$mi" 'BEGIN{printf "%.3f", a/b}')"
  done
  echo ""
  printf '%-18s | %-40s | %-40s | %s\n' "herd CPU per put" "insecure us per round" "secure us per round" "secure/insecure (medians)"
  for k in 1 "$CLIENTS_HI"; do
    # shellcheck disable=SC2086
    mi=$(printf '%s\n' ${CPU[0,$k]} | median); ms=$(printf '%s\n' ${CPU[1,$k]} | median)
    printf '%-18s | %-40s | %-40s | %s\n' "$k client(s)" "${CPU[0,$k]}" "${CPU[1,$k]}" "$(awk -v a="$ms" -v b="$mi" 'BEGIN{printf "%.3f", a/b}')"
  done
  echo ""
  # shellcheck disable=SC2086
  echo "join a client node, start -> alive in the cluster's member list (ms):"
  # shellcheck disable=SC2086
  echo "  with a token (secure): $(stats ${JOIN[1]})   runs: ${JOIN[1]}"
  # shellcheck disable=SC2086
  echo "  plaintext (insecure):  $(stats ${JOIN[0]})   runs: ${JOIN[0]}"
  echo "total time: ${SECONDS}s; full log: $LOG"
} | tee -a "$LOG" >"$SUMMARY"
cat "$SUMMARY"
