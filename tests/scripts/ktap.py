"""ktap.py -- what kappa's Python integration tests share: TAP output and a free loopback port.

    from ktap import ok, bad, check, free_port, finish
    check(cond, "what must hold", "diagnostic line", ...)
    finish()          # prints the plan "1..N" and exits 1 if any test failed (or none ran)
"""
import socket
import sys

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
