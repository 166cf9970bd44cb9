#!/usr/bin/env bash
# e2e.sh - the multi-host suite: builds the static herd binary and the
# herd:e2e image (deploy/Dockerfile, FROM scratch), then runs the scenarios
# in internal/e2e (build tag e2e), which start 5 agents as containers on a
# private bridge network, drive faults and print a report. Container logs
# of a failed run go to $HERD_ARTIFACTS (default /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
ctx=$(mktemp -d /tmp/herd-e2e-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
CGO_ENABLED=0 "$GO" build -o "$ctx/herd" ./cmd/herd
# The test backend the workload scenarios run as replicas (exec driver).
CGO_ENABLED=0 "$GO" build -o "$ctx/webserver" ./internal/agent/testdata/webserver
{ cat deploy/Dockerfile; echo 'COPY webserver /webserver'; } > "$ctx/Dockerfile"
docker build -q -t herd:e2e "$ctx" >/dev/null
echo "e2e: image herd:e2e built; running the scenarios ..."
"$GO" test -tags e2e -count=1 -timeout 12m -v ./internal/e2e
