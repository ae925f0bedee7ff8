#!/usr/bin/env bash
# bench/http/run.sh -- kappa's HTTP benchmark, with its baselines measured in the same run,
# all on 127.0.0.1 with the load generator on the same cores:
#
#   1. the HTTP ceiling: nginx answering a tiny static response (wrk, GET /)
#   2. Redis 7 XADD with appendonly yes + appendfsync always (redis-benchmark), at the
#      append concurrency and at 50 connections for reference
#   3. kappa GET /health: its connection engine (src/server/http_*.c) with a trivial handler; then
#      kappa durable single-event appends (wrk + append.lua), fsync always, random streams
#      among BENCH_STREAMS; once more with a unique request_id per request (dedup cost)
#   4. kappa batched appends, BENCH_BATCH events per request
#   5. kappa named point queries (wrk + query.lua) on a view with one row per stream, after
#      preloading BENCH_QUERY_STREAMS streams (preload.py)
#
# Each measurement has a warm-up of BENCH_WARMUP seconds and lasts BENCH_DURATION seconds.
# Servers are started here on random free ports in a temp dir under BENCH_DIR and stopped
# by PID at the end; the temp dir is removed. Prints a table, the ratios against the
# targets, and then one JSON object per figure per line (the house format of bench/).
#
# usage: bench/http/run.sh                (scripts/setup-bench installs wrk, nginx, redis)
# env:   KAPPA_BIN (build/kappa) BENCH_DURATION (10) BENCH_WARMUP (2) BENCH_CONNS (64)
#        BENCH_THREADS (2, wrk threads) BENCH_STREAMS (10000) BENCH_BATCH (100)
#        BENCH_QUERY_STREAMS (10000) BENCH_REDIS_REF_CONNS (50) BENCH_DIR (/var/tmp)
#        BENCH_PERF (a directory: record `perf record -g` of the kappa server during the
#                    single-append and query runs there; those figures are then perturbed)
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=$PWD/bench/http

KAPPA=${KAPPA_BIN:-build/kappa}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNS:-64}
THREADS=${BENCH_THREADS:-2}
STREAMS=${BENCH_STREAMS:-10000}
BATCH=${BENCH_BATCH:-100}
QSTREAMS=${BENCH_QUERY_STREAMS:-10000}
REDIS_REF_CONNS=${BENCH_REDIS_REF_CONNS:-50}
PERF_DIR=${BENCH_PERF:-}

# Targets (the issue): appends >= 1.25x Redis XADD always at the same concurrency and
# > 0.6x the HTTP ceiling; queries >= 0.5x the ceiling; p99 append < 3 ms; batched > 1M/s.
T_REDIS=1.25 T_CEIL=0.6 T_QUERY=0.5 T_P99_US=3000 T_BATCH=1000000

die() { echo "bench/http: $*" >&2; exit 1; }
for c in wrk nginx redis-server redis-benchmark redis-cli curl python3; do
	command -v "$c" >/dev/null || die "$c is missing: run scripts/setup-bench"
done
[ -x "$KAPPA" ] || die "$KAPPA is missing: run make (or set KAPPA_BIN)"
[ "$THREADS" -le "$CONNS" ] || die "BENCH_THREADS must not exceed BENCH_CONNS"

T=$(mktemp -d "${BENCH_DIR:-/var/tmp}/kappa-bench-http.XXXXXX")
case $(stat -f -c %T "$T") in
tmpfs | ramfs) echo "bench/http: warning: $T is on tmpfs: fsync costs nothing there" >&2 ;;
esac
. "$HERE/../lib/servers.sh"

# A numeric field of a one-line JSON object in a file.
jget() { sed -n 's/.*"'"$2"'":\([-0-9.e+]*\).*/\1/p' "$1"; }

# Arithmetic on decimals: calc EXPR (awk), printed with 3 decimals.
calc() { awk "BEGIN { x = $1; printf \"%.3f\", x }"; }

