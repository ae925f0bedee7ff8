#!/usr/bin/env bash
# bench/peers/run.sh -- kappa beside the systems users would pick instead, in one run, on one
# machine, with the durability of each stated: Redis 7 Streams (appendfsync always and
# everysec), PostgreSQL 15 as database + outbox table (synchronous_commit=on), NATS
# JetStream (file storage; also with per-message sync when the server offers it), SQLite
# alone (WAL, synchronous=FULL) and raw write+fdatasync of the same bytes (the physical limit).
#
# Workloads (build/peers_load, bench/peers/*.c; same payload, BENCH_SIZES bytes):
#   append   durable single-event appends          batch    BENCH_BATCH events per request
#   retry    the same idempotent request again     read     point reads of filled events
#   catchup  read BENCH_EVENTS filled events from the start, in pages of 1000
# each with 1, 16 and 64 concurrent clients (BENCH_CLIENTS). Every server is started here on
# 127.0.0.1 (free ports) with its data in a temp dir under BENCH_DIR, and stopped by PID at
# the end, on errors and on Ctrl-C. Writes and reads use separate fresh instances: the write
# workloads run on an empty system, the read workloads after a fill of BENCH_EVENTS events.
#
# Time: BENCH_SECONDS (10) bounds one workload of one system at one payload size; it is
# split over the client counts (3.3 s each by default: a BENCH_WARMUP of 0.5 s, then 2.8 s
# measured). Fills and catch-ups are bounded by BENCH_EVENTS instead. The default run takes
# about 10 minutes on an idle 2-vCPU machine; --quick (1.5 s per workload, 100,000 events)
# about 2.
#
# Output: progress on stderr; on stdout the environment, the durability of each
# configuration, one table with ratios kappa / peer, the targets, and then one JSON object
# per figure per line (bench/peers/report.py). BENCH_OUT=FILE keeps the raw measurements;
# `bench/peers/report.py FILE...` prints the medians of several runs.
#
# usage: bench/peers/run.sh [--quick]       (scripts/setup-bench peers installs the peers)
# env:   BENCH_SECONDS (10) BENCH_WARMUP (0.5) BENCH_CLIENTS (1,16,64) BENCH_SIZES (100,1024)
#        BENCH_EVENTS (1000000) BENCH_BATCH (100) BENCH_SYSTEMS (kappa,redis,pg,nats,sqlite,raw)
#        BENCH_DIR (/var/tmp) BENCH_OUT (file) KAPPA_BIN (build/kappa) PEERS_LOAD
#        (build/peers_load) BENCH_PERF (a directory: `perf record -g` of the kappa server
#        during its runs at the highest client count and its catch-up, one file each)
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=$PWD/bench/peers
BUILD=${BUILD:-build}

SECONDS_PER=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-0.5}
CLIENTS=${BENCH_CLIENTS:-1,16,64}
SIZES=${BENCH_SIZES:-100,1024}
EVENTS=${BENCH_EVENTS:-1000000}
BATCH=${BENCH_BATCH:-100}
SYSTEMS=${BENCH_SYSTEMS:-kappa,redis,pg,nats,sqlite,raw}
PERF_DIR=${BENCH_PERF:-}
if [ "${1:-}" = --quick ]; then
	SECONDS_PER=${BENCH_SECONDS:-1.5}
	WARMUP=${BENCH_WARMUP:-0.2}
	EVENTS=${BENCH_EVENTS:-100000}
elif [ -n "${1:-}" ]; then
	echo "usage: bench/peers/run.sh [--quick]" >&2
	exit 2
fi
KAPPA=${KAPPA_BIN:-$BUILD/kappa}
LOAD=${PEERS_LOAD:-$BUILD/peers_load}
PGBIN=/usr/lib/postgresql/15/bin

