#!/usr/bin/env bash
# bench-detect.sh - how fast herd's gossip declares a killed agent failed,
# and that a briefly paused agent is NOT declared failed.
#
#   make bench-detect        (or: bash scripts/bench-detect.sh)
#
# Starts 4 agents on 127.0.0.1 (3 servers n1-n3 and 1 client c1, data dirs
# in a mktemp dir), then:
#   1. KILLS times: SIGKILL one non-leader agent (rotating over the
#      non-leaders), poll the leader's GET /v1/agent/members every POLL_MS
#      until the victim's Status is "failed", and record the time from the
#      kill. Also recorded: the observer's own StatusSince for the change
#      (no polling error), and when the LAST survivor marked it failed. The
#      victim is then restarted from its data dir; the script waits until
#      every agent sees it alive and the cluster serves a put and a
#      linearizable get through every agent, then 1 s more.
#   2. Paused members: for each of a follower server, the client and the
#      leader: SIGSTOP for PAUSE_MS, SIGCONT, and watch every other agent's
#      member list (every POLL_MS, for WATCH_S seconds from the stop) and
#      their logs. Pass = no agent ever marked it failed.
# Prints each time, median/min/max, the pause results (also in
# $RESULTS_DIR/summary.txt).
#
# Environment (defaults in brackets):
#   KILLS [10]  POLL_MS [10]  PAUSE_MS [300]  WATCH_S [3]  PORT_BASE [24200]
#   MAX_TIME [240]  RESULTS_DIR [/tmp/herd-bench/detect-<timestamp>]
#   HERD_SRC [worktree] (or head)  HERD_CONFIG [] (YAML passed to every agent)  GO
set -u -o pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
REPO_ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=scripts/bench-lib.sh
source "$HERE/bench-lib.sh"

KILLS=${KILLS:-10}
POLL_MS=${POLL_MS:-10}
PAUSE_MS=${PAUSE_MS:-300}
WATCH_S=${WATCH_S:-3}
PORT_BASE=${PORT_BASE:-24200}
MAX_TIME=${MAX_TIME:-240}
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS_DIR=${RESULTS_DIR:-/tmp/herd-bench/detect-$STAMP}
NAMES=(n1 n2 n3 c1)
declare -A IDX=([n1]=1 [n2]=2 [n3]=3 [c1]=4) KIND=([n1]=server [n2]=server [n3]=server [c1]=client)
HERD_SERVERS=3

command -v jq >/dev/null || { echo "needs jq (apt-get install -y jq)" >&2; exit 1; }
mkdir -p "$RESULTS_DIR"
LOG=$RESULTS_DIR/full.log
SUMMARY=$RESULTS_DIR/summary.txt
: >"$LOG"

WORK=$(mktemp -d /tmp/herd-bench-detect.XXXXXX)
HERD=$WORK/herd
declare -A PID HTTP GOSSIP RPC
WATCHDOG=""
STOPPED="" # pid currently SIGSTOPped, so cleanup can SIGCONT it

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n "$STOPPED" ]] && kill -CONT "$STOPPED" 2>/dev/null
  bench_finish "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM
start_watchdog

ports=()
for i in 1 2 3 4; do ports+=($((PORT_BASE + i)) $((PORT_BASE + 10 + i)) $((PORT_BASE + 20 + i))); done
ports_free "${ports[@]}" || exit 1

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "== herd failure-detection benchmark $STAMP =="
log "$(host_info); loadavg at start: $LOAD_START"
build_herd "$HERD" >>"$LOG" 2>&1 || { log "herd build failed (see $LOG)"; exit 1; }
log "herd: commit $HERD_REV (from ${HERD_SRC:-worktree})${HERD_CONFIG:+, config $HERD_CONFIG}"

start() { herd_start "$1" "${IDX[$1]}" "${KIND[$1]}"; }

