#!/usr/bin/env bash
# run.sh -- the torture run (tests/torture/torture.py) in a fresh temp dir: kappa serve
# killed with SIGKILL and restarted TORTURE_ROUNDS times (default 500) under load. The PID
# of the server it runs is kept in the temp dir and killed here (only it) if the run dies;
# on failure the end of the server log is shown as TAP comments. `make torture` runs it.
set -uo pipefail
cd "$(dirname "$0")/../.."
KAPPA=${KAPPA_BIN:-build/kappa}
T=$(mktemp -d "${TEST_TMPDIR:-/tmp}/kappa-torture.XXXXXX")
cleanup() {
	if [ -s "$T/server.pid" ]; then
		kill -CONT "$(cat "$T/server.pid")" 2>/dev/null
		kill -9 "$(cat "$T/server.pid")" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
python3 tests/torture/torture.py "$KAPPA" "$T"
rc=$?
if [ "$rc" -ne 0 ] && [ -s "$T/server.log" ]; then
	echo "# server log (tail):"
	grep -v 'status=50[37]' "$T/server.log" | tail -n 20 | sed 's/^/#   /'
fi
exit "$rc"
