#!/usr/bin/env bash
# bench_peers.sh -- what of bench/peers can be checked without the peers installed: its view
# definition served by kappa (the point query its read workload sends) and its report
# (medians, ratios, durability lines, targets, JSON figures) on synthetic results
# (tests/scripts/bench_peers.py). The server listens on 127.0.0.1 only and is stopped by PID
# (tests/scripts/lib/py_suite.sh).
exec bash "$(dirname "$0")/lib/py_suite.sh" bench_peers
