#!/usr/bin/env bash
# bench-proxy-engine.sh - the bare proxy engine (internal/proxy) against nginx,
# HAProxy, Caddy and httputil.ReverseProxy on this machine, side by side.
#
#   bash scripts/bench-proxy-engine.sh
#
# Builds internal/proxy/benchproxy (the engine with a trivial round-robin
# Director over the harness's 3 backends, no retries) and runs
# ../shared/bench/lb-compare.sh with it as "herd-engine", twice: with Go's
# default GOMAXPROCS and with PROXY_GOMAXPROCS=1 (see the harness README for
# why both). Then the in-process Go benchmark (ns/op, allocs/op).
#
# Environment: ROUNDS [2] DURATION [10] LB_HARNESS [$REPO_ROOT/../shared/bench]
#   BIN [/tmp/herd-benchproxy] MODES ["default 1"] (GOMAXPROCS settings to run)
set -u -o pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LB_HARNESS=${LB_HARNESS:-$REPO_ROOT/../shared/bench}
BIN=${BIN:-/tmp/herd-benchproxy}
MODES=${MODES:-"default 1"}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

(cd "$REPO_ROOT" && "$GO" build -o "$BIN" ./internal/proxy/benchproxy) || { echo "build failed" >&2; exit 1; }

for mode in $MODES; do
	echo "=== herd-engine, GOMAXPROCS=$mode"
	if [[ $mode == default ]]; then
		env -u PROXY_GOMAXPROCS PROXY_NAME=herd-engine PROXY_CMD="exec $BIN -listen 127.0.0.1:\$PROXY_PORT -backends \$BACKENDS" \
			bash "$LB_HARNESS/lb-compare.sh" | grep -E '^RESULT|^proxy|^ *(direct|nginx|haproxy|caddy|go-httputil|herd-engine) '
	else
		PROXY_GOMAXPROCS=$mode PROXY_NAME=herd-engine PROXY_CMD="exec $BIN -listen 127.0.0.1:\$PROXY_PORT -backends \$BACKENDS" \
			bash "$LB_HARNESS/lb-compare.sh" | grep -E '^RESULT|^proxy|^ *(direct|nginx|haproxy|caddy|go-httputil|herd-engine) '
	fi
done

echo "=== go test -bench BenchmarkProxyGET"
(cd "$REPO_ROOT" && "$GO" test -run '^$' -bench BenchmarkProxyGET -benchtime 20000x -count 3 ./internal/proxy/)
