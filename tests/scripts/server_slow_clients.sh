#!/usr/bin/env bash
# server_slow_clients.sh -- kappa serve with 100 slowloris-style connections (headers a byte
# a second, bodies a few bytes a second, silent, slow readers of a 10 MB /log page) while
# normal clients append and read: every normal request must succeed within 2 s, the partial
# requests write nothing, and the server stays alive; what it did with the slow ones is
# printed (tests/scripts/server_slow_clients.py). The server listens on 127.0.0.1 only; the
# helper writes its PID to $T/server.pid, and only that PID is killed here if the helper dies.
set -uo pipefail
cd "$(dirname "$0")/../.."
KAPPA=${KAPPA_BIN:-build/kappa}
T=$(mktemp -d "${TEST_TMPDIR:-/tmp}/kappa-slow.XXXXXX")
cleanup() {
	if [ -s "$T/server.pid" ]; then
		kill -9 "$(cat "$T/server.pid")" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
python3 tests/scripts/server_slow_clients.py "$KAPPA" "$T"
rc=$?
if [ "$rc" -ne 0 ] && [ -s "$T/server.log" ]; then
	echo "# server log (tail):"
	tail -n 20 "$T/server.log" | sed 's/^/#   /'
fi
exit "$rc"
