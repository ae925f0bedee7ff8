#!/usr/bin/env bash
# server_bad_input.sh -- kappa serve against a table of bad requests: every one answered with
# its documented status and {"error":{"code","message"}}, nothing written, the server alive
# and still taking good appends afterwards (tests/scripts/server_bad_input.py).
# The server listens on 127.0.0.1 only and is stopped by PID (tests/scripts/lib/py_suite.sh).
exec bash "$(dirname "$0")/lib/py_suite.sh" server_bad_input
