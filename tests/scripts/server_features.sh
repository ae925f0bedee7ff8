#!/usr/bin/env bash
# server_features.sh -- kappa serve's auth, subscriptions, metrics, limits and stop:
# bearer tokens with scopes and stream prefixes (401/403), refusal to start open on a
# non-loopback address or with a world-readable auth file; /subscribe resumed with
# Last-Event-ID by curl and by a real EventSource client across a server restart; filters;
# a last comment line on SIGTERM; /metrics accepted by promtool with the right counts; the
# subscriber limit (503 + Retry-After); slow requests closed after the request timeout.
# Servers listen on 127.0.0.1 only and are stopped by PID.
set -uo pipefail
cd "$(dirname "$0")/../.."
KAPPA=${KAPPA_BIN:-build/kappa}
PROMTOOL=.tools/promtool
T=$(mktemp -d "${TEST_TMPDIR:-/tmp}/kappa-features.XXXXXX")
PORT=$((20000 + RANDOM % 20000))
BASE="http://127.0.0.1:$PORT"
PID=
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
check() { # description expected-status expected-substring status body
	if [ "$4" = "$2" ] && [[ "$5" == *"$3"* ]]; then ok "$1"; else bad "$1" "status $4 (want $2)" "body $5"; fi
}
req() { # token method path [json] -> ST, BODY, HDRS
	local tok=$1 out
	shift
	local auth=()
	[ -n "$tok" ] && auth=(-H "Authorization: Bearer $tok")
	if [ $# -ge 3 ]; then
		out=$(curl -s -m 10 -D "$T/hdrs" -w '\n%{http_code}' "${auth[@]}" -X "$1" -H 'Content-Type: application/json' --data-binary "$3" "$BASE$2")
	else
		out=$(curl -s -m 10 -D "$T/hdrs" -w '\n%{http_code}' "${auth[@]}" -X "$1" "$BASE$2")
	fi
	ST=${out##*$'\n'}
	BODY=${out%$'\n'*}
	HDRS=$(cat "$T/hdrs" 2>/dev/null)
}
start() { # extra args...
	"$KAPPA" serve --data "${DATA:-$T/data}" --listen "127.0.0.1:$PORT" "$@" 2>>"$T/server.log" &
	PID=$!
	for _ in $(seq 1 200); do
		curl -s -m 1 "$BASE/health" >/dev/null 2>&1 && return 0
		kill -0 "$PID" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
stop() {
	[ -n "$PID" ] || return 0
	kill -TERM "$PID" 2>/dev/null
	wait "$PID" 2>/dev/null
	local rc=$?
	PID=
	return $rc
}
cleanup() {
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
	[ -n "${SSEPID:-}" ] && kill "$SSEPID" 2>/dev/null
	[ -n "${ESPID:-}" ] && kill "$ESPID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

# ---- auth ----------------------------------------------------------------------------
ADMIN=admin-token-0123456789abcdef
READER=reader-token-0123456789abcdef
USERS=users-token-0123456789abcdef
SELF=self-token-0123456789abcdef
cat >"$T/auth" <<AUTH
# kappa tokens
$ADMIN admin
$READER read
$USERS read,append user-
$SELF read user-s7 subject=s7
AUTH
chmod 644 "$T/auth"
"$KAPPA" serve --data "$T/data" --listen "127.0.0.1:$PORT" --auth-file "$T/auth" 2>"$T/err" &
p=$!
wait $p
rc=$?
[ "$rc" -ne 0 ] && grep -q 'chmod 600' "$T/err" && ok "a world-readable auth file is refused" || bad "a world-readable auth file is refused" "exit $rc" "$(cat "$T/err")"
"$KAPPA" serve --data "$T/data" --listen "0.0.0.0:$PORT" 2>"$T/err" &
p=$!
wait $p
rc=$?
[ "$rc" -ne 0 ] && grep -q 'without --auth-file' "$T/err" && ok "an open server refuses a non-loopback address" || bad "an open server refuses a non-loopback address" "exit $rc" "$(cat "$T/err")"
chmod 600 "$T/auth"
start --auth-file "$T/auth" || bad "server starts with an auth file" "$(tail -3 "$T/server.log")"

req "" GET /health
check "health needs no token" 200 '"ok"' "$ST" "$BODY"
req "" GET /log
check "no token is a 401" 401 '"code":"unauthorized"' "$ST" "$BODY"
[[ "$HDRS" == *"WWW-Authenticate: Bearer"* ]] && ok "401 says how to authenticate" || bad "401 says how to authenticate" "$HDRS"
req "not-a-known-token-000000" GET /log
check "an unknown token is a 401" 401 '"code":"unauthorized"' "$ST" "$BODY"
req "$READER" POST /streams/user-1 '{"events":[{"type":"T","data":{}}]}'
check "a read token cannot append" 403 '"code":"forbidden"' "$ST" "$BODY"
req "$USERS" POST /streams/user-1 '{"events":[{"type":"T","data":{"n":1}}]}'
check "an append token appends within its prefix" 201 '"first_position":0' "$ST" "$BODY"
req "$USERS" POST /streams/post-1 '{"events":[{"type":"T","data":{"n":2}}]}'
check "... and not outside it" 403 '"code":"forbidden"' "$ST" "$BODY"
req "$ADMIN" POST /streams/post-1 '{"events":[{"type":"T","data":{"n":2}}]}'
check "admin appends anywhere" 201 '"first_position":1' "$ST" "$BODY"
req "$USERS" GET /streams/post-1
check "a prefixed token cannot read other streams" 403 '"code":"forbidden"' "$ST" "$BODY"
req "$USERS" GET "/log?from=0"
if [ "$ST" = 200 ] && [[ "$BODY" == *'"stream":"user-1"'* ]] && [[ "$BODY" != *'post-1'* ]] && [[ "$BODY" == *'"next":2'* ]]; then
	ok "a prefixed token sees only its streams in /log"
else
	bad "a prefixed token sees only its streams in /log" "$ST $BODY"
fi
req "$READER" GET "/streams/post-1"
check "a read token reads" 200 '"n":2' "$ST" "$BODY"
req "$READER" POST /views/none/rebuild
check "rebuild needs admin" 403 '"code":"forbidden"' "$ST" "$BODY"
req "$ADMIN" POST /views/none/rebuild
check "admin may rebuild (unknown view: 404)" 404 '"code":"not_found"' "$ST" "$BODY"
req "$READER" GET /metrics
[ "$ST" = 200 ] && ok "metrics with a read token" || bad "metrics with a read token" "$ST"
{ printf '{"events":[{"type":"T","data":{"x":"'; head -c 300000 /dev/zero | tr '\0' 'x'; printf '"}}]}'; } >"$T/big.json"
out=$(curl -s -m 10 -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary "@$T/big.json" "$BASE/streams/user-2")
[ "${out##*$'\n'}" = 401 ] && ok "an unauthenticated body is refused before it is read" || bad "an unauthenticated body is refused before it is read" "${out##*$'\n'}"
req "$ADMIN" GET "/log?from=0"
[[ "$BODY" == *'"head":2'* ]] && ok "refused requests wrote nothing" || bad "refused requests wrote nothing" "$BODY"

# audit: a signed digest (read), the public key (open), full verification (admin)
req "$READER" GET /audit/digest
echo "$BODY" >"$T/digest.json"
check "a read token gets a signed digest" 200 '"position":2,"chain_hash":"' "$ST" "$BODY"
req "" GET /audit/key
check "the node's public key is public" 200 '"algorithm":"ed25519"' "$ST" "$BODY"
req "$READER" GET /audit/verify
check "verification needs admin" 403 '"code":"forbidden"' "$ST" "$BODY"
chain=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["chain_hash"])' "$T/digest.json" 2>/dev/null)
req "$ADMIN" GET "/audit/verify?position=2&chain_hash=$chain"
check "admin verifies the chain against the digest" 200 '"ok":true,"first_position":0,"end_position":2' "$ST" "$BODY"
[[ "$BODY" == *'"digest_checked":true'* ]] && ok "... and it is checked" || bad "... and it is checked" "$BODY"
req "$ADMIN" GET "/audit/verify?position=1&chain_hash=$chain"
check "a digest the log does not extend is reported" 200 '"ok":false' "$ST" "$BODY"
stop

# subjects: export by admin or by the subject's own token; forget by admin only
DATA="$T/subjects" start --auth-file "$T/auth" || bad "server starts on a second data directory" "$(tail -3 "$T/server.log")"
req "$ADMIN" POST /streams/user-s7 '{"events":[{"type":"T","subject":"s7","data":{"secret":"s7-data"}}]}'
req "$ADMIN" POST /streams/user-s8 '{"events":[{"type":"T","subject":"s8","data":{"secret":"s8-data"}}]}'
req "$SELF" GET /subjects/s7/export
check "a subject's own token exports that subject" 200 '"secret":"s7-data"' "$ST" "$BODY"
req "$SELF" GET /subjects/s8/export
check "... and no other" 403 '"code":"forbidden"' "$ST" "$BODY"
req "$READER" GET /subjects/s7/export
check "a read token cannot export" 403 '"code":"forbidden"' "$ST" "$BODY"
req "$SELF" POST /subjects/s7/forget
check "forgetting needs admin" 403 '"code":"forbidden"' "$ST" "$BODY"
req "$ADMIN" POST /subjects/s7/forget
check "admin forgets" 200 '"forgotten":true' "$ST" "$BODY"
req "$SELF" GET /subjects/s7/export
check "the export then says forgotten" 200 '"state":"forgotten"' "$ST" "$BODY"
[[ "$BODY" != *s7-data* ]] && ok "... with no data left" || bad "... with no data left" "$BODY"
stop
out=$("$KAPPA" verify "$T/data" --digest "$T/digest.json" 2>&1)
[ $? = 0 ] && [[ "$out" == *"extends the digest at position 2 (signature valid)"* ]] && ok "kappa verify checks the saved digest and its signature" || bad "kappa verify checks the saved digest and its signature" "$out"
sed -i 's/"position":2/"position":3/' "$T/digest.json"
out=$("$KAPPA" verify "$T/data" --digest "$T/digest.json" 2>&1)
[ $? = 3 ] && ok "a tampered digest file is refused (exit 3)" || bad "a tampered digest file is refused (exit 3)" "$out"

# ---- subscriptions -------------------------------------------------------------------
start --max-subscribers 2 --heartbeat 1
for i in 2 3 4; do req "" POST /streams/s-$i "{\"events\":[{\"type\":\"Tick\",\"data\":{\"n\":$i}},{\"type\":\"Tock\",\"data\":{\"n\":$i}}]}"; done
# head is now 8 (positions 0..7)
timeout 3 curl -sN -H 'Last-Event-ID: 4' "$BASE/subscribe" >"$T/sse1" 2>/dev/null
ids=$(grep '^id: ' "$T/sse1" | cut -d' ' -f2 | tr '\n' ' ')
[ "$ids" = "5 6 7 " ] && ok "Last-Event-ID resumes right after that event" || bad "Last-Event-ID resumes right after that event" "ids: $ids"
timeout 3 curl -sN "$BASE/subscribe?from=2&types=Tock" >"$T/sse2" 2>/dev/null
ids=$(grep '^id: ' "$T/sse2" | cut -d' ' -f2 | tr '\n' ' ')
[ "$ids" = "3 5 7 " ] && ok "a type filter" || bad "a type filter" "ids: $ids"
out=$(curl -s -m 5 -w '\n%{http_code}' -H 'Last-Event-ID: x1' "$BASE/subscribe")
[ "${out##*$'\n'}" = 400 ] && ok "a bad Last-Event-ID is a 400" || bad "a bad Last-Event-ID is a 400" "$out"
# live: a subscriber at the head sees a new event at once
curl -sN "$BASE/subscribe?from=8" >"$T/sse3" 2>/dev/null &
SSEPID=$!
sleep 0.3
curl -sN -m 5 "$BASE/subscribe?from=8" >"$T/sse4" 2>/dev/null &
sleep 0.3
out=$(curl -s -m 5 -D - -o /dev/null "$BASE/subscribe?from=8")
[[ "$out" == *" 503"* && "$out" == *"Retry-After:"* ]] && ok "over the subscriber limit: 503 with Retry-After" || bad "over the subscriber limit: 503 with Retry-After" "$out"
req "" POST /streams/live '{"events":[{"type":"Live","data":{}}]}'
for _ in $(seq 1 40); do grep -q '^id: 8$' "$T/sse3" && break; sleep 0.05; done
grep -q '^id: 8$' "$T/sse3" && ok "a live event reaches a waiting subscriber" || bad "a live event reaches a waiting subscriber" "$(cat "$T/sse3")"
stop
rc=$?
wait "$SSEPID" 2>/dev/null
SSEPID=
[ "$rc" = 0 ] && ok "SIGTERM with subscribers open stops cleanly" || bad "SIGTERM with subscribers open stops cleanly" "exit $rc"
tail -n 2 "$T/sse3" | grep -q '^: kappa is stopping' && ok "subscribers get a last comment line" || bad "subscribers get a last comment line" "$(tail -n 3 "$T/sse3")"

# A real EventSource client keeps its place across a restart: it must see 0..13 once each.
if command -v node >/dev/null && [ -f .tools/node_modules/eventsource/package.json ]; then
	start
	node tests/scripts/sse_client.js "$BASE/subscribe?from=0" 14 "$T/es.out" &
	ESPID=$!
	for _ in $(seq 1 100); do [ "$(cat "$T/es.out" 2>/dev/null | grep -c '^[0-9]')" -ge 9 ] && break; sleep 0.05; done
	stop
	start
	for i in 10 11 12 13 14; do req "" POST /streams/after "{\"events\":[{\"type\":\"After\",\"data\":{\"n\":$i}}]}"; done
	wait "$ESPID"
	rc=$?
	ESPID=
	got=$(grep '^[0-9]' "$T/es.out" | awk '$1 == $2 {print $1}' | tr '\n' ' ')
	want=$(seq 0 13 | tr '\n' ' ')
	if [ "$rc" = 0 ] && [ "$got" = "$want" ] && grep -q 'opens=2' "$T/es.out"; then
		ok "EventSource resumes across a restart without gaps or duplicates"
	else
		bad "EventSource resumes across a restart without gaps or duplicates" "exit $rc" "got $got" "$(grep '^#' "$T/es.out" | tr '\n' ' ')"
	fi
	stop
else
	bad "EventSource resumes across a restart" "node or .tools/node_modules/eventsource missing (scripts/setup fetches it)"
fi

# ---- metrics -------------------------------------------------------------------------
start --request-timeout 2
req "" POST /streams/m '{"events":[{"type":"M","data":{}},{"type":"M","data":{}}]}'
req "" GET /nope
curl -s -m 5 "$BASE/metrics" >"$T/metrics"
if [ -x "$PROMTOOL" ]; then
	out=$("$PROMTOOL" check metrics <"$T/metrics" 2>&1)
	[ $? = 0 ] && ok "promtool accepts /metrics" || bad "promtool accepts /metrics" "$out"
else
	bad "promtool accepts /metrics" "$PROMTOOL missing (scripts/setup fetches it)"
fi
grep -q '^kappa_head_position 16$' "$T/metrics" && ok "metrics: head position" || bad "metrics: head position" "$(grep head_position "$T/metrics")"
grep -q '^kappa_events_total 2$' "$T/metrics" && ok "metrics: events since start" || bad "metrics: events since start" "$(grep events_total "$T/metrics")"
grep -q '^kappa_http_requests_total{route="append",status="201"} 1$' "$T/metrics" && grep -q '^kappa_http_requests_total{route="other",status="404"} 1$' "$T/metrics" &&
	ok "metrics: requests by route and status" || bad "metrics: requests by route and status" "$(grep requests_total "$T/metrics")"
grep -q '^kappa_fsync_seconds_count [1-9]' "$T/metrics" && grep -q '^kappa_group_commit_appends_bucket{le="+Inf"} [1-9]' "$T/metrics" &&
	ok "metrics: fsync and group-commit histograms" || bad "metrics: fsync and group-commit histograms" "$(grep -E 'fsync_seconds_count|group_commit_appends_count' "$T/metrics")"

# ---- keep-alive and pipelining -------------------------------------------------------
out=$(python3 - "$PORT" <<'PY'
import re, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
body = b'{"events":[{"type":"P","data":{"n":1}}]}'
post = (b"POST /streams/pipe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)) + body
get = b"GET /streams/pipe HTTP/1.1\r\nHost: x\r\n\r\n"
s.sendall(get + post + post + get)  # four requests in one write
data = b""
while data.count(b"HTTP/1.1 ") < 4 or not data.rstrip().endswith(b"}"):
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
statuses = [m.decode() for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]
print(" ".join(statuses), data.count(b'"type":"P"'))
PY
)
[ "$out" = "200 201 201 200 2" ] && ok "pipelined requests on one keep-alive connection are answered in order" || bad "pipelined requests on one keep-alive connection are answered in order" "$out"

# ---- slow requests -------------------------------------------------------------------
# Half a request line, then silence past the 2-s request timeout: the server hangs up.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET /health HTTP/1.1\r\nHost: x\r\n' >&3
t0=$(date +%s)
( for _ in 1 2 3 4 5 6; do printf 'X' >&3 2>/dev/null || exit; sleep 1; done ) &
dripper=$!
cat <&3 >/dev/null 2>&1 &
reader=$!
for _ in $(seq 1 100); do kill -0 "$reader" 2>/dev/null || break; sleep 0.1; done
t1=$(date +%s)
kill "$dripper" "$reader" 2>/dev/null
wait "$dripper" "$reader" 2>/dev/null
exec 3>&-
el=$((t1 - t0))
[ "$el" -ge 1 ] && [ "$el" -le 6 ] && ok "a request dribbling its headers is closed after the request timeout (${el}s)" || bad "a request dribbling its headers is closed after the request timeout" "took ${el}s"
out=$(curl -s -m 5 "$BASE/metrics" | grep '^kappa_http_slow_requests_closed_total')
[[ "$out" == *" "[1-9]* ]] && ok "metrics count the slow request" || bad "metrics count the slow request" "$out" "$(tail -n 5 "$T/server.log")"
req "" GET /health
check "the server still answers" 200 '"ok"' "$ST" "$BODY"
stop
rc=$?
[ "$rc" = 0 ] && grep -q 'event=stopped' "$T/server.log" && ok "stops cleanly" || bad "stops cleanly" "exit $rc"
grep -q '^time=[0-9T:.-]*Z event=listening' "$T/server.log" && ok "log lines are structured key=value" || bad "log lines are structured key=value" "$(head -3 "$T/server.log")"

# ---- a graceful stop under load --------------------------------------------------------
# SIGTERM while 100 appends are on their way: each one answered 201 is in the log after a
# restart, at the position it was given, with its data; none is half there.
rm -rf "$T/data"
start
mkdir -p "$T/acks"
for i in $(seq 1 100); do
	curl -s -m 10 -o "$T/acks/$i" -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary "{\"request_id\":\"g-$i\",\"events\":[{\"type\":\"G\",\"data\":{\"i\":$i}}]}" \
		"$BASE/streams/g-$((i % 7))" >"$T/acks/$i.status" 2>/dev/null &
done
sleep 0.05
stop
rc=$?
wait
[ "$rc" = 0 ] && ok "SIGTERM under load exits 0" || bad "SIGTERM under load exits 0" "exit $rc"
start
curl -s -m 10 "$BASE/log?from=0&limit=10000" >"$T/log.json"
out=$(python3 - "$T/acks" "$T/log.json" <<'PY'
import json, os, sys
acks, log = sys.argv[1], json.load(open(sys.argv[2]))
by_pos = {e["position"]: e for e in log["events"]}
acked = bad = 0
for i in range(1, 101):
    st = open(os.path.join(acks, f"{i}.status")).read().strip()
    if st != "201":
        continue
    acked += 1
    a = json.load(open(os.path.join(acks, str(i))))
    e = by_pos.get(a["first_position"])
    if not e or e["data"] != {"i": i}:
        bad += 1
dense = sorted(by_pos) == list(range(len(by_pos)))
print(f"acked={acked} missing={bad} events={len(by_pos)} dense={dense}")
sys.exit(0 if bad == 0 and dense and len(by_pos) >= acked else 1)
PY
)
[ $? = 0 ] && ok "every append acknowledged before the stop is there ($out)" || bad "every append acknowledged before the stop is there" "$out"
stop

echo "1..$n"
[ "$fails" -eq 0 ]
