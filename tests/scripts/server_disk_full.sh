#!/usr/bin/env bash
# server_disk_full.sh -- kappa serve on an 8 MiB filesystem that fills up during appends:
# 507 disk_full, nothing acknowledged lost, appends resume without a restart once space is
# freed (tests/scripts/server_disk_full.py). Needs root to mount a tmpfs (or a loopback
# image); skipped with the reason otherwise. The server listens on 127.0.0.1 only; it is
# killed by PID and the filesystem unmounted here if the test dies.
set -uo pipefail
cd "$(dirname "$0")/../.."
KAPPA=${KAPPA_BIN:-build/kappa}
T=$(mktemp -d "${TEST_TMPDIR:-/tmp}/kappa-disk-full.XXXXXX")
cleanup() {
	if [ -s "$T/server.pid" ]; then
		kill -9 "$(cat "$T/server.pid")" 2>/dev/null
		sleep 0.2
	fi
	if mountpoint -q "$T/mnt" 2>/dev/null; then
		umount "$T/mnt" || umount -l "$T/mnt"
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
python3 tests/scripts/server_disk_full.py "$KAPPA" "$T"
rc=$?
if [ "$rc" -ne 0 ] && [ -s "$T/server.log" ]; then
	echo "# server log (tail):"
	tail -n 20 "$T/server.log" | sed 's/^/#   /'
fi
exit "$rc"