# status_in JSON NODE: set ST to NODE's Status in a /v1/agent/members answer
# (a plain function call: no fork inside the poll loops).
status_in() {
  local re="\"Name\":\"$2\"[^}]*\"Status\":\"([a-z]+)\""
  ST=""
  if [[ $1 =~ $re ]]; then ST=${BASH_REMATCH[1]}; fi
}
# since_us OBSERVER NODE: NODE's StatusSince on OBSERVER, in µs since the epoch.
since_us() {
  local ts
  ts=$(curl -s -m 1 "http://127.0.0.1:${HTTP[$1]}/v1/agent/members" | jq -r --arg n "$2" '.[] | select(.Name == $n) | .StatusSince')
  [[ -n "$ts" && "$ts" != null ]] && date -d "$ts" +%s%6N
}
# all_see STATUS NODE LIMIT_S: every other live agent reports NODE with STATUS.
all_see() {
  local st=$1 node=$2 limit=$3 t0=$SECONDS o ok
  while :; do
    ok=1
    for o in "${NAMES[@]}"; do
      [[ $o == "$node" ]] && continue
      [[ "$(member_status "$o" "$node")" == "$st" ]] || { ok=0; break; }
    done
    ((ok)) && return 0
    ((SECONDS - t0 >= limit)) && return 1
    nap 0.02
  done
}
# pace NEXT_US: sleep until NEXT_US (µs since the epoch), if it is ahead.
pace() {
  local d=$(($1 - $(now_us)))
  ((d > 0)) && nap "$(printf '%d.%06d' $((d / 1000000)) $((d % 1000000)))"
}
us2ms() { awk -v u="$1" 'BEGIN{printf "%.1f", u/1000}'; }

log "starting 3 servers and 1 client (data under $WORK) ..."
for n in "${NAMES[@]}"; do start "$n"; done
herd_wait_ready 30 "${NAMES[@]}" || { log "cluster not ready"; exit 1; }
for n in "${NAMES[@]}"; do all_see alive "$n" 15 || { log "not every agent sees $n alive"; exit 1; }; done
log "ready, leader $READY_LEADER; pids $(for n in "${NAMES[@]}"; do printf '%s=%s ' "$n" "${PID[$n]}"; done)"

