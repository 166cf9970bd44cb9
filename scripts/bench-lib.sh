# shellcheck shell=bash disable=SC2034
# bench-lib.sh - shared helpers for scripts/bench-kv.sh and scripts/bench-detect.sh.
# Source it; it defines functions and a few variables (and opens one fd for nap).
#
# The caller sets before using the herd_* functions:
#   HERD       path of the herd binary
#   WORK       scratch dir (data dirs and member logs go here)
#   LOG        the run's log file
# and declares:  declare -A PID HTTP GOSSIP RPC
# Ports: member i (1-based) gets HTTP PORT_BASE+i, gossip PORT_BASE+10+i,
# Raft RPC PORT_BASE+20+i.
#
# SECURE [0]: 0 runs every agent with --insecure (plaintext, no ACLs), as the
# peers we compare with run; 1 runs herd's default, secure mode: the first
# member (n1) creates the cluster, herd_secure_bootstrap makes the
# management token (TOKEN) and the join tokens, and the others join with
# them. hcurl and api_base reach the API either way.
SECURE=${SECURE:-0}
TOKEN="" CA="" JOIN_SERVER="" JOIN_CLIENT=""

REPO_ROOT=${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

log() { echo "$*" | tee -a "$LOG"; }

# now_us: wall clock in µs, from bash's $EPOCHREALTIME (no fork; needs LC_ALL=C).
now_us() { echo "${EPOCHREALTIME/./}"; }

# alive PID: running and not a zombie.
alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }

# Sleep without forking /bin/sleep (read -t on a pipe nobody writes to).
exec {_NAP_FD}<> <(:)
nap() { read -rt "$1" -u "$_NAP_FD" _ || true; }

median() { # numbers on stdin, one a line
  sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "n/a"; exit} if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'
}
minmax() { sort -n | awk 'NR==1{mn=$1} {mx=$1} END {if (NR) printf "%s %s\n", mn, mx; else print "n/a n/a"}'; }

# field LINE NAME: value of NAME=... in a RESULT line.
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }

ports_free() { # port...
  local p
  for p in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "port $p on 127.0.0.1 is already in use; set PORT_BASE" >&2
      return 1
    fi
  done
}

# build_herd OUT: build ./cmd/herd into OUT, from the working tree
# (HERD_SRC=worktree, default) or from a clean export of HEAD (HERD_SRC=head,
# for figures that must match a commit while others edit the tree).
# Sets HERD_REV to the short commit, with "+dirty" when the working tree
# differs from HEAD and was used.
build_herd() {
  local out=$1 src=${HERD_SRC:-worktree}
  HERD_REV=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  case $src in
    worktree)
      if [[ -n "$(git -C "$REPO_ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
        HERD_REV+="+dirty"
      fi
      (cd "$REPO_ROOT" && "$GO" build -o "$out" ./cmd/herd) ;;
    head)
      local tmp; tmp=$(mktemp -d /tmp/herd-src.XXXXXX)
      git -C "$REPO_ROOT" archive HEAD | tar -x -C "$tmp" &&
        (cd "$tmp" && "$GO" build -o "$out" ./cmd/herd)
      local rc=$?; rm -rf "$tmp"; return $rc ;;
    *) echo "HERD_SRC must be worktree or head" >&2; return 2 ;;
  esac
}

