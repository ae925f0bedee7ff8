#!/usr/bin/env bash
# py_suite.sh NAME -- run tests/scripts/NAME.py KAPPA_BIN TMPDIR in a fresh temp dir: the
# Python suites start `kappa serve` themselves and write its PID to TMPDIR/server.pid, so
# that PID (and only it) is killed here if the suite dies; on failure the end of the server
# log is shown as TAP comments.
set -uo pipefail
cd "$(dirname "$0")/../../.."
name=$1
KAPPA=${KAPPA_BIN:-build/kappa}
T=$(mktemp -d "${TEST_TMPDIR:-/tmp}/kappa-$name.XXXXXX")
cleanup() {
	if [ -s "$T/server.pid" ]; then
		kill -9 "$(cat "$T/server.pid")" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
python3 "tests/scripts/$name.py" "$KAPPA" "$T"
rc=$?
if [ "$rc" -ne 0 ] && [ -s "$T/server.log" ]; then
	echo "# server log (tail):"
	tail -n 20 "$T/server.log" | sed 's/^/#   /'
fi
exit "$rc"
