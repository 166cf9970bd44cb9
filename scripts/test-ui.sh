#!/usr/bin/env bash
# test-ui.sh - the dashboard in a real browser: installs Debian's chromium
# when it is missing (as root, from the Debian mirrors), then runs
# TestDashboardInABrowser with the browser required. Screenshots go to
# $HERD_ARTIFACTS (default /tmp/herd-ui-artifacts).
#
# With SKIP_IF_UNAVAILABLE=1 (what .ci/run sets) a machine where chromium
# cannot be installed skips the test, saying so, instead of failing.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
if ! command -v chromium >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]]; then
    echo "test-ui: installing chromium from Debian ..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/tmp/herd-test-ui-apt.log 2>&1 ||
      echo "test-ui: apt-get install chromium failed (see /tmp/herd-test-ui-apt.log)"
  fi
fi
if ! command -v chromium >/dev/null 2>&1; then
  if [[ ${SKIP_IF_UNAVAILABLE:-0} == 1 ]]; then
    echo "test-ui: SKIPPED: no chromium on this machine and none could be installed"
    exit 0
  fi
  echo "test-ui: no chromium (apt-get install chromium)" >&2
  exit 1
fi
HERD_UI_TEST=required "$GO" test -count=1 -run 'TestDashboardInABrowser' -v ./internal/ui
