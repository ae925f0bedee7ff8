#!/usr/bin/env python3
"""server_audit_jobs.py -- GET /log/segments and verification as a background job.

Usage: server_audit_jobs.py KAPPA_BIN TMPDIR

A `kappa serve` with tokens and 1 MiB segments gets about 40 MB of events. Then:
/log/segments (read scope) lists every segment, contiguous, the last one active, sizes
adding up to the log's bytes; POST /audit/verify (admin) starts a job and answers 202, a
second start while it runs answers 409 verify_running; GET /audit/verify/status shows
progress part-way (bytes and positions done below their totals) and ends "done" with an
ok result covering every event, percent 100; a job against a digest checks it; the old
GET /audit/verify still answers at the end; SIGTERM while a job runs stops the job before
the database closes and the server exits 0. Prints TAP. The server listens on 127.0.0.1
(a free port) and its PID goes to TMPDIR/server.pid for the wrapper.
"""
import http.client
import json
import os
import signal
import sys
import time
import traceback

KAPPA, TMP = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktap  # noqa: E402
from ktap import HOST, check, finish, free_port  # noqa: E402

PORT = free_port()
ADMIN, READ = "audit-admin-token-0123456789", "audit-read-token-0123456789ab"
DATA = os.path.join(TMP, "data")


class Client:
    """One keep-alive connection (so a second request follows the first at once)."""

    def __init__(self, token):
        self.token = token
        self.c = http.client.HTTPConnection(HOST, PORT, timeout=60)

    def req(self, method, path, body=None):
        h = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        self.c.request(method, path, body=data, headers=h)
        r = self.c.getresponse()
        b = r.read()
        try:
            j = json.loads(b)
        except ValueError:
            j = None
        return r.status, j, b

    def close(self):
        self.c.close()


def start():
    p, up = ktap.start_server(KAPPA, TMP, PORT, ["--data", DATA, "--auth-file", tokens,
                                                 "--segment-bytes", str(1 << 20), "--fsync", "never"])
    return p, up


def load(admin):
    pad = "x" * 100_000
    for i in range(40):
        st, j, b = admin.req("POST", f"/streams/big-{i % 4}",
                             {"events": [{"type": "Big", "data": {"i": i, "k": k, "pad": pad}} for k in range(10)]})
        if st != 201:
            return False, b
    return True, b""


def wait_done(admin, limit_s=60):
    """Poll the status until it is no longer running: (final status, statuses seen)."""
    seen = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        st, j, _ = admin.req("GET", "/audit/verify/status")
        if st != 200:
            return None, seen
        seen.append(j)
        if j["state"] != "running":
            return j, seen
        time.sleep(0.001)
    return None, seen


def segments_checks(reader, head):
    st, j, b = reader.req("GET", "/log/segments")
    segs = (j or {}).get("segments", [])
    check(st == 200 and j["count"] == len(segs) and len(segs) >= 30 and not j["truncated"],
          f"GET /log/segments (read token) lists every segment ({len(segs)} of 1 MiB for ~40 MB)", b[:300])
    contiguous = all(segs[i]["first_position"] == segs[i - 1]["end_position"] for i in range(1, len(segs)))
    check(contiguous and segs[0]["first_position"] == 0 and segs[-1]["end_position"] == head and
          sum(s["events"] for s in segs) == head,
          "segments are contiguous, oldest first, from position 0 to the head")
    states = [s["state"] for s in segs]
    check(states[-1] == "active" and all(s == "sealed" for s in states[:-1]),
          "the last segment is active, the others sealed", states[-3:])
    check(sum(s["bytes"] for s in segs) == j["bytes"] and
          all(s["bytes"] <= (1 << 20) + 1_100_000 for s in segs[:-1]) and all(s["bytes"] > 0 for s in segs[:-1]),
          "segment sizes add up to the log's bytes on disk, each about --segment-bytes")
    check(all(s["newest_time"] and s["newest_time"] >= (s["oldest_time"] or "") for s in segs[:-1]),
          "sealed segments carry their newest event time (and oldest when known)", segs[0])
    st, _, _ = Client(None).req("GET", "/log/segments")
    check(st == 401, "GET /log/segments needs a token", st)
    st, _, _ = reader.req("POST", "/log/segments")
    check(st == 405, "POST /log/segments is 405", st)


