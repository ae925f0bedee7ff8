#!/usr/bin/env bash
# server_crash.sh -- kappa serve killed with SIGKILL and restarted on the same port and data
# directory 5 times while 200 keep-alive clients append with request ids, expected versions
# and claims, retrying what a kill interrupted; then the whole log must hold every
# acknowledged append exactly once at its acknowledged positions, positions and versions
# dense, claims unique, and `kappa check` must pass (tests/scripts/server_crash.py).
# The server listens on 127.0.0.1 only and is stopped by PID (tests/scripts/lib/py_suite.sh).
exec bash "$(dirname "$0")/lib/py_suite.sh" server_crash
