#!/usr/bin/env bash
# server_slow_clients.sh -- kappa serve with 100 slowloris-style connections (headers a byte
# a second, bodies a few bytes a second, silent, slow readers of a 10 MB /log page) while
# normal clients append and read: every normal request must succeed within 2 s, the partial
# requests write nothing, and the server stays alive; what it did with the slow ones is
# printed (tests/scripts/server_slow_clients.py).
# The server listens on 127.0.0.1 only and is stopped by PID (tests/scripts/lib/py_suite.sh).
exec bash "$(dirname "$0")/lib/py_suite.sh" server_slow_clients
