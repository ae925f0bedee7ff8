# bench/lib/servers.sh -- the servers a benchmark script starts: start them in the
# background, wait until they answer, stop them by PID, and stop whatever is left (and
# remove $T) when the script ends, also on errors and Ctrl-C. Sourced by bench/*/run.sh,
# which define T (their temp dir) and die.

PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free TCP port on 127.0.0.1: below the ephemeral range (where the load generators' own
# connections get their ports), with nothing answering there.
free_port() {
	local p lo
	lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
	[ "$lo" -gt 12000 ] || lo=32768
	while :; do
		p=$((10000 + RANDOM % (lo - 10000)))
		(echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

# Wait until a command succeeds (a server is up), or give up after ~30 s.
wait_for() {
	local i
	for i in $(seq 1 600); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}

# start NAME CHECK... -- COMMAND...: start a server in the background, its PID in SERVER
# (and PIDS, for the cleanup), and wait until CHECK succeeds.
start() {
	local name=$1 check=()
	shift
	while [ "$1" != -- ]; do
		check+=("$1")
		shift
	done
	shift
	"$@" >"$T/$name.log" 2>&1 &
	SERVER=$!
	PIDS+=("$SERVER")
	wait_for "${check[@]}" || die "$name did not start: $(tail -5 "$T/$name.log")"
}

# stop PID [SIGNAL]: stop one server started here and forget it.
stop() {
	local pid=$1 keep=() p
	kill "-${2:-TERM}" "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	for p in "${PIDS[@]}"; do
		[ "$p" = "$pid" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}
