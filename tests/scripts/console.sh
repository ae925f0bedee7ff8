#!/usr/bin/env bash
# console.sh -- the web console in a real browser: a `kappa serve` on 127.0.0.1 (a free
# port) with tokens (--auth-file) and 1 MiB segments, the social example's views and a small generated
# dataset, checked over HTTP (content types, CSP, ETag and 304, 404 for an unknown file,
# no token for the console's files) and then driven in headless Chromium by
# tests/console/console_test.js (playwright-core): every page at desktop and phone sizes
# without console errors, the token dialog, the live tail, a named query, a rebuild.
# Screenshots go to tests/console/out/. The server is stopped by its PID.
set -uo pipefail
cd "$(dirname "$0")/../.."
KAPPA=${KAPPA_BIN:-build/kappa}
GEN=$(dirname "$KAPPA")/kappa-social-gen
T=$(mktemp -d "${TEST_TMPDIR:-/tmp}/kappa-console.XXXXXX")
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
ADMIN=console-admin-token-0123456789
READ=console-read-token-0123456789ab
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

printf '%s admin\n%s read\n' "$ADMIN" "$READ" >"$T/tokens"
chmod 600 "$T/tokens"
"$KAPPA" serve --data "$T/data" --views examples/social/views --listen "127.0.0.1:$PORT" \
	--segment-bytes 1048576 \
	--auth-file "$T/tokens" 2>"$T/server.log" &
PID=$!
for _ in $(seq 1 200); do
	curl -s -m 1 "$BASE/health" >/dev/null 2>&1 && break
	sleep 0.05
done
# A small social network: 300 users, 3,000 posts (about 10,000 events).
if ! "$GEN" --users 300 --posts 3000 --seed 1 | KAPPA_TOKEN=$ADMIN "$KAPPA" import - --url "$BASE" >"$T/import.out"; then
	echo "not ok 1 - the social example loads"
	cat "$T/import.out" | sed 's/^/# /'
	echo "1..1"
	exit 1
fi

OUT=tests/console/out
mkdir -p "$OUT"
rm -f "$OUT"/*.png
node tests/console/console_test.js "$BASE" "$ADMIN" "$READ" "$OUT"
rc=$?
kill -TERM "$PID"
wait "$PID"
src=$?
PID=
if [ "$rc" -ne 0 ] || [ "$src" -ne 0 ]; then
	echo "# server exit status $src; server log (tail):"
	tail -n 20 "$T/server.log" | sed 's/^/#   /'
	[ "$src" -ne 0 ] && rc=1
fi
exit "$rc"
