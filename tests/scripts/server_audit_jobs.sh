#!/usr/bin/env bash
# server_audit_jobs.sh -- GET /log/segments, and verification as a background job with
# progress (POST /audit/verify, GET /audit/verify/status, 409 while one runs, a job stopped
# by SIGTERM before the database closes): tests/scripts/server_audit_jobs.py.
# The server listens on 127.0.0.1 only and is stopped by PID (tests/scripts/lib/py_suite.sh).
exec bash "$(dirname "$0")/lib/py_suite.sh" server_audit_jobs
