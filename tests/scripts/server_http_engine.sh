#!/usr/bin/env bash
# server_http_engine.sh -- kappa serve's connection engine on the wire: pipelining, split
# requests, 100-continue, chunked bodies, HEAD, HTTP/1.0, clients that go away, slow readers
# (tests/scripts/server_http_engine.py). The server listens on 127.0.0.1 only and is stopped
# by PID (tests/scripts/lib/py_suite.sh).
exec bash "$(dirname "$0")/lib/py_suite.sh" server_http_engine
