#!/usr/bin/env bash
# server_crash.sh -- kappa serve killed with SIGKILL and restarted on the same port and data
# directory 5 times while 200 keep-alive clients append with request ids, expected versions
# and claims, retrying what a kill interrupted; then the whole log must hold every
# acknowledged append exactly once at its acknowledged positions, positions and versions
# dense, claims unique, and `kappa check` must pass (tests/scripts/server_crash.py). The
# server listens on 127.0.0.1 only; the helper writes the PID of the running server to
# $T/server.pid, and only that PID is killed here if the helper dies.
set -uo pipefail
cd "$(dirname "$0")/../.."
KAPPA=${KAPPA_BIN:-build/kappa}
T=$(mktemp -d "${TEST_TMPDIR:-/tmp}/kappa-crash.XXXXXX")
cleanup() {
	if [ -s "$T/server.pid" ]; then
		kill -9 "$(cat "$T/server.pid")" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
python3 tests/scripts/server_crash.py "$KAPPA" "$T"
rc=$?
if [ "$rc" -ne 0 ] && [ -s "$T/server.log" ]; then
	echo "# server log (tail):"
	grep -v '^kappa: event=listening' "$T/server.log" | tail -n 20 | sed 's/^/#   /'
fi
exit "$rc"