die() { echo "bench/peers: $*" >&2; exit 1; }
has() { [[ ",$SYSTEMS," == *",$1,"* ]]; }
[ -x "$KAPPA" ] || die "$KAPPA is missing: run make (or set KAPPA_BIN)"
[ -x "$LOAD" ] || die "$LOAD is missing: run make bench-peers"
for c in curl python3; do command -v "$c" >/dev/null || die "$c is missing"; done
! has redis || command -v redis-server >/dev/null || die "redis-server is missing: scripts/setup-bench peers"
! has pg || [ -x "$PGBIN/postgres" ] || die "PostgreSQL 15 is missing: scripts/setup-bench peers"
! has nats || command -v nats-server >/dev/null || die "nats-server is missing: scripts/setup-bench peers"
[ -z "$PERF_DIR" ] || command -v perf >/dev/null || die "perf is missing (BENCH_PERF)"

T=$(mktemp -d "${BENCH_DIR:-/var/tmp}/kappa-bench-peers.XXXXXX")
chmod 755 "$T" # PostgreSQL runs as its own user and must reach its directory
FSTYPE=$(df --output=fstype "$T" | tail -1 | tr -d ' ')
case $FSTYPE in
tmpfs | ramfs) echo "bench/peers: warning: $T is on $FSTYPE: fsync costs nothing there" >&2 ;;
esac
RESULTS=${BENCH_OUT:-$T/results.jsonl} # written as the run goes: kept if it stops early
: >"$RESULTS"
. "$HERE/../lib/servers.sh"

# PostgreSQL runs as the postgres user when we are root (initdb refuses root); setpriv
# execs, so the PID started here is the server's own.
AS_USER=()
[ "$(id -u)" -ne 0 ] || AS_USER=(setpriv --reuid=postgres --regid=postgres --init-groups --)

NCLIENTS=$(echo "$CLIENTS" | tr ',' '\n' | wc -l)
MAXC=$(echo "$CLIENTS" | tr ',' '\n' | sort -n | tail -1)
# each client count gets an equal share of BENCH_SECONDS, its warm-up included
PER=$(awk "BEGIN { x = $SECONDS_PER / $NCLIENTS - $WARMUP; printf \"%.3f\", x < 0.2 ? 0.2 : x }")

# measure SYSTEM CONFIG WORKLOAD TARGET SIZE: one peers_load run per client count (fill and
# catch-up once), its JSON lines appended to the results. With BENCH_PERF, the kappa server
# (PID in KSERVER) is profiled during its runs at the highest client count and its catch-up.
measure() {
	local sys=$1 config=$2 w=$3 target=$4 size=$5 c list perf
	case $w in reset | fill | catchup) list=1 ;; *) list=${CLIENTS//,/ } ;; esac
	for c in $list; do
		perf=
		if [ -n "$PERF_DIR" ] && [ "$sys" = kappa ] && { [ "$c" = "$MAXC" ] || [ "$w" = catchup ]; } &&
			[ "$w" != reset ] && [ "$w" != fill ]; then
			perf record -q -g -e cpu-clock -p "$KSERVER" \
				-o "$PERF_DIR/perf-$w-$size-c$c.data" >/dev/null 2>&1 &
			perf=$!
			PIDS+=("$perf")
			sleep 0.3
		fi
		"$LOAD" "$sys" "$w" --target "$target" --config "$config" --size "$size" \
			--clients "$c" --seconds "$PER" --warmup "$WARMUP" --batch "$BATCH" \
			--events "$EVENTS" >>"$RESULTS" || {
			echo "bench/peers: warning: $config $w ($size B, $c clients) failed" >&2
			echo "{\"kind\":\"note\",\"failed\":\"$config $w $size B c$c\"}" >>"$RESULTS"
		}
		[ -z "$perf" ] || stop "$perf" INT
	done
}