def job_checks(admin, reader, head):
    st, j, b = reader.req("POST", "/audit/verify")
    check(st == 403, "POST /audit/verify needs the admin scope", st, b)
    st, _, b = reader.req("GET", "/audit/verify/status")
    check(st == 403, "GET /audit/verify/status needs the admin scope", st, b)
    conflict = partway = None
    final = None
    for _ in range(3):  # the job is fast on an idle machine: try a few times to catch it running
        st, j, b = admin.req("POST", "/audit/verify")
        if st != 202 or j["state"] not in ("running", "done"):
            check(False, "POST /audit/verify starts a job (202)", st, b)
            return
        st2, j2, b2 = admin.req("POST", "/audit/verify")
        if st2 == 409 and conflict is None:
            conflict = (st2, j2)
        final, seen = wait_done(admin)
        partway = partway or next((s for s in seen if s["state"] == "running" and
                                   0 < s["bytes_done"] < s["bytes_total"] and
                                   0 < s["positions_done"] < s["positions_total"]), None)
        if st2 == 202:  # the first one was already over: that second one ran
            pass
        if conflict and partway:
            break
    check(conflict and conflict[1]["error"]["code"] == "verify_running",
          "a second start while a verification runs answers 409 verify_running", conflict)
    check(partway is not None, "the status shows progress part-way (bytes and positions done below their totals)",
          partway)
    r = (final or {}).get("result") or {}
    check(final and final["state"] == "done" and r.get("ok") is True and r.get("events") == head and
          final["positions_done"] == final["positions_total"] == head and
          final["bytes_done"] == final["bytes_total"] == r.get("bytes") and final["percent"] == 100 and
          final["error"] is None,
          "the job ends done: the chain holds over every event, 100%", final)
    st, d, _ = reader.req("GET", "/audit/digest")
    st, j, b = admin.req("POST", f"/audit/verify?position={d['position']}&chain_hash={d['chain_hash']}")
    final, _ = wait_done(admin)
    r = (final or {}).get("result") or {}
    check(st == 202 and final and final["state"] == "done" and r.get("ok") and r.get("digest_checked") is True and
          final.get("digest_position") == d["position"],
          "a job against a digest proves the log extends it", final)
    st, j, b = admin.req("POST", "/audit/verify?position=1&chain_hash=zz")
    check(st == 400 and j["error"]["code"] == "invalid_argument", "a malformed digest is 400", st, b)
    st, j, b = admin.req("GET", "/audit/verify")
    check(st == 200 and j["ok"] is True and j["events"] == head, "GET /audit/verify still answers at the end", b[:200])
    st, j, b = admin.req("DELETE", "/audit/verify")
    check(st == 405, "DELETE /audit/verify is 405", st)


def stop_checks(p, admin):
    st, j, _ = admin.req("POST", "/audit/verify")
    p.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    try:
        rc = p.wait(timeout=30)
    except Exception:
        rc = None
    secs = time.monotonic() - t0
    with open(os.path.join(TMP, "server.log")) as f:
        lines = f.read().splitlines()
    job = [i for i, l in enumerate(lines) if "event=audit_verify_job" in l]
    stopped = [i for i, l in enumerate(lines) if "event=stopped" in l]
    check(st == 202 and rc == 0 and job and stopped and job[-1] < stopped[-1],
          f"SIGTERM while a verification runs: the job ends before the database closes, exit 0 ({secs:.2f} s)",
          f"start {st}, exit {rc}", *lines[-4:])


def main():
    global tokens
    tokens = os.path.join(TMP, "tokens")
    with open(tokens, "w") as f:
        f.write(f"{ADMIN} admin\n{READ} read\n")
    os.chmod(tokens, 0o600)
    p, up = start()
    if not check(up is not None, "kappa serve starts"):
        return
    admin, reader = Client(ADMIN), Client(READ)
    try:
        t0 = time.monotonic()
        loaded, b = load(admin)
        check(loaded, f"about 40 MB of events append ({time.monotonic() - t0:.1f} s)", b[:200])
        head = reader.req("GET", "/log?from=0&limit=0")[1]["head"]
        segments_checks(reader, head)
        job_checks(admin, reader, head)
        stop_checks(p, admin)
    finally:
        admin.close()
        reader.close()
        if p.poll() is None:
            p.kill()
            p.wait()


try:
    main()
except Exception:
    check(False, "the suite runs to its end", traceback.format_exc())
finish()
