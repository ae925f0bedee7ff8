#!/usr/bin/env bash
# fuzz_smoke.sh -- every libFuzzer target (fuzz/, built by `make fuzz-build`) for a short
# while: FUZZ_SMOKE_SECONDS each (default 12), two at a time. The seed corpus is replayed
# first, so a regression input checked into fuzz/corpus/ fails here at once. One TAP line
# per target (scripts/fuzz). Skipped under `make asan`: the targets already run with
# AddressSanitizer and UndefinedBehaviorSanitizer.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ "${BUILD:-build}" = build-asan ]; then
	echo "ok 1 - fuzz smoke # SKIP under make asan (the fuzz targets are sanitized already)"
	echo "1..1"
	exit 0
fi
FUZZ_JOBS=2 exec scripts/fuzz "${FUZZ_SMOKE_SECONDS:-12}"
