#!/usr/bin/env bash
# cli_client.sh -- the kappa CLI's client commands against a real `kappa serve`: append
# (created, deduplicated, conflict), read (JSON, table, pages, backward), query with
# parameters and min_position, sql, views, rebuild, import (re-run appends nothing; a bad
# line imports nothing), export-log piped into import on a second server with a token,
# tail across a server restart, usage errors and an unreachable server. Servers listen on
# 127.0.0.1 only and are stopped by PID.
set -uo pipefail
cd "$(dirname "$0")/../.."
KAPPA=${KAPPA_BIN:-build/kappa}
T=$(mktemp -d "${TEST_TMPDIR:-/tmp}/kappa-cli.XXXXXX")
unset KAPPA_TOKEN
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
skip() { n=$((n + 1)); echo "ok $n - # SKIP $1"; }
# run CMD...: exit status in RC, stdout in OUT, stderr in ERR
run() {
	"$@" >"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}
# expect DESC RC [SUBSTRING-OF-STDOUT] [SUBSTRING-OF-STDERR]
expect() {
	if [ "$RC" = "$2" ] && [[ "$OUT" == *"${3:-}"* ]] && [[ "$ERR" == *"${4:-}"* ]]; then
		ok "$1"
	else
		bad "$1" "exit $RC (want $2)" "stdout: ${OUT:0:400}" "stderr: ${ERR:0:400}"
	fi
}
# json EXPR: evaluate a Python expression over j = the JSON in $OUT; prints the result
json() { printf '%s' "$OUT" | python3 -c "import json,sys; j=json.load(sys.stdin); print(($1))" 2>&1; }
head_of() { curl -s -m 5 "$1/log?from=0&limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["head"])' 2>/dev/null; }
PIDS=()
# start DATA-DIR PORT [serve options...]: a server on 127.0.0.1:PORT (0: a free random
# port, tried again elsewhere when taken); sets PID and SPORT once it listens.
start() {
	local data=$1 want=$2 log
	shift 2
	for try in 1 2 3 4 5; do
		SPORT=$want
		[ "$SPORT" = 0 ] && SPORT=$((20000 + RANDOM % 40000))
		log="$T/server-$SPORT-$try.log"
		"$KAPPA" serve --data "$data" --listen "127.0.0.1:$SPORT" "$@" 2>"$log" &
		PID=$!
		PIDS+=("$PID")
		for _ in $(seq 1 200); do
			grep -q 'event=listening' "$log" && return 0
			kill -0 "$PID" 2>/dev/null || break
			sleep 0.025
		done
		cat "$log" >>"$T/server.log"
		[ "$want" != 0 ] && return 1
	done
	return 1
}
cleanup() {
	[ -n "${TAILPID:-}" ] && kill "$TAILPID" 2>/dev/null
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

# ---- usage and an unreachable server ----------------------------------------------------
run "$KAPPA" --help
expect "kappa --help lists the commands" 0 "tail [--from P]" ""
for c in serve append read tail query sql views rebuild import export-log forget export check version; do
	[[ "$OUT" == *"  $c"* ]] || bad "kappa --help lists $c" "$OUT"
done
for c in append read tail query sql views rebuild import export-log forget export serve check; do
	run "$KAPPA" "$c" --help
	if [ "$RC" = 0 ] && [[ "$OUT" == "usage: kappa $c"* ]]; then :; else bad "kappa $c --help" "exit $RC" "$OUT$ERR"; fi
done
ok "every command's --help prints its usage and exits 0"
run "$KAPPA" frobnicate
expect "an unknown command exits 2" 2 "" "unknown command"
run "$KAPPA" append s1 Tick
expect "append without its JSON exits 2" 2 "" "usage: kappa append"
run "$KAPPA" append s1 Tick '[1]'
expect "append with data that is not an object exits 2" 2 "" "must be a JSON object"
run "$KAPPA" append s1 Tick '{}' --expect maybe
expect "a bad --expect exits 2" 2 "" "--expect"
run "$KAPPA" read s1 --limit ten
expect "a bad --limit exits 2" 2 "" "take a number"
run "$KAPPA" views --bogus
expect "an unknown option exits 2" 2 "" "unknown option '--bogus'"
run "$KAPPA" query v
expect "query without NAME exits 2" 2 "" "needs VIEW and NAME"
run "$KAPPA" query v q novalue
expect "a query parameter without '=' exits 2" 2 "" "KEY=VALUE"
run "$KAPPA" import
expect "import without FILE exits 2" 2 "" "needs FILE"
run "$KAPPA" views --url ftp://127.0.0.1:1
expect "a --url that is not http exits 2" 2 "" "http://"
run "$KAPPA" views --url "http://127.0.0.1:1"
expect "an unreachable server exits 1 and says so" 1 "" "cannot connect to http://127.0.0.1:1"

# ---- the server --------------------------------------------------------------------------
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
start "$T/data" 0 --views "$T/views" || bad "the server starts" "$(tail -3 "$T/server.log")"
SRV=$PID
PORT=$SPORT
export KAPPA_URL="http://127.0.0.1:$PORT"

# ---- append -------------------------------------------------------------------------------
run "$KAPPA" append user-1 Tick '{"n":5}' --request-id r-1 --expect no_stream --claim username:ada
expect "append is created" 0 '{"first_position":0,"last_position":0,"version":0,"deduplicated":false}'
run "$KAPPA" append user-1 Tick '{"n":5}' --request-id r-1 --expect no_stream --claim username:ada
expect "the same --request-id is deduplicated" 0 '"deduplicated":true'
run "$KAPPA" append user-1 Tick '{"n":1}' --expect 7
expect "a wrong --expect exits 1 with the server's code" 1 "" "kappa: wrong_expected_version: stream user-1 is at version 0, expected 7"
run "$KAPPA" append user-2 Tick '{"n":1}' --claim username:ada
expect "a taken claim exits 1" 1 "" "kappa: claim_taken:"
run "$KAPPA" append user-1 Tick '{"n":10}' --expect 0 --subject ada --metadata '{"ip":"10.0.0.1"}' --table
expect "append --table prints a row" 0 "first_position  last_position  version  deduplicated"
[[ "$OUT" == *$'\n'"1 "*"1 "*"1 "*"false"* ]] || bad "append --table has the values" "$OUT"
run "$KAPPA" append 'a b&c?d%' Tick '{"n":3}'
expect "a stream name with a space, &, ? and % is escaped" 0 '"version":0'

# ---- read ---------------------------------------------------------------------------------
run "$KAPPA" read user-1
expect "read prints the events" 0 '"next_version":2}'
[ "$(json 'len(j["events"]), j["events"][1]["subject"], j["events"][1]["metadata"]["ip"], j["events"][0]["data"]["n"]')" = "(2, 'ada', '10.0.0.1', 5)" ] &&
	ok "read has the events' fields" || bad "read has the events' fields" "$(json 'j')"
run "$KAPPA" read user-1 --table
expect "read --table prints a header, rows and a footer" 0 "position  stream  version  type  time"
[ "$(printf '%s\n' "$OUT" | grep -c ' Tick ')" = 2 ] && [[ "$OUT" == *"(2 events, next_version: 2)"* ]] &&
	ok "read --table has one row per event" || bad "read --table has one row per event" "$OUT"
run "$KAPPA" read 'a b&c?d%'
expect "read of an escaped stream name" 0 '"stream":"a b&c?d%"'
run "$KAPPA" read user-1 --from 1 --limit 1
[ "$RC" = 0 ] && [ "$(json '[e["version"] for e in j["events"]], j["next_version"]')" = "([1], 2)" ] &&
	ok "read --from --limit" || bad "read --from --limit" "$OUT" "$ERR"
run "$KAPPA" read nobody
expect "an empty stream reads as no events" 0 '{"events":[],"next_version":0}'

# ---- query, sql, views, rebuild -----------------------------------------------------------
run "$KAPPA" query counts by_stream stream=user-1 --min-position 1
expect "query with k=v and --min-position" 0 '"rows":[{"stream":"user-1","n":2,"total":15}]'
run "$KAPPA" query counts by_stream 'stream=a b&c?d%' --min-position 2
expect "query values are URL-encoded" 0 '"rows":[{"stream":"a b&c?d%","n":1,"total":3}]'
run "$KAPPA" query counts by_stream stream=user-1 --table
expect "query --table" 0 "stream  n  total"
[[ "$OUT" == *"user-1  2  15"* ]] || bad "query --table row" "$OUT"
run "$KAPPA" query counts nope
expect "an unknown query exits 1 with not_found" 1 "" "kappa: not_found:"
run "$KAPPA" sql counts "SELECT count(*) AS c, sum(total) AS t FROM counts"
expect "sql" 0 '"rows":[{"c":2,"t":18}]'
run "$KAPPA" sql counts "DELETE FROM counts"
expect "sql that writes exits 1" 1 "" "kappa: invalid_argument:"
run "$KAPPA" views
expect "views" 0 '"name":"counts","state":"live"'
run "$KAPPA" views --table
expect "views --table" 0 "name    state"
[[ "$OUT" == *"counts  live"* ]] || bad "views --table row" "$OUT"
run "$KAPPA" views counts
expect "views VIEW" 0 '"name":"counts"'
run "$KAPPA" rebuild counts
expect "rebuild" 0 '"name":"counts"'
for _ in $(seq 1 100); do
	run "$KAPPA" query counts by_stream stream=user-1
	[[ "$OUT" == *'"n":2'* ]] && break
	sleep 0.05
done
expect "a rebuilt view answers the same" 0 '"rows":[{"stream":"user-1","n":2,"total":15}]'
run "$KAPPA" rebuild nope
expect "rebuild of an unknown view exits 1" 1 "" "kappa: not_found:"


# ---- import -------------------------------------------------------------------------------
python3 - "$T" <<'PY'
import json, sys
t = sys.argv[1]
with open(t + "/gen.jsonl", "w") as f:
    for i in range(10500):  # more than one page of one stream
        f.write(json.dumps({"stream": "big", "type": "Tick", "data": {"n": i}}) + "\n")
    f.write("\n")  # blank lines are skipped
    for i in range(3000):  # interleaved streams: many appends in flight
        f.write(json.dumps({"stream": "s-%d" % (i % 40), "type": "Tick", "data": {"n": i},
                            "subject": "u%d" % i, "metadata": {"k": i}}) + "\n")
    f.write(json.dumps({"stream": "big2", "events": [{"type": "Tick", "data": {"n": 1}},
                        {"type": "Tick", "data": {"n": 2}}]}) + "\n")
    f.write(json.dumps({"stream": "solo", "type": "Tick", "data": {"n": 1},
                        "expected_version": "no_stream", "request_id": "solo-1"}) + "\n")
with open(t + "/bad.jsonl", "w") as f:
    f.write(json.dumps({"stream": "bad", "type": "Tick", "data": {"n": 1}}) + "\n")
    f.write(json.dumps({"stream": "bad", "type": "Tick", "data": {"n": 2}}) + "\n")
    f.write('{"stream": "bad", "type": "Tick", "data": [1]}\n')
    f.write(json.dumps({"stream": "bad", "type": "Tick", "data": {"n": 4}}) + "\n")
PY
H0=$(head_of "$KAPPA_URL")
run "$KAPPA" import "$T/gen.jsonl"
expect "import appends every event" 0 '{"lines":13502,"appended":13503,"deduplicated":0,"failed":0,"skipped":0}'
H1=$(head_of "$KAPPA_URL")
[ "$H1" = $((H0 + 13503)) ] && ok "the log grew by the imported events" || bad "the log grew by the imported events" "head $H0 -> $H1"
run "$KAPPA" import "$T/gen.jsonl" --parallel 4
expect "importing the same file again appends nothing" 0 '{"lines":13502,"appended":0,"deduplicated":13503,"failed":0,"skipped":0}'
[ "$(head_of "$KAPPA_URL")" = "$H1" ] && ok "the re-import left the log's head where it was" || bad "the re-import left the log's head where it was" "head $H1 -> $(head_of "$KAPPA_URL")"
run "$KAPPA" read big --limit 20000
[ "$RC" = 0 ] && [ "$(json 'len(j["events"]), all(e["version"] == i and e["data"]["n"] == i for i, e in enumerate(j["events"])), j["next_version"]')" = "(10500, True, 10500)" ] &&
	ok "read follows pages: 10500 events of one stream, in order" || bad "read follows pages" "$ERR" "$(json 'len(j["events"])')"
run "$KAPPA" read big --backward --limit 3
[ "$RC" = 0 ] && [ "$(json '[e["version"] for e in j["events"]], j["next_version"]')" = "([10499, 10498, 10497], 10496)" ] &&
	ok "read --backward" || bad "read --backward" "$OUT" "$ERR"
run "$KAPPA" read s-7 --limit 1000
[ "$(json '[e["data"]["n"] for e in j["events"]] == list(range(7, 3000, 40)) and j["events"][0]["subject"] == "u7"')" = True ] &&
	ok "interleaved streams keep the file's order per stream" || bad "interleaved streams keep the file's order per stream" "$(json '[e["data"]["n"] for e in j["events"]][:10]')"
H2=$(head_of "$KAPPA_URL")
run "$KAPPA" import "$T/bad.jsonl"
expect "a file with a bad line exits 1 naming the line" 1 '"appended":0' "bad.jsonl:3: an event's \"data\" must be a JSON object (nothing was imported)"
[ "$(head_of "$KAPPA_URL")" = "$H2" ] && ok "a file with a bad line imports nothing" || bad "a file with a bad line imports nothing" "head $H2 -> $(head_of "$KAPPA_URL")"
run bash -c 'cat "$1" | "$2" import -' - "$T/bad.jsonl" "$KAPPA"
expect "standard input (a pipe) stops at its first bad line" 1 '{"lines":2,"appended":2,"deduplicated":0,"failed":0,"skipped":0}' "stdin:3:"
printf '{"stream":"x","type":"T","data":{}}\n{"stream":"x","type":"T","data":{"s":"%s"}}\n' "$(head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' 'x')" >"$T/long.jsonl"
run "$KAPPA" import "$T/long.jsonl"
expect "a line over 16 MiB is an error naming it" 1 "" "long.jsonl:2: the line is longer than 16 MiB"
rm -f "$T/long.jsonl"
printf '{"stream":"c","type":"T","data":{},"expected_version":5}\n{"stream":"c","type":"T","data":{"n":2}}\n{"stream":"d","type":"T","data":{}}\n' >"$T/conflict.jsonl"
run "$KAPPA" import "$T/conflict.jsonl"
expect "a refused append fails its stream and names the line" 1 '"appended":1,"deduplicated":0,"failed":2' "line 1 (stream c): wrong_expected_version"
run "$KAPPA" read c
expect "the rest of a failed stream is skipped" 0 '{"events":[],"next_version":0}'

# ---- export-log into a second server with a token ----------------------------------------
TOKEN=cli-test-token-0123456789abcdef
printf '%s admin\n' "$TOKEN" >"$T/auth"
chmod 600 "$T/auth"
start "$T/data2" 0 --auth-file "$T/auth" || bad "the second server starts" "$(tail -3 "$T/server.log")"
URL2="http://127.0.0.1:$SPORT"
run "$KAPPA" views --url "$URL2"
expect "without KAPPA_TOKEN a server with tokens answers 401" 1 "" "kappa: unauthorized:"
HS=$(head_of "$KAPPA_URL")
"$KAPPA" export-log >"$T/export.jsonl" 2>"$T/err"
rc=$?
[ "$rc" = 0 ] && [ "$(wc -l <"$T/export.jsonl")" = "$HS" ] && ok "export-log writes every event" || bad "export-log writes every event" "exit $rc, $(wc -l <"$T/export.jsonl") lines, head $HS" "$(cat "$T/err")"
"$KAPPA" export-log | KAPPA_TOKEN=$TOKEN "$KAPPA" import - --url "$URL2" --parallel 1 >"$T/out" 2>"$T/err"
rc=$?
[ "$rc" = 0 ] && grep -q "\"appended\":$HS," "$T/out" && ok "export-log | import into a fresh server" || bad "export-log | import into a fresh server" "exit $rc" "$(cat "$T/out" "$T/err")"
KAPPA_TOKEN=$TOKEN "$KAPPA" export-log --url "$URL2" >"$T/export2.jsonl" 2>"$T/err"
python3 - "$T/export.jsonl" "$T/export2.jsonl" <<'PY' && ok "the second server has the same events in the same order" || bad "the second server has the same events in the same order" "$(cat "$T/err")"
import json, sys
def load(p):
    keys = ("position", "stream", "version", "type", "data", "subject", "metadata")
    return [tuple(json.dumps(json.loads(l).get(k)) for k in keys) for l in open(p)]
a, b = load(sys.argv[1]), load(sys.argv[2])
if a != b or not a:
    print("# %d vs %d events; first difference: %s" % (len(a), len(b),
          next(((x, y) for x, y in zip(a, b) if x != y), None)))
    sys.exit(1)
PY
KAPPA_TOKEN=$TOKEN "$KAPPA" import "$T/export.jsonl" --url "$URL2" >"$T/out" 2>"$T/err"
[ "$?" = 0 ] && grep -q "\"appended\":0,\"deduplicated\":$HS," "$T/out" && ok "importing the export again appends nothing" || bad "importing the export again appends nothing" "$(cat "$T/out" "$T/err")"
# ---- export and forget a data subject -----------------------------------------------------
run "$KAPPA" append person-7 Registered '{"name":"Quentin Marker"}' --subject p7
expect "append with a subject" 0 '"first_position"'
run "$KAPPA" export p7
expect "export prints the subject's events in clear" 0 'Quentin Marker'
[ "$(json 'j["state"]')" = live ] || bad "export state live" "$OUT"
run "$KAPPA" forget p7
expect "forget" 0 '"forgotten":true'
run "$KAPPA" forget p7
expect "forget again answers the same" 0 '"already":true'
run "$KAPPA" read person-7
expect "a forgotten subject's events read as forgotten" 0 '"forgotten":true'
[[ "$OUT" != *Quentin* ]] || bad "read after forget shows no data" "$OUT"
run "$KAPPA" export p7
expect "export after forget says forgotten" 0 '"state":"forgotten"'
run "$KAPPA" forget nobody-here
expect "forget of an unknown subject exits 1" 1 "" "kappa: not_found:"
run "$KAPPA" append person-8 Registered '{}' --subject p7
expect "a forgotten subject id is refused" 1 "" "subject_forgotten"
FH=$(head_of "$KAPPA_URL")
"$KAPPA" export-log --from $((FH - 6)) | KAPPA_TOKEN=$TOKEN "$KAPPA" import - --url "$URL2" >"$T/out" 2>"$T/err"
rc=$?
[ "$rc" = 0 ] && grep -q '"skipped":2}' "$T/out" && ok "import skips a forgotten event and kappa's own \$subjects record" ||
	bad "import skips forgotten events" "exit $rc" "$(cat "$T/out" "$T/err")"

run "$KAPPA" export-log --from 5 --to 8
[ "$RC" = 0 ] && [ "$(printf '%s\n' "$OUT" | python3 -c 'import json,sys; print([json.loads(l)["position"] for l in sys.stdin])')" = "[5, 6, 7]" ] &&
	ok "export-log --from --to" || bad "export-log --from --to" "$OUT" "$ERR"

# ---- tail ---------------------------------------------------------------------------------
if [ "$(curl -s -m 1 -o /dev/null -w "%{http_code}" "$KAPPA_URL/subscribe?from=999999999999")" = 404 ]; then
	skip "tail (the server has no /subscribe)"
else
	wait_lines() { # file count
		for _ in $(seq 1 200); do
			[ "$(wc -l <"$1")" -ge "$2" ] && return 0
			sleep 0.05
		done
		return 1
	}
	TH=$(head_of "$KAPPA_URL")
	"$KAPPA" tail --from "$TH" >"$T/tail.out" 2>"$T/tail.err" &
	TAILPID=$!
	for i in 1 2 3; do "$KAPPA" append tailed Tick "{\"n\":$i}" >/dev/null; done
	wait_lines "$T/tail.out" 3 && ok "tail prints events appended after it started" || bad "tail prints events appended after it started" "$(cat "$T/tail.out" "$T/tail.err")"
	kill -9 "$SRV"
	wait "$SRV" 2>/dev/null
	start "$T/data" "$PORT" --views "$T/views" || bad "the server restarts" "$(tail -3 "$T/server.log")"
	SRV=$PID
	for i in 4 5; do "$KAPPA" append tailed Tick "{\"n\":$i}" >/dev/null; done
	wait_lines "$T/tail.out" 5
	sleep 0.3 # a duplicate would arrive now
	python3 - "$T/tail.out" "$TH" <<'PY' && ok "tail resumes after the server was killed and restarted: no gap, no duplicate" || bad "tail resumes after a restart" "$(cat "$T/tail.out" "$T/tail.err")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
want = list(range(int(sys.argv[2]), int(sys.argv[2]) + 5))
got = [e["position"] for e in ev]
if got != want or [e["data"]["n"] for e in ev] != [1, 2, 3, 4, 5]:
    print("# positions %s, want %s" % (got, want))
    sys.exit(1)
PY
	kill -TERM "$TAILPID"
	wait "$TAILPID"
	rc=$?
	TAILPID=
	[ "$rc" = 0 ] && ok "SIGTERM stops tail with exit 0" || bad "SIGTERM stops tail with exit 0" "exit $rc" "$(cat "$T/tail.err")"
	"$KAPPA" tail --from "$TH" --table >"$T/tail.out" 2>"$T/tail.err" &
	TAILPID=$!
	wait_lines "$T/tail.out" 6
	kill -INT "$TAILPID"
	wait "$TAILPID"
	rc=$?
	TAILPID=
	[ "$rc" = 0 ] && [ "$(grep -c ' tailed ' "$T/tail.out")" = 5 ] && head -1 "$T/tail.out" | grep -q '^position  time' &&
		ok "tail --table prints a header and a row per event; SIGINT exits 0" || bad "tail --table" "exit $rc" "$(cat "$T/tail.out" "$T/tail.err")"
fi

echo "1..$n"
[ "$fails" = 0 ]
