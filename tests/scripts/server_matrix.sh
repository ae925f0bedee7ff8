#!/usr/bin/env bash
# server_matrix.sh -- the bad-input and security matrix against kappa serve with an auth file
# (tests/scripts/server_matrix.py; the table is in docs/testing.md). The server listens on
# 127.0.0.1 only and is stopped by PID (tests/scripts/lib/py_suite.sh).
exec bash "$(dirname "$0")/lib/py_suite.sh" server_matrix