# ---- environment ---------------------------------------------------------------------------
ver_kappa=$("$KAPPA" version 2>/dev/null | head -1)
ver_redis=$(redis-server --version 2>/dev/null | sed -n 's/.*v=\([^ ]*\).*/\1/p')
ver_pg=$("$PGBIN/postgres" --version 2>/dev/null | sed 's/.*) //')
ver_nats=$(nats-server --version 2>/dev/null | sed 's/.*v//')
ver_sqlite=$(pkg-config --modversion sqlite3 2>/dev/null || echo "?")
ver_libnats=$(pkg-config --modversion libnats 2>/dev/null || echo "?")
ver_hiredis=$(pkg-config --modversion hiredis 2>/dev/null || echo "?")
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
load=$(cut -d' ' -f1 /proc/loadavg)
{
	echo "{\"kind\":\"env\",\"cpu\":\"$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)\",\"vcpus\":$(nproc),"
	echo "\"kernel\":\"$(uname -sr)\",\"fs\":\"$FSTYPE\",\"dir\":\"$T\",\"load\":\"$load\","
	echo "\"kappa\":\"$ver_kappa ($commit)\",\"redis\":\"$ver_redis\",\"postgresql\":\"$ver_pg\","
	echo "\"nats\":\"$ver_nats\",\"libnats\":\"$ver_libnats\",\"hiredis\":\"$ver_hiredis\","
	echo "\"sqlite\":\"$ver_sqlite\",\"seconds_per_measurement\":$PER,\"warmup\":$WARMUP,"
	echo "\"events\":$EVENTS,\"batch\":$BATCH,\"date\":\"$(date -u +%Y-%m-%dT%H:%MZ)\"}"
} | tr -d '\n' >>"$RESULTS"
echo >>"$RESULTS"
awk "BEGIN { exit !($load > 1.0) }" &&
	echo "bench/peers: warning: load average $load: other processes compete for the cores" >&2

# Does this nats-server offer a per-message sync (jetstream { sync_interval: always }, 2.10+)?
NATS_SYNC=no
if has nats; then
	printf 'listen: 127.0.0.1:4222\njetstream { store_dir: "%s/probe", sync_interval: always }\n' \
		"$T" >"$T/nats-probe.conf"
	nats-server -c "$T/nats-probe.conf" -t >/dev/null 2>&1 && NATS_SYNC=yes
	echo "{\"kind\":\"note\",\"nats_sync_always\":\"$NATS_SYNC\"}" >>"$RESULTS"
fi

# ---- PostgreSQL: one cluster for the whole run ---------------------------------------------
if has pg; then
	mkdir -p "$T/pg"
	[ "$(id -u)" -ne 0 ] || chown postgres: "$T/pg"
	"${AS_USER[@]}" "$PGBIN/initdb" -D "$T/pg/data" -A trust -U bench -E UTF8 >"$T/initdb.log" 2>&1 ||
		die "initdb failed: $(tail -5 "$T/initdb.log")"
	PGPORT=$(free_port)
	PGCONN="host=127.0.0.1 port=$PGPORT user=bench dbname=postgres"
	start postgresql "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" -- \
		"${AS_USER[@]}" "$PGBIN/postgres" -D "$T/pg/data" -p "$PGPORT" -c listen_addresses=127.0.0.1 \
		-c unix_socket_directories="$T/pg" -c fsync=on -c synchronous_commit=on \
		-c full_page_writes=on -c max_connections=200
	PGSERVER=$SERVER
fi

