#!/usr/bin/env bash
# server_basic.sh -- kappa serve end to end with curl: appends (created, deduplicated,
# conflicts, bad input), stream and log reads, a view's named query with min_position,
# refused ad-hoc SQL, status and health, concurrent appends sharing group commits, and a
# clean stop by SIGTERM. The server listens on 127.0.0.1 only and is stopped by its PID.
set -uo pipefail
cd "$(dirname "$0")/../.."
KAPPA=${KAPPA_BIN:-build/kappa}
T=$(mktemp -d "${TEST_TMPDIR:-/tmp}/kappa-server.XXXXXX")
PORT=$((20000 + RANDOM % 20000))
BASE="http://127.0.0.1:$PORT"
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
check() { # description expected-status expected-substring status body
	if [ "$4" = "$2" ] && [[ "$5" == *"$3"* ]]; then ok "$1"; else bad "$1" "status $4 (want $2)" "body $5"; fi
}
req() { # method path [json] -> sets ST and BODY
	local out
	if [ $# -ge 3 ]; then
		out=$(curl -s -m 10 -w '\n%{http_code}' -X "$1" -H 'Content-Type: application/json' --data-binary "$3" "$BASE$2")
	else
		out=$(curl -s -m 10 -w '\n%{http_code}' -X "$1" "$BASE$2")
	fi
	ST=${out##*$'\n'}
	BODY=${out%$'\n'*}
}

mkdir -p "$T/views"
cat >"$T/views/counts.sql" <<'SQL'
-- @view counts
CREATE TABLE counts (stream TEXT PRIMARY KEY, n INTEGER NOT NULL, total INTEGER NOT NULL);
-- @on Tick
INSERT INTO counts VALUES (:stream, 1, :data->>'$.n')
  ON CONFLICT(stream) DO UPDATE SET n = n + 1, total = total + excluded.total;
-- @query by_stream(stream)
SELECT stream, n, total FROM counts WHERE stream = :stream;
SQL
"$KAPPA" serve --data "$T/data" --views "$T/views" --listen "127.0.0.1:$PORT" 2>"$T/server.log" &
PID=$!
cleanup() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
	curl -s -m 1 "$BASE/health" >/dev/null 2>&1 && break
	sleep 0.05
done

req GET /health
check "health answers" 200 '"status":"ok"' "$ST" "$BODY"
req POST /streams/user-1 '{"expected_version":"no_stream","request_id":"r-1","events":[{"type":"Tick","data":{"n":5}}],"claims":[{"claim":"username:ada"}]}'
check "append is created" 201 '"first_position":0,"last_position":0,"version":0,"deduplicated":false' "$ST" "$BODY"
req POST /streams/user-1 '{"expected_version":"no_stream","request_id":"r-1","events":[{"type":"Tick","data":{"n":5}}],"claims":[{"claim":"username:ada"}]}'
check "a retry is deduplicated" 200 '"first_position":0,"last_position":0,"version":0,"deduplicated":true' "$ST" "$BODY"
req POST /streams/user-1 '{"expected_version":"no_stream","request_id":"r-1","events":[{"type":"Tick","data":{"n":6}}]}'
check "a reused request id is a conflict" 409 '"code":"request_id_reused"' "$ST" "$BODY"
req POST /streams/user-1 '{"expected_version":7,"events":[{"type":"Tick","data":{"n":1}}]}'
check "a wrong expected version names the actual one" 409 '"code":"wrong_expected_version","message":"stream user-1 is at version 0, expected 7","actual_version":0' "$ST" "$BODY"
req POST /streams/user-2 '{"events":[{"type":"Tick","data":{"n":1}}],"claims":[{"claim":"username:ada"}]}'
check "a taken claim names its holder" 409 '"claim":"username:ada","holder":"user-1"' "$ST" "$BODY"
req POST /streams/user-1 '{"expected_version":0,"events":[{"type":"Tick","data":{"n":10}}]}'
check "an exact expected version appends" 201 '"first_position":1' "$ST" "$BODY"
for body in '{bad' '[]' '{"events":[]}' '{"events":[{"type":"Tick","data":[1]}]}' '{"events":[{"data":{}}]}' '{"expected_version":-1,"events":[{"type":"T","data":{}}]}' '{"expected_version":"maybe","events":[{"type":"T","data":{}}]}' '{"events":[{"type":"T","data":{}}],"claims":[{"grab":"x"}]}'; do
	req POST /streams/user-3 "$body"
	check "bad body $body is a 400" 400 '"code":"invalid_argument"' "$ST" "$BODY"
done
out=$(curl -s -m 10 -w '\n%{http_code}' -H 'Content-Type: text/plain' --data-binary '{}' "$BASE/streams/user-3")
check "a body that is not JSON is a 415" 415 'application/json' "${out##*$'\n'}" "${out%$'\n'*}"
big=$(head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' 'x')
out=$(printf '%s' "$big" | curl -s -m 30 -w '\n%{http_code}' -H 'Content-Type: application/json' --data-binary @- "$BASE/streams/user-3")
check "an oversize body is a 413" 413 '"code":"too_large"' "${out##*$'\n'}" "${out%$'\n'*}"
req POST "/streams/bad%01name" '{"events":[{"type":"T","data":{}}]}'
check "a control character in a stream name is a 400" 400 'control character' "$ST" "$BODY"
req GET /streams/user-3
check "nothing was written by the bad requests" 200 '"events":[]' "$ST" "$BODY"
req GET "/streams/user-1?from_version=0&limit=10"
check "reading a stream" 200 '"version":1,"type":"Tick"' "$ST" "$BODY"
req GET "/streams/user-1?limit=ten"
check "a bad limit is a 400" 400 'invalid_argument' "$ST" "$BODY"
req GET "/log?from=0&limit=10"
check "reading the log" 200 '"next":2,"head":2' "$ST" "$BODY"
req GET "/views/counts/queries/by_stream?stream=user-1&min_position=1"
check "a named query sees the write at min_position" 200 '"rows":[{"stream":"user-1","n":2,"total":15}],"position":1' "$ST" "$BODY"
req GET "/views/counts/queries/nope"
check "an unknown query is a 404" 404 'not_found' "$ST" "$BODY"
req POST /views/counts/sql '{"sql":"DELETE FROM counts"}'
check "ad-hoc SQL cannot write" 400 'not allowed' "$ST" "$BODY"
req POST /views/counts/sql '{"sql":"SELECT count(*) AS c FROM counts"}'
check "ad-hoc SQL reads" 200 '"rows":[{"c":1}]' "$ST" "$BODY"
req GET /views/counts
check "a view's status" 200 '"name":"counts","state":"live"' "$ST" "$BODY"
req GET /health/ready
check "ready when views are live" 200 '"ready":true' "$ST" "$BODY"
req DELETE /streams/user-1
check "a wrong method is a 405" 405 '"code":"method_not_allowed"' "$ST" "$BODY"
req GET /nope
check "an unknown route is a 404" 404 'not_found' "$ST" "$BODY"

# 200 appends from 16 concurrent clients: all created, positions dense.
seq 1 200 | xargs -P 16 -I{} curl -s -m 20 -o /dev/null -w '%{http_code}\n' \
	-H 'Content-Type: application/json' --data-binary '{"events":[{"type":"Tick","data":{"n":1}}]}' \
	"$BASE/streams/load-{}" >"$T/codes"
created=$(grep -c '^201$' "$T/codes")
[ "$created" = 200 ] && ok "200 concurrent appends created" || bad "200 concurrent appends created" "only $created: $(sort "$T/codes" | uniq -c | tr '\n' ' ')"
req GET "/log?from=0&limit=1000"
check "positions stay dense under concurrency" 200 '"next":202,"head":202' "$ST" "$BODY"

# Queries run on worker threads: six read-your-writes waits for a position far ahead do not
# stall the event threads (there are four), so other requests answer at once meanwhile.
waiters=()
for i in 1 2 3 4 5 6; do
	curl -s -m 10 -o "$T/wait.$i" -w '%{http_code}\n' "$BASE/views/counts/queries/by_stream?stream=user-1&min_position=999999&timeout_ms=1500" >"$T/wait.$i.status" &
	waiters+=($!)
done
sleep 0.3
t0=$(date +%s%N)
req GET "/views/counts/queries/by_stream?stream=user-1"
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
[ "$ST" = 200 ] && [ "$ms" -lt 700 ] && ok "a query answers in ${ms} ms while six others wait for min_position" || bad "a query answers while six others wait for min_position" "status $ST after ${ms} ms"
wait "${waiters[@]}"
[ "$(cat "$T"/wait.*.status | sort -u)" = 504 ] && grep -q '"code":"timeout"' "$T/wait.1" && ok "the waits end in 504 timeout" || bad "the waits end in 504 timeout" "$(cat "$T"/wait.*.status)" "$(cat "$T/wait.1")"
req GET /metrics
[[ "$BODY" == *'kappa_view_state{view="counts",state="live"} 1'* && "$BODY" == *'kappa_view_lag_events{view="counts"} 0'* ]] && ok "metrics give each view's state and lag" || bad "metrics give each view's state and lag" "$(echo "$BODY" | grep kappa_view)"
req POST /streams/007 '{"events":[{"type":"Tick","data":{"n":3}}]}'
P007=$(echo "$BODY" | sed -n 's/.*"last_position":\([0-9]*\).*/\1/p')
req GET "/views/counts/queries/by_stream?stream=007&min_position=$P007"
check "a query parameter like 007 stays text" 200 '"rows":[{"stream":"007","n":1,"total":3}]' "$ST" "$BODY"
req GET "/views/counts/queries/by_stream?stream=nobody&stream=007"
check "a repeated query parameter takes its last value" 200 '"rows":[{"stream":"007","n":1,"total":3}]' "$ST" "$BODY"
req GET "/views/counts/queries/by_stream?stream=%FF07"
check "a query parameter that is not UTF-8 counts as missing" 400 '"message":"missing parameter stream"' "$ST" "$BODY"
req POST /views/counts/sql "{\"sql\":\"SELECT n FROM counts WHERE stream = :s\",\"params\":{\"s\":\"007\"},\"min_position\":$P007}"
check "ad-hoc SQL waits for min_position" 200 '"rows":[{"n":1}]' "$ST" "$BODY"
req POST /views/counts/sql '{"sql":"SELECT 1","min_position":-3}'
check "a negative min_position is a 400" 400 '"code":"invalid_argument"' "$ST" "$BODY"
kill -TERM "$PID"
wait "$PID"
rc=$?
[ "$rc" = 0 ] && grep -q 'event=stopped' "$T/server.log" && ok "SIGTERM stops the server cleanly" || bad "SIGTERM stops the server cleanly" "exit $rc" "$(tail -3 "$T/server.log")"
"$KAPPA" check "$T/data" >/dev/null && ok "kappa check passes on what the server wrote" || bad "kappa check passes on what the server wrote"
echo "1..$n"
[ "$fails" = 0 ]
