#!/usr/bin/env bash
# server_bad_input.sh -- kappa serve against a table of bad requests: every one answered with
# its documented status and {"error":{"code","message"}}, nothing written, the server alive
# and still taking good appends afterwards (tests/scripts/server_bad_input.py). The server
# listens on 127.0.0.1 only; the helper writes its PID to $T/server.pid, and only that PID is
# killed here if the helper dies.
set -uo pipefail
cd "$(dirname "$0")/../.."
KAPPA=${KAPPA_BIN:-build/kappa}
T=$(mktemp -d "${TEST_TMPDIR:-/tmp}/kappa-badinput.XXXXXX")
cleanup() {
	if [ -s "$T/server.pid" ]; then
		kill -9 "$(cat "$T/server.pid")" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
python3 tests/scripts/server_bad_input.py "$KAPPA" "$T"
rc=$?
if [ "$rc" -ne 0 ] && [ -s "$T/server.log" ]; then
	echo "# server log (tail):"
	tail -n 20 "$T/server.log" | sed 's/^/#   /'
fi
exit "$rc"