kappa_up() { curl -sf "http://127.0.0.1:$1/health"; }
redis_up() { redis-cli -p "$1" ping; }
nats_up() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for size in ${SIZES//,/ }; do
	echo "bench/peers: payload $size B, $PER s per measurement, clients $CLIENTS" >&2
	# ---- kappa: writes on an empty server without views; reads on a filled one with the
	# bench view. Default durability: --fsync always.
	if has kappa; then
		port=$(free_port)
		start kappa "kappa_up" "$port" -- "$KAPPA" serve --data "$T/kappa-w" \
			--listen "127.0.0.1:$port" --fsync always
		KSERVER=$SERVER
		for w in append batch retry; do
			measure kappa kappa $w "http://127.0.0.1:$port" "$size"
		done
		stop "$SERVER"
		mkdir -p "$T/views"
		cp "$HERE/bench.sql" "$T/views/"
		port=$(free_port)
		start kappa "kappa_up" "$port" -- "$KAPPA" serve --data "$T/kappa-r" \
			--views "$T/views" --listen "127.0.0.1:$port" --fsync always
		KSERVER=$SERVER
		for w in fill read catchup; do
			measure kappa kappa $w "http://127.0.0.1:$port" "$size"
		done
		stop "$SERVER"
		rm -rf "$T/kappa-w" "$T/kappa-r"
	fi
	# ---- Redis: appendonly yes with appendfsync always, then everysec; reads on an
	# in-memory instance (durability does not change reads). No idempotent append.
	if has redis; then
		for fs in always everysec; do
			port=$(free_port)
			mkdir -p "$T/redis"
			start redis "redis_up" "$port" -- redis-server --bind 127.0.0.1 --port "$port" \
				--dir "$T/redis" --appendonly yes --appendfsync "$fs" --save '' \
				--daemonize no --logfile ''
			[ "$(redis-cli -p "$port" config get appendfsync | tail -1)" = "$fs" ] ||
				die "redis: appendfsync is not $fs"
			for w in append batch; do
				measure redis "redis-$fs" $w "$port" "$size"
			done
			stop "$SERVER"
			rm -rf "$T/redis"
		done
		port=$(free_port)
		mkdir -p "$T/redis"
		start redis "redis_up" "$port" -- redis-server --bind 127.0.0.1 --port "$port" \
			--dir "$T/redis" --appendonly no --save '' --daemonize no --logfile ''
		for w in fill read catchup; do
			measure redis redis $w "$port" "$size"
		done
		stop "$SERVER"
		rm -rf "$T/redis"
	fi
	# ---- PostgreSQL: a new outbox table for the writes, another for the reads.
	if has pg; then
		for w in reset append batch retry reset fill read catchup; do
			measure pg pg $w "$PGCONN" "$size"
		done
	fi
	# ---- NATS JetStream, file storage: the default sync, then per-message sync if offered.
	if has nats; then
		syncs=default
		[ "$NATS_SYNC" = no ] || syncs="default always"
		for s in $syncs; do
			port=$(free_port)
			{
				echo "listen: 127.0.0.1:$port"
				echo "jetstream { store_dir: \"$T/nats\""
				[ "$s" = default ] || echo "  sync_interval: always"
				echo "}"
			} >"$T/nats.conf"
			start nats "nats_up" "$port" -- nats-server -c "$T/nats.conf"
			config=nats
			[ "$s" = default ] || config=nats-sync
			ws="reset append batch retry"
			[ "$s" = always ] || ws="$ws reset fill read catchup"
			for w in $ws; do
				measure nats $config $w "nats://127.0.0.1:$port" "$size"
			done
			stop "$SERVER"
			rm -rf "$T/nats"
		done
	fi
	# ---- SQLite (in the driver's process) and raw write+fdatasync.
	if has sqlite; then
		mkdir -p "$T/sqlite"
		for w in reset append batch retry reset fill read catchup; do
			measure sqlite sqlite $w "$T/sqlite" "$size"
		done
		rm -rf "$T/sqlite"
	fi
	if has raw; then
		mkdir -p "$T/raw"
		for w in reset append batch reset; do
			measure raw raw $w "$T/raw" "$size"
		done
	fi
done
[ -z "${PGSERVER:-}" ] || stop "$PGSERVER" INT
echo "{\"kind\":\"note\",\"load_end\":\"$(cut -d' ' -f1 /proc/loadavg)\",\"elapsed_s\":$SECONDS}" >>"$RESULTS"

python3 "$HERE/report.py" "$RESULTS"