# ---- 1. kill -> failed ----
declare -a ROWS DET SINCE_D LAST_D
FAILURES=""
for run in $(seq "$KILLS"); do
  leader=$(leader_seen_by n1); [[ -z "$leader" ]] && leader=$(leader_seen_by n2)
  cands=()
  for n in "${NAMES[@]}"; do [[ $n != "$leader" ]] && cands+=("$n"); done
  victim=${cands[$(((run - 1) % ${#cands[@]}))]}
  observer=$leader
  url="http://127.0.0.1:${HTTP[$observer]}/v1/agent/members"
  status_in "$(curl -s -m 1 "$url")" "$victim"
  [[ $ST == alive ]] || { log "run $run: $victim not alive on $observer before the kill"; FAILURES+=" run$run:not-alive-before"; break; }
  log ""
  log "--- kill run $run/$KILLS: SIGKILL $victim (${KIND[$victim]}, pid ${PID[$victim]}), observer $observer (leader), loadavg $(cut -d' ' -f1-3 /proc/loadavg) ---"
  t_kill=$(now_us)
  kill -KILL "${PID[$victim]}"
  polls=0; det=""; next=$t_kill
  while :; do
    body=$(curl -s -m 0.5 "$url")
    now=$(now_us); polls=$((polls + 1))
    status_in "$body" "$victim"
    if [[ $ST == failed ]]; then det=$((now - t_kill)); break; fi
    ((now - t_kill > 15000000)) && break
    next=$((next + POLL_MS * 1000)); pace "$next"
  done
  if [[ -z "$det" ]]; then
    log "run $run: $victim NOT marked failed by $observer within 15 s"
    ROWS+=("$(printf '%3s %-3s %-7s %-4s %s' "$run" "$victim" "${KIND[$victim]}" "$observer" "NOT DETECTED in 15 s")")
    FAILURES+=" run$run:not-detected"
  else
    s_us=$(since_us "$observer" "$victim"); sd=$((s_us - t_kill))
    # when did the last survivor mark it failed?
    last=""
    if all_see failed "$victim" 10; then
      last=0
      for o in "${NAMES[@]}"; do
        [[ $o == "$victim" ]] && continue
        s=$(since_us "$o" "$victim"); ((s - t_kill > last)) && last=$((s - t_kill))
      done
    fi
    cadence=$(awk -v d="$det" -v p="$polls" 'BEGIN{printf "%.1f", d/1000/p}')
    log "$victim failed on $observer: polled $(us2ms "$det") ms after the kill ($polls polls, one per $cadence ms); its StatusSince says $(us2ms "$sd") ms; last survivor: ${last:+$(us2ms "$last") ms}"
    DET+=("$(us2ms "$det")"); SINCE_D+=("$(us2ms "$sd")"); [[ -n "$last" ]] && LAST_D+=("$(us2ms "$last")")
    ROWS+=("$(printf '%3s %-3s %-7s %-4s %10s %14s %15s %9s' "$run" "$victim" "${KIND[$victim]}" "$observer" \
      "$(us2ms "$det")" "$(us2ms "$sd")" "${last:+$(us2ms "$last")}" "$cadence")")
  fi
  t_r=$SECONDS
  start "$victim"
  if ! all_see alive "$victim" 30 || ! herd_wait_ready 30 "${NAMES[@]}"; then
    log "run $run: $victim did not come back (alive everywhere + put/get through every agent) within 30 s of its restart"
    FAILURES+=" run$run:no-rejoin"
    if ! alive "${PID[$victim]}"; then
      why=$(grep -m1 -E '^panic:|^fatal error:|^Error:' "$WORK/$victim.log" | tail -1)
      log "  $victim is not running: ${why:-see its log}; data dir kept in $RESULTS_DIR/data-$victim"
      FAILURES+="($victim exited: ${why:-see herd-$victim.log})"
      cp -a "$WORK/$victim" "$RESULTS_DIR/data-$victim"
    fi
    break
  fi
  log "$victim alive again everywhere and cluster ready $((SECONDS - t_r)) s after the restart"
  nap 1
done

# ---- 2. paused members ----
declare -a PROWS
PAUSE_FAILS=0
leader=$(leader_seen_by n1)
follower=""; for n in n1 n2 n3; do [[ $n != "$leader" ]] && { follower=$n; break; }; done
for target in "$follower" c1 "$leader"; do
  [[ -z "$target" ]] && continue
  others=(); urls=()
  for o in "${NAMES[@]}"; do [[ $o != "$target" ]] && { others+=("$o"); urls+=("http://127.0.0.1:${HTTP[$o]}/v1/agent/members"); }; done
  all_see alive "$target" 10 || log "warning: $target not alive everywhere before its pause"
  declare -A s_before=() fails_before=() susp_before=()
  for o in "${others[@]}"; do
    s_before[$o]=$(since_us "$o" "$target")
    fails_before[$o]=$(grep -c "msg=\"member failed\".* node=$target addr=" "$WORK/$o.log")
    susp_before[$o]=$(grep -c "Suspect $target has failed" "$WORK/$o.log")
  done
  term_before=$(curl -s -m 1 "http://127.0.0.1:${HTTP[${others[0]}]}/v1/agent/self" | jq -r '.Raft.term // empty')
  lead_before=$(leader_seen_by "${others[0]}")
  log ""
  log "--- pause: SIGSTOP $target (${KIND[$target]}$([[ $target == "$leader" ]] && echo ", Raft leader"), pid ${PID[$target]}) for ${PAUSE_MS} ms, loadavg $(cut -d' ' -f1-3 /proc/loadavg) ---"
  t0=$(now_us)
  kill -STOP "${PID[$target]}"; STOPPED=${PID[$target]}
  resume=$((t0 + PAUSE_MS * 1000)); t1=""
  maybe_resume() {
    if [[ -z $t1 ]] && (($(now_us) >= resume)); then
      kill -CONT "${PID[$target]}"; t1=$(now_us); STOPPED=""
    fi
  }
  declare -A first_failed=()
  polls=0; next=$t0
  # poll every other agent during the pause and for WATCH_S in all
  while (($(now_us) - t0 < WATCH_S * 1000000)); do
    maybe_resume
    mapfile -t bodies < <(curl -s -m 0.5 -w '\n' "${urls[@]}")
    polls=$((polls + 1))
    for k in "${!others[@]}"; do
      o=${others[$k]}
      status_in "${bodies[$k]:-}" "$target"
      if [[ -z "${first_failed[$o]:-}" && $ST == failed ]]; then
        first_failed[$o]=$(us2ms $(($(now_us) - t0)))
      fi
    done
    maybe_resume
    next=$((next + POLL_MS * 1000))
    if [[ -z $t1 ]] && ((resume < next)); then pace "$resume"; else pace "$next"; fi
  done
  maybe_resume
  seen_failed=""
  for o in "${!first_failed[@]}"; do seen_failed+=" $o@${first_failed[$o]}ms"; done
  unset first_failed
  flapped=""; logfail=""; susp=0
  for o in "${others[@]}"; do
    [[ "$(since_us "$o" "$target")" != "${s_before[$o]}" ]] && flapped+=" $o"
    (($(grep -c "msg=\"member failed\".* node=$target addr=" "$WORK/$o.log") > ${fails_before[$o]})) && logfail+=" $o"
    susp=$((susp + $(grep -c "Suspect $target has failed" "$WORK/$o.log") - ${susp_before[$o]}))
  done
  term_after=$(curl -s -m 1 "http://127.0.0.1:${HTTP[${others[0]}]}/v1/agent/self" | jq -r '.Raft.term // empty')
  lead_after=$(leader_seen_by "${others[0]}")
  verdict=PASS
  if [[ -n "$seen_failed$flapped$logfail" ]]; then verdict=FAIL; PAUSE_FAILS=$((PAUSE_FAILS + 1)); fi
  raftnote="leader $lead_before -> $lead_after, term $term_before -> $term_after"
  log "paused $(us2ms $((t1 - t0))) ms; $polls polls of ${#others[@]} agents over ${WATCH_S} s; suspicions logged: $susp; marked failed:${seen_failed:- none}; status changes:${flapped:- none}; 'member failed' log lines:${logfail:- none}; $raftnote => $verdict"
  PROWS+=("$(printf '%-3s %-7s %-7s %9s %11s %-22s %-8s %s' "$target" "${KIND[$target]}" "$([[ $target == "$leader" ]] && echo leader || echo -)" \
    "$(us2ms $((t1 - t0)))" "$susp" "${seen_failed:-no}${flapped:+ flap:$flapped}${logfail:+ log:$logfail}" "$verdict" "$raftnote")")
  unset s_before fails_before susp_before
  nap 1
done

stats() {
  if (($# == 0)); then echo "n=0"; return; fi
  local mm; mm=$(printf '%s\n' "$@" | minmax)
  printf 'median %s  min %s  max %s  (n=%d)' "$(printf '%s\n' "$@" | median)" "${mm% *}" "${mm#* }" "$#"
}
HERD_ERR=$(cat "$WORK"/*.log | grep -c -E 'level=ERROR' || true)
HERD_PANICS=$(cat "$WORK"/*.log | grep -c -E '^panic:|fatal error:' || true)
{
  echo ""
  echo "================ herd failure detection, SUMMARY ($STAMP) ================"
  host_info
  echo "loadavg: start $LOAD_START, end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "herd $HERD_REV: 3 servers + 1 client agent on 127.0.0.1; gossip = memberlist, probe 200ms (herd's Tune)"
  echo ""
  echo "SIGKILL a non-leader agent; the leader's /v1/agent/members polled every ${POLL_MS} ms until Status=failed."
  echo "  polled = kill -> poll that saw 'failed'; since = observer's StatusSince - kill; last = the last survivor's StatusSince - kill"
  printf '%3s %-3s %-7s %-4s %10s %14s %15s %9s\n' run vic role obs polled_ms since_ms last_surv_ms poll_ms
  for r in "${ROWS[@]}"; do echo "$r"; done
  echo "  polled:    $(stats "${DET[@]}")"
  echo "  since:     $(stats "${SINCE_D[@]}")"
  echo "  last surv: $(stats "${LAST_D[@]}")"
  [[ -n "$FAILURES" ]] && echo "  PROBLEMS:$FAILURES"
  echo ""
  echo "SIGSTOP for ${PAUSE_MS} ms, SIGCONT; watched every other agent for ${WATCH_S} s (status polls, StatusSince, logs). Must not be marked failed."
  printf '%-3s %-7s %-7s %9s %11s %-22s %-8s %s\n' who role raft paused_ms suspicions marked_failed verdict raft
  for r in "${PROWS[@]}"; do echo "$r"; done
  echo "  paused-member check: $([[ $PAUSE_FAILS == 0 ]] && echo "PASS (no agent marked a paused member failed)" || echo "FAIL ($PAUSE_FAILS of ${#PROWS[@]} pauses led to a failed verdict)")"
  echo "herd logs: $HERD_ERR ERROR lines, $HERD_PANICS panics (in $RESULTS_DIR/herd-*.log)"
  echo "total time: ${SECONDS}s; full log: $LOG"
} | tee -a "$LOG" >"$SUMMARY"
cat "$SUMMARY"
[[ -z "$FAILURES" ]]