# herd_start NAME INDEX server|client [extra flags...]: start (or restart, from
# the same data dir) one agent in the background. Every agent retry-joins all
# servers' gossip ports, so a restarted one finds the others whoever it is.
herd_start() {
  local n=$1 i=$2 role=$3; shift 3
  HTTP[$n]=$((PORT_BASE + i)); GOSSIP[$n]=$((PORT_BASE + 10 + i)); RPC[$n]=$((PORT_BASE + 20 + i))
  local args=(agent --node "$n" --data-dir "$WORK/$n" --bind 127.0.0.1
    --http-port "${HTTP[$n]}" --gossip-port "${GOSSIP[$n]}" --rpc-port "${RPC[$n]}")
  local j
  if [[ $SECURE == 1 ]]; then
    if [[ -d $WORK/$n/tls ]]; then # a restart: join whoever is up
      for ((j = 1; j <= ${HERD_SERVERS:-3}; j++)); do ((j != i)) && args+=(--retry-join "127.0.0.1:$((PORT_BASE + j))"); done
    elif ((i != 1)); then # a new member joins n1 with a token
      local tok=$JOIN_CLIENT; [[ $role == server ]] && tok=$JOIN_SERVER
      args+=(--retry-join "127.0.0.1:$((PORT_BASE + 1))" --token "$tok")
    fi # else n1, the first server, creates the cluster
    [[ $role == server ]] && args+=(--server)
  else
    args+=(--insecure)
    for ((j = 1; j <= ${HERD_SERVERS:-3}; j++)); do args+=(--retry-join "127.0.0.1:$((PORT_BASE + j))"); done
    if [[ $role == server ]]; then args+=(--server --bootstrap-expect "${HERD_SERVERS:-3}"); fi
  fi
  [[ -n "${HERD_CONFIG:-}" ]] && args+=(--config "$HERD_CONFIG")
  echo "=== $(date +%T.%N) start: $HERD ${args[*]} $*" >>"$WORK/$n.log"
  "$HERD" "${args[@]}" "$@" >>"$WORK/$n.log" 2>&1 &
  PID[$n]=$!
  disown "${PID[$n]}" # no job notice when it is SIGKILLed; bash still reaps it
}

# api_base NAME: the base URL of member NAME's API.
api_base() {
  if [[ $SECURE == 1 ]]; then echo "https://127.0.0.1:${HTTP[$1]}"; else echo "http://127.0.0.1:${HTTP[$1]}"; fi
}

# hcurl ARGS...: curl with the cluster's CA and management token when secure.
hcurl() {
  if [[ $SECURE == 1 ]]; then curl --cacert "$CA" -H "Authorization: Bearer $TOKEN" "$@"; else curl "$@"; fi
}

# herd_secure_bootstrap NAME: after the first member NAME started (SECURE=1),
# wait for its CA, make the management token (TOKEN) with "herd acl
# bootstrap" and a server and a client join token. Returns 1 after 30 s.
herd_secure_bootstrap() {
  local n=$1 t0=$SECONDS out
  CA=$WORK/$n/tls/ca.pem
  while :; do
    if [[ -f $CA ]] && out=$("$HERD" --address "127.0.0.1:${HTTP[$n]}" --ca-cert "$CA" acl bootstrap 2>/dev/null); then
      TOKEN=$(sed -n 's/^SecretID: *//p' <<<"$out")
      [[ -n $TOKEN ]] && break
    fi
    ((SECONDS - t0 >= 30)) && { log "no acl bootstrap on $n after 30 s"; return 1; }
    nap 0.1
  done
  JOIN_SERVER=$("$HERD" --address "127.0.0.1:${HTTP[$n]}" --ca-cert "$CA" --token "$TOKEN" token create --role server --ttl 2h 2>/dev/null) &&
    JOIN_CLIENT=$("$HERD" --address "127.0.0.1:${HTTP[$n]}" --ca-cert "$CA" --token "$TOKEN" token create --role client --ttl 2h 2>/dev/null) ||
    { log "token create on $n failed"; return 1; }
}

# herd_stop_all: TERM every live member, KILL what is left after 3 s.
herd_stop_all() {
  local n p
  for n in "${!PID[@]}"; do p=${PID[$n]}; alive "$p" && kill -TERM "$p" 2>/dev/null; done
  for n in "${!PID[@]}"; do
    p=${PID[$n]}
    for _ in $(seq 30); do alive "$p" || break; nap 0.1; done
    alive "$p" && kill -KILL "$p" 2>/dev/null
  done
  return 0
}

