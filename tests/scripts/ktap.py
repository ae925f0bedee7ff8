"""ktap.py -- what kappa's Python integration tests share: TAP output and a free loopback port.

    from ktap import ok, bad, check, free_port, finish, start_server, log_tail
    check(cond, "what must hold", "diagnostic line", ...)
    finish()          # prints the plan "1..N" and exits 1 if any test failed (or none ran)
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import time

HOST = "127.0.0.1"
counts = {"tests": 0, "fail": 0}


def ok(desc):
    counts["tests"] += 1
    print(f"ok {counts['tests']} - {desc}", flush=True)


def bad(desc, *diag):
    counts["tests"] += 1
    counts["fail"] += 1
    print(f"not ok {counts['tests']} - {desc}", flush=True)
    for d in diag:
        for line in str(d).splitlines() or [""]:
            print(f"# {line}", flush=True)


def check(cond, desc, *diag):
    if cond:
        ok(desc)
    else:
        bad(desc, *diag)
    return cond


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def plan():
    print(f"1..{counts['tests']}", flush=True)


def finish():
    plan()
    sys.exit(1 if counts["fail"] or counts["tests"] == 0 else 0)


def start_server(kappa, tmp, port, args):
    """Start `kappa serve --listen 127.0.0.1:PORT ARGS...`, logging to TMP/server.log and
    writing its PID to TMP/server.pid (the shell wrapper kills that PID if the test dies).
    Returns (process, seconds until /health answered, or None if it never did)."""
    with open(os.path.join(tmp, "server.log"), "ab") as log:
        p = subprocess.Popen([kappa, "serve", "--listen", f"{HOST}:{port}", *args],
                             stdout=log, stderr=log)
    with open(os.path.join(tmp, "server.pid"), "w") as f:
        f.write(str(p.pid))
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30 and p.poll() is None:
        c = http.client.HTTPConnection(HOST, port, timeout=1)
        try:
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return p, time.monotonic() - t0
        except (OSError, http.client.HTTPException):
            pass
        finally:
            c.close()
        time.sleep(0.02)
    return p, None


def log_tail(tmp, n=15):
    """The last lines of TMP/server.log."""
    try:
        with open(os.path.join(tmp, "server.log"), errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


COUNTS_VIEW = """-- @view counts
CREATE TABLE counts (stream TEXT PRIMARY KEY, n INTEGER NOT NULL);
-- @on T
INSERT INTO counts VALUES (:stream, 1) ON CONFLICT(stream) DO UPDATE SET n = n + 1;
-- @query by_stream(stream)
SELECT stream, n FROM counts WHERE stream = :stream;
"""


def write_counts_view(views_dir):
    """The small view the server suites query: events of type T counted per stream."""
    with open(os.path.join(views_dir, "counts.sql"), "w") as f:
        f.write(COUNTS_VIEW)


def jload(b):
    """JSON text (bytes or str) as a value, or None when it is not JSON."""
    try:
        return json.loads(b)
    except (ValueError, TypeError):
        return None


def error_problems(j, codes=None):
    """What is wrong with an error answer's parsed body 'j': it must be {"error": {"code",
    "message"}} with a non-empty code (one of 'codes', a collection, when given) and
    message. Returns a list of problems (empty when it is right)."""
    err = j.get("error") if isinstance(j, dict) else None
    if not isinstance(err, dict):
        return ['no {"error": {"code", "message"}} body']
    code, msg, why = err.get("code"), err.get("message"), []
    if not isinstance(code, str) or not code:
        why.append("no error code")
    elif codes is not None and code not in codes:
        why.append(f"code {code!r}, want {sorted(codes)}")
    if not isinstance(msg, str) or not msg:
        why.append("empty message")
    return why
