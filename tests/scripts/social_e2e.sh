#!/usr/bin/env bash
# social_e2e.sh -- the social-network example end to end: a real `kappa serve` with
# --views examples/social/views on an empty data directory, driven over HTTP by
# tests/scripts/social_e2e.py (registrations and claims, follows, posts, the hybrid home
# timeline, likes and comments, search, who_to_follow, suspicious(), analytics, account
# deletion, query plans, and a rebuild of every view that must answer exactly as before).
# The server listens on 127.0.0.1 only and is stopped by its PID.
set -uo pipefail
cd "$(dirname "$0")/../.."
KAPPA=${KAPPA_BIN:-build/kappa}
T=$(mktemp -d "${TEST_TMPDIR:-/tmp}/kappa-social.XXXXXX")
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
PID=
cleanup() {
	if [ -n "$PID" ]; then
		kill "$PID" 2>/dev/null
		wait "$PID" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

"$KAPPA" serve --data "$T/data" --views examples/social/views --listen "127.0.0.1:$PORT" 2>"$T/server.log" &
PID=$!
for _ in $(seq 1 200); do
	curl -s -m 1 "$BASE/health" >/dev/null 2>&1 && break
	sleep 0.05
done

python3 tests/scripts/social_e2e.py "$BASE" examples/social/views "$T/count"
rc=$?
n=$(cat "$T/count" 2>/dev/null || echo 0)
n=$((n + 1))
kill -TERM "$PID"
wait "$PID"
src=$?
PID=
if [ "$src" = 0 ] && grep -q 'event=stopped' "$T/server.log"; then
	echo "ok $n - the server stops cleanly on SIGTERM (exit 0, and no sanitizer report)"
else
	echo "not ok $n - the server stops cleanly on SIGTERM (exit 0, and no sanitizer report)"
	echo "# exit status $src"
	rc=1
fi
echo "1..$n"
if [ "$rc" -ne 0 ]; then
	echo "# server log (tail):"
	tail -n 20 "$T/server.log" | sed 's/^/#   /'
fi
exit "$rc"