# leader_seen_by NAME: the leader's node name according to member NAME ("" if none/unreachable).
leader_seen_by() {
  local out
  out=$(hcurl -s -m 1 "$(api_base "$1")/v1/status/leader?node" 2>/dev/null) || return 0
  out=${out//\"/}
  echo "${out//[[:space:]]/}"
}

# herd_wait_ready LIMIT_S NAME...: until every named agent names the same
# leader, and a PUT then a linearizable GET through each of them succeed
# (so each one is connected and caught up). Returns 1 after LIMIT_S.
herd_wait_ready() {
  local limit=$1; shift
  local t0=$SECONDS n l first ok
  while :; do
    ok=1; first=""
    for n in "$@"; do
      l=$(leader_seen_by "$n")
      if [[ -z "$l" ]] || [[ -n "$first" && "$l" != "$first" ]]; then ok=0; break; fi
      first=$l
    done
    if ((ok)); then
      for n in "$@"; do
        [[ "$(hcurl -s -m 2 -X PUT --data-binary "ready-$n" "$(api_base "$n")/v1/kv/bench/ready/$n" 2>/dev/null)" == true ]] || { ok=0; break; }
        hcurl -sf -m 2 -o /dev/null "$(api_base "$n")/v1/kv/bench/ready/$n" 2>/dev/null || { ok=0; break; }
      done
    fi
    if ((ok)); then READY_LEADER=$first; return 0; fi
    if ((SECONDS - t0 >= limit)); then
      log "not ready after ${limit}s; leaders seen: $(for n in "$@"; do printf '%s->%s ' "$n" "$(leader_seen_by "$n")"; done)"
      return 1
    fi
    nap 0.1
  done
}

# member_status OBSERVER NODE: NODE's Status in OBSERVER's /v1/agent/members.
member_status() {
  hcurl -s -m 1 "$(api_base "$1")/v1/agent/members" 2>/dev/null |
    jq -r --arg n "$2" '.[] | select(.Name == $n) | .Status' 2>/dev/null
}

# ---- CPU accounting (to report how busy the rest of the machine was) ----
# Same method as ../shared/bench/kv/etcd-3node.sh, so that the herd and
# etcd rows compare: busy ticks of the whole machine (user nice system steal
# from /proc/stat; irq/softirq left out, mostly our own loopback traffic)
# minus the store's and kvbench's own CPU time. It also counts the kernel
# threads that do our I/O (a few %).
HZ=$(getconf CLK_TCK)
NCPU=$(nproc)
sys_busy_ticks() { awk '/^cpu /{print $2+$3+$4+$9}' /proc/stat; }

# ticks_of PID...: utime+stime of the given processes (0 for gone ones).
ticks_of() {
  local t=0 p v
  for p in "$@"; do
    v=$(awk '{r=$0; sub(/^.*\) /, "", r); split(r, f, " "); print f[12] + f[13]}' "/proc/$p/stat" 2>/dev/null)
    t=$((t + ${v:-0}))
  done
  echo "$t"
}

host_info() {
  echo "host: $NCPU cores, $(uname -sr), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo); $("$GO" version | cut -d' ' -f3)"
}

# bench_finish RC: the common end of a run: stop every herd member and the
# watchdog, keep the member logs in $RESULTS_DIR, remove $WORK, exit RC.
bench_finish() {
  local rc=$1
  herd_stop_all
  if [[ -n "${WATCHDOG:-}" ]]; then kill "$WATCHDOG" 2>/dev/null; wait "$WATCHDOG" 2>/dev/null; fi
  for n in "${NAMES[@]}"; do [[ -f "$WORK/$n.log" ]] && cp "$WORK/$n.log" "$RESULTS_DIR/herd-$n.log"; done
  rm -rf "$WORK"
  echo "results in $RESULTS_DIR (exit $rc)"
  exit "$rc"
}

# start_watchdog: bound the whole run to $MAX_TIME seconds (1 s sleeps so
# that killing the watchdog leaves nothing behind); sets WATCHDOG.
start_watchdog() {
  (end=$((SECONDS + MAX_TIME)); while ((SECONDS < end)); do sleep 1; done
   echo "watchdog: ${MAX_TIME}s elapsed, stopping" >&2; kill -TERM $$) &
  WATCHDOG=$!
}