# CPU time (clock ticks, user + system) of the server SERVER and its child processes (nginx's
# workers): with the requests served, the server's CPU cost per request, a figure that
# moves less than requests/s when the load generator shares the cores.
cpu_ticks() {
	local p t=0 f
	for p in "$SERVER" $(ps -o pid= --ppid "$SERVER" 2>/dev/null); do
		f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
		t=$((t + $(echo "$f" | awk '{ print $12 + $13 }')))
	done
	echo "$t"
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# Busy time of the whole machine (clock ticks: user, nice, system, irq, softirq, steal).
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# CPU time (microseconds) of this shell's finished children (the load generators), from
# the `times` builtin written to a file (a subshell would not see the children).
children_us() { awk 'NR == 2 { split($0, a, /[ms ]+/); printf "%.0f", (a[1] * 60 + a[2] + a[3] * 60 + a[4]) * 1e6 }' "$1"; }
NCPU=$(nproc)

# mark: remember the clocks before a measured run (see report).
mark() {
	M_SRV=$(cpu_ticks)
	M_BUSY=$(busy_ticks)
	times >"$T/times0"
	M_T=$(date +%s%N)
}

# report NAME: add the server's CPU per request, the load generator's, and the share of the
# machine used by anything else during the run (other processes: the figures are only
# comparable when it is near 0) to $T/NAME.json, and print the figures.
report() {
	local name=$1 srv busy t req cpu gen other
	t=$(date +%s%N)
	times >"$T/times1"
	busy=$(busy_ticks)
	srv=$(cpu_ticks)
	req=$(jget "$T/$name.json" requests)
	gen=$(($(children_us "$T/times1") - $(children_us "$T/times0")))
	read -r cpu gen other < <(awk "BEGIN { r = $req > 0 ? $req : 1; s = ($srv - $M_SRV) * $TICK_US
		o = (($busy - $M_BUSY) * $TICK_US - s - $gen) / (($t - $M_T) / 1000 * $NCPU) * 100
		printf \"%.1f %.1f %.1f\\n\", s / r, $gen / r, o < 0 ? 0 : o }")
	sed -i "s/}\$/,\"server_cpu_us\":$cpu,\"loadgen_cpu_us\":$gen,\"other_cpu_pct\":$other}/" "$T/$name.json"
	printf '  %-24s %9.0f req/s  p50 %6.0f us  p99 %6.0f us  CPU/req: server %5.1f us, load gen %4.1f us  other %4.1f%%\n' \
		"$name" "$(jget "$T/$name.json" rps)" "$(jget "$T/$name.json" p50_us)" \
		"$(jget "$T/$name.json" p99_us)" "$cpu" "$gen" "$other"
	awk "BEGIN { exit !($other > 5) }" &&
		echo "bench/http: warning: other processes used $other% of the machine during $name" >&2
	return 0
}

# wrk_run NAME URL SCRIPT [VAR=VALUE...]: warm up, then measure; the figures of the measured
# run go to $T/NAME.json (common.lua's done), wrk's report to $T/NAME.out. With PROFILE=1
# and BENCH_PERF set, the server is profiled during the measured run.
wrk_run() {
	local name=$1 url=$2 script=$3 errs
	shift 3
	env KB_LUA_DIR="$HERE" KB_NONCE="w$$" "$@" \
		wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -s "$HERE/$script" "$url" >/dev/null
	[ -z "$PERF_DIR" ] || [ "${PROFILE:-0}" = 0 ] || perf_start "$name"
	mark
	env KB_LUA_DIR="$HERE" KB_NONCE="m$$" "$@" \
		wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$HERE/$script" "$url" \
		>"$T/$name.out"
	[ -z "${PERF_REC:-}" ] || perf_stop
	grep '^WRK ' "$T/$name.out" | sed 's/^WRK //' >"$T/$name.json"
	[ -s "$T/$name.json" ] || die "wrk printed no figures for $name: $(cat "$T/$name.out")"
	errs=$(awk -F'"err_[a-z]*":' '{ s = 0; for (i = 2; i <= NF; i++) s += $i + 0; print s }' \
		"$T/$name.json")
	[ "$errs" = 0 ] || echo "bench/http: warning: $name had $errs errors: $(cat "$T/$name.json")" >&2
	report "$name"
}

perf_start() {
	perf record -q -g -e cpu-clock -p "$SERVER" -o "$PERF_DIR/perf-$1.data" >/dev/null 2>&1 &
	PERF_REC=$!
	PIDS+=("$PERF_REC")
	sleep 0.2 # let perf attach
}
perf_stop() {
	kill -INT "$PERF_REC" 2>/dev/null || true
	stop "$PERF_REC"
	PERF_REC=
}
[ -z "$PERF_DIR" ] || mkdir -p "$PERF_DIR"

# redis_run NAME PORT CONNS: warm up (which also sizes the run to last about DURATION
# seconds: redis-benchmark counts requests, not time), then measure; figures to $T/NAME.json.
redis_run() {
	local name=$1 port=$2 conns=$3 line rps n
	local args=(-h 127.0.0.1 -p "$port" -c "$conns" -P 1 --csv)
	line=$(redis-benchmark "${args[@]}" -n $((conns * 300)) XADD bench '*' f v | tail -1)
	rps=$(echo "$line" | awk -F'","' '{ print $2 + 0 }')
	n=$(awk "BEGIN { n = int($rps * $WARMUP); print (n < 10000 ? 10000 : n) }")
	redis-benchmark "${args[@]}" -n "$n" XADD bench '*' f v >/dev/null
	n=$(awk "BEGIN { n = int($rps * $DURATION); print (n < 10000 ? 10000 : n) }")
	mark
	line=$(redis-benchmark "${args[@]}" -n "$n" XADD bench '*' f v | tail -1)
	echo "$line" | awk -F'","' '{ printf "{\"requests\":%d,\"rps\":%s,\"p50_us\":%.1f,\"p99_us\":%.1f}\n", '"$n"', $2, $5 * 1000, $7 * 1000 }' >"$T/$name.json"
	report "$name"
}


load=$(cut -d' ' -f1 /proc/loadavg)
awk "BEGIN { exit !($load > 1.0) }" &&
	echo "bench/http: warning: load average $load: other processes compete for the cores" >&2
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
echo "bench/http: $(nproc) vCPU ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(uname -sr)"
[ -n "${KAPPA_BIN:-}" ] && commit="KAPPA_BIN" || commit="tree at $commit"
echo "  $("$KAPPA" version 2>/dev/null) $KAPPA ($commit), $(nginx -v 2>&1 | sed 's/.*: //'), redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "  wrk -t$THREADS -c$CONNS, ${WARMUP} s warm-up + ${DURATION} s per figure, data in $T ($(df --output=fstype "$T" | tail -1))"
echo

# ---- 1. the HTTP ceiling: nginx ------------------------------------------------------------
port=$(free_port)
mkdir -p "$T/nginx"
sed -e "s|@DIR@|$T/nginx|g" -e "s|@PORT@|$port|g" "$HERE/nginx.conf.in" >"$T/nginx/nginx.conf"
start nginx curl -sf "http://127.0.0.1:$port/" -- \
	nginx -c "$T/nginx/nginx.conf" -p "$T/nginx" -e "$T/nginx/nginx-error.log"
wrk_run nginx_static "http://127.0.0.1:$port/" static.lua
stop "$SERVER"

# ---- 2. Redis XADD, appendonly yes + appendfsync always ------------------------------------
port=$(free_port)
mkdir -p "$T/redis"
start redis redis-cli -p "$port" ping -- \
	redis-server --bind 127.0.0.1 --port "$port" --dir "$T/redis" --appendonly yes \
	--appendfsync always --save '' --daemonize no --logfile ''
[ "$(redis-cli -p "$port" config get appendfsync | tail -1)" = always ] || die "redis: appendfsync is not always"
redis_run redis_xadd_c$CONNS "$port" "$CONNS"
[ "$REDIS_REF_CONNS" = "$CONNS" ] || redis_run redis_xadd_c$REDIS_REF_CONNS "$port" "$REDIS_REF_CONNS"
stop "$SERVER"

# ---- 3 and 4. kappa appends (no views: the append path alone) ------------------------------
# First GET /health on the same server: the floor of its connection engine with
# a trivial synchronous handler, to tell the engine's cost from the append path's.
port=$(free_port)
start kappa-append curl -sf "http://127.0.0.1:$port/health" -- \
	"$KAPPA" serve --data "$T/kappa-append" --listen "127.0.0.1:$port" --fsync always
wrk_run kappa_health "http://127.0.0.1:$port/health" static.lua
PROFILE=1 wrk_run kappa_append "http://127.0.0.1:$port" append.lua KB_STREAMS="$STREAMS" KB_BATCH=1
wrk_run kappa_append_request_id "http://127.0.0.1:$port" append.lua KB_STREAMS="$STREAMS" \
	KB_BATCH=1 KB_REQUEST_ID=1
wrk_run kappa_append_batch$BATCH "http://127.0.0.1:$port" append.lua KB_STREAMS="$STREAMS" \
	KB_BATCH="$BATCH"
stop "$SERVER"

# ---- 5. kappa named point queries ----------------------------------------------------------
port=$(free_port)
mkdir -p "$T/views"
cp "$HERE/counts.sql" "$T/views/"
start kappa-query curl -sf "http://127.0.0.1:$port/health" -- \
	"$KAPPA" serve --data "$T/kappa-query" --views "$T/views" --listen "127.0.0.1:$port" \
	--fsync always
python3 "$HERE/preload.py" "127.0.0.1:$port" "$QSTREAMS" 10 || die "preloading failed"
caught_up() { curl -sf "http://127.0.0.1:$port/views/counts" | grep -q '"state":"live".*"lag":0[,}]'; }
wait_for caught_up || die "the view did not catch up: $(curl -s "http://127.0.0.1:$port/views/counts")"
out=$(curl -sf "http://127.0.0.1:$port/views/counts/queries/by_stream?stream=s-$QSTREAMS")
[[ "$out" == *'"n":10,'* ]] || die "the point query answers $out"
PROFILE=1 wrk_run kappa_query "http://127.0.0.1:$port" query.lua KB_STREAMS="$QSTREAMS"
stop "$SERVER"

# ---- ratios and figures --------------------------------------------------------------------
f() { jget "$T/$1.json" "$2"; }
ceil=$(f nginx_static rps)
redis=$(f redis_xadd_c$CONNS rps)
redis_ref=$(f redis_xadd_c$REDIS_REF_CONNS rps)
app=$(f kappa_append rps)
app_p50=$(f kappa_append p50_us)
app_p99=$(f kappa_append p99_us)
rid=$(f kappa_append_request_id rps)
rid_p99=$(f kappa_append_request_id p99_us)
batch_rps=$(f kappa_append_batch$BATCH rps)
batch_ev=$(calc "$batch_rps * $BATCH")
batch_p99=$(f kappa_append_batch$BATCH p99_us)
qry=$(f kappa_query rps)
qry_p99=$(f kappa_query p99_us)
r_redis=$(calc "$app / $redis")
r_ceil=$(calc "$app / $ceil")
r_query=$(calc "$qry / $ceil")
r_rid=$(calc "$rid / $app")
met() { awk "BEGIN { print ($1) ? \"met\" : \"NOT met\" }"; }

echo
echo "ratios (targets from the issue):"
printf '  appends/s / Redis XADD always (c%s) %8.3f   target >= %s   %s\n' "$CONNS" "$r_redis" "$T_REDIS" "$(met "$r_redis >= $T_REDIS")"
printf '  appends/s / HTTP ceiling            %8.3f   target >  %s    %s\n' "$r_ceil" "$T_CEIL" "$(met "$r_ceil > $T_CEIL")"
printf '  queries/s / HTTP ceiling            %8.3f   target >= %s    %s\n' "$r_query" "$T_QUERY" "$(met "$r_query >= $T_QUERY")"
printf '  p99 append latency                  %8.0f us target <  %s us %s\n' "$app_p99" "$T_P99_US" "$(met "$app_p99 < $T_P99_US")"
printf '  batched (%s/request) events/s      %9.0f   target >  %s %s\n' "$BATCH" "$batch_ev" "$T_BATCH" "$(met "$batch_ev > $T_BATCH")"
printf '  appends/s with request_id / without %8.3f   (the cost of deduplication)\n' "$r_rid"
printf '  (Redis XADD always at c%s: %.0f req/s, for reference)\n' "$REDIS_REF_CONNS" "$redis_ref"
cpu_n=$(f nginx_static server_cpu_us)
cpu_r=$(f redis_xadd_c$CONNS server_cpu_us)
cpu_a=$(f kappa_append server_cpu_us)
cpu_q=$(f kappa_query server_cpu_us)
health=$(f kappa_health rps)
cpu_h=$(f kappa_health server_cpu_us)
printf '  kappa GET /health (its connection engine with a trivial handler): %.0f req/s = %.3f of nginx, %.1f us CPU/req\n' \
	"$health" "$(calc "$health / $ceil")" "$cpu_h"
printf '  server CPU per request: append %.1f us = %.1fx nginx, %.1fx Redis XADD; query %.1f us = %.1fx nginx\n' \
	"$cpu_a" "$(calc "$cpu_a / $cpu_n")" "$(calc "$cpu_a / $cpu_r")" "$cpu_q" "$(calc "$cpu_q / $cpu_n")"
echo

# json CONNS PHASES METRIC VALUE UNIT [BASELINE RATIO [TARGET]]: one figure as a JSON line;
# "-" leaves a field out. PHASES (comma-separated) are the measurements the figure comes
# from: the line carries the largest share of the machine that other processes used
# during them ("other_cpu_pct"; median.py leaves out figures measured while it was high).
json() {
	local s o p
	s=$(printf '{"bench":"http","metric":"%s","connections":%s,"value":%s,"unit":"%s"' "$3" "$1" "$4" "$5")
	[ "${6:--}" = - ] || s+=$(printf ',"baseline":%s,"ratio":%s' "$6" "$7")
	[ "${8:--}" = - ] || s+=$(printf ',"target":%s' "$8")
	o=0
	for p in ${2//,/ }; do
		o=$(awk "BEGIN { x = $(f "$p" other_cpu_pct); print (x > $o ? x : $o) }")
	done
	echo "$s,\"other_cpu_pct\":$o}"
}
C=$CONNS
json $C nginx_static nginx_static_rps "$ceil" "req/s"
json $C redis_xadd_c$CONNS redis_xadd_always_rps "$redis" "req/s"
json $C redis_xadd_c$CONNS redis_xadd_always_p99_us "$(f redis_xadd_c$CONNS p99_us)" "us"
[ "$REDIS_REF_CONNS" = "$CONNS" ] ||
	json "$REDIS_REF_CONNS" redis_xadd_c$REDIS_REF_CONNS redis_xadd_always_rps "$redis_ref" "req/s"
json $C kappa_append,redis_xadd_c$CONNS appends_per_s "$app" "appends/s" "$redis" "$r_redis" "$T_REDIS"
json $C kappa_health,nginx_static health_rps "$health" "req/s" "$ceil" "$(calc "$health / $ceil")"
json $C kappa_append,kappa_health appends_per_s_vs_health "$app" "appends/s" "$health" "$(calc "$app / $health")"
json $C kappa_append,nginx_static appends_per_s_vs_http_ceiling "$app" "appends/s" "$ceil" "$r_ceil" "$T_CEIL"
json $C kappa_append append_p50_us "$app_p50" "us"
json $C kappa_append append_p99_us "$app_p99" "us" - - "$T_P99_US"
json $C kappa_append_request_id,kappa_append appends_with_request_id_per_s "$rid" "appends/s" "$app" "$r_rid"
json $C kappa_append_request_id append_with_request_id_p99_us "$rid_p99" "us"
json $C kappa_append_batch$BATCH batched_events_per_s "$batch_ev" "events/s" - - "$T_BATCH"
json $C kappa_append_batch$BATCH batched_p99_us "$batch_p99" "us"
json $C kappa_query,nginx_static queries_per_s "$qry" "queries/s" "$ceil" "$r_query" "$T_QUERY"
json $C kappa_query query_p99_us "$qry_p99" "us"
json $C kappa_health server_cpu_us_health "$cpu_h" "us/request"
json $C nginx_static server_cpu_us_nginx_static "$cpu_n" "us/request"
json $C redis_xadd_c$CONNS server_cpu_us_redis_xadd "$cpu_r" "us/request"
json $C kappa_append,nginx_static server_cpu_us_append "$cpu_a" "us/request" "$cpu_n" "$(calc "$cpu_a / $cpu_n")"
json $C kappa_append_request_id server_cpu_us_append_request_id "$(f kappa_append_request_id server_cpu_us)" "us/request"
json $C kappa_append_batch$BATCH server_cpu_us_batch "$(f kappa_append_batch$BATCH server_cpu_us)" "us/request"
json $C kappa_query,nginx_static server_cpu_us_query "$cpu_q" "us/request" "$cpu_n" "$(calc "$cpu_q / $cpu_n")"
json $C nginx_static loadgen_cpu_us_nginx_static "$(f nginx_static loadgen_cpu_us)" "us/request"
json $C kappa_append loadgen_cpu_us_append "$(f kappa_append loadgen_cpu_us)" "us/request"
