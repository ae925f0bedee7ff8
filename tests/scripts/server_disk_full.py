#!/usr/bin/env python3
"""server_disk_full.py -- kappa serve on a filesystem that really fills up (standard library
only).

Usage: server_disk_full.py KAPPA_BIN TMPDIR

The data directory lives on an 8 MiB tmpfs mounted at TMPDIR/mnt (a loopback ext4 image
when tmpfs cannot be mounted; the test is skipped, saying why, when neither can). A filler
file takes part of it. Appends of ~6 KiB events with request ids run until the server
answers 507 `disk_full` several times in a row; meanwhile it must stay alive, answer
/health and reads. Then the filler is removed and, without a restart, appends must succeed
again, every acknowledged append must be in the log exactly once, the counter view must
catch up with the log, and after SIGTERM `kappa check` and `kappa verify` must pass.

The mount and the server are undone by the wrapper (server_disk_full.sh) if this dies.
"""
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time

KAPPA, TMP = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktap  # noqa: E402
from ktap import HOST, bad, check, finish, free_port, ok  # noqa: E402

MNT = os.path.join(TMP, "mnt")
DATA = os.path.join(MNT, "data")
VIEWS = os.path.join(TMP, "views")
PORT = free_port()
PAD = "x" * 6000


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def mount_small():
    """Mount an 8 MiB filesystem at MNT; returns how, or None and why not."""
    os.makedirs(MNT, exist_ok=True)
    r = run("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", MNT)
    if r.returncode == 0:
        return "tmpfs", ""
    why = r.stderr.strip()
    img = os.path.join(TMP, "fs.img")
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    r = run("mkfs.ext4", "-q", "-F", img)
    if r.returncode == 0:
        r = run("mount", "-o", "loop", img, MNT)
        if r.returncode == 0:
            return "ext4 loopback image", ""
    return None, f"tmpfs: {why}; loopback ext4: {r.stderr.strip()}"


def request(method, path, body=None, timeout=10):
    c = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data,
                  headers={"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw
    finally:
        c.close()


def append(i):
    body = {"request_id": f"fill-{i}", "expected_version": "any",
            "events": [{"type": "Tick", "data": {"i": i, "n": i % 7, "pad": PAD}}]}
    return request("POST", f"/streams/s{i % 3}", body)


def read_log():
    events, pos = [], 0
    while True:
        st, j = request("GET", f"/log?from={pos}&limit=1000")
        if st != 200:
            raise RuntimeError(f"GET /log answered {st}: {j}")
        events += j["events"]
        if not j["events"]:
            return events
        pos = j["next"]


def main():
    how, why = mount_small()
    if not how:
        print(f"ok 1 # SKIP cannot mount a small filesystem ({why})")
        print("1..1")
        return
    print(f"# data on an {how} at {MNT}", flush=True)
    os.makedirs(VIEWS)
    with open(os.path.join(VIEWS, "counts.sql"), "w") as f:
        f.write("-- @view counts\n"
                "CREATE TABLE counts (stream TEXT PRIMARY KEY, n INTEGER NOT NULL,\n"
                "                     total INTEGER NOT NULL);\n"
                "-- @on Tick\n"
                "INSERT INTO counts VALUES (:stream, 1, :data->>'$.n')\n"
                "  ON CONFLICT(stream) DO UPDATE SET n = n + 1,"
                " total = total + excluded.total;\n"
                "-- @query all()\n"
                "SELECT stream, n, total FROM counts ORDER BY stream;\n")
    filler = os.path.join(MNT, "filler")
    with open(filler, "wb") as f:
        f.write(b"\0" * (2 << 20))
    srv, started = ktap.start_server(KAPPA, TMP, PORT, ["--data", DATA, "--views", VIEWS,
                                                        "--segment-bytes", "1048576"])
    if not check(started is not None, "kappa serve starts on the small filesystem",
                 ktap.log_tail(TMP)):
        return
    acked, full_in_a_row, i, other = {}, 0, 0, []
    t0 = time.monotonic()
    while full_in_a_row < 5 and time.monotonic() - t0 < 60 and i < 5000:
        st, j = append(i)
        if st == 201:
            acked[i] = j
            full_in_a_row = 0
        elif st == 507:
            full_in_a_row += 1
            if full_in_a_row == 1:
                first_full = (st, j)
        else:
            other.append((i, st, j))
        i += 1
    check(full_in_a_row >= 5, f"the disk fills up: 507 after {len(acked)} acknowledged appends",
          f"{i} appends sent in {time.monotonic() - t0:.1f} s")
    if full_in_a_row < 5:
        return
    check(first_full[1].get("error", {}).get("code") == "disk_full",
          "a full disk is answered 507 disk_full", first_full)
    check(not other, "no append was answered anything but 201 or 507", other[:5])
    st, _ = request("GET", "/health")
    check(st == 200 and srv.poll() is None, "the server stays alive and healthy while full",
          f"/health {st}")
    st, j = request("GET", "/log?from=0&limit=5")
    check(st == 200 and len(j.get("events", [])) == 5, "log reads work while the disk is full",
          st)
    # stream reads need the index, which cannot commit now: 200 if it caught up, else 507
    st, j = request("GET", "/streams/s0?from_version=0&limit=5")
    check(st in (200, 507), "stream reads answer 200 or 507 while the disk is full", st, j)

    os.unlink(filler)
    resumed, tries = None, 0
    while tries < 50:
        st, j = append(i)
        tries += 1
        if st == 201:
            acked[i] = j
            resumed = tries
            i += 1
            break
        time.sleep(0.1)
    check(resumed == 1, "with space freed, the next append succeeds without a restart",
          f"after {tries} tries: {st} {j}")
    for k in range(20):
        st, j = append(i)
        if st == 201:
            acked[i] = j
        i += 1
    check(len([k for k in acked if k >= i - 20]) == 20, "appends keep succeeding")

    events = read_log()
    seen = {}
    for e in events:
        seen.setdefault(e["data"]["i"], []).append(e["position"])
    lost = [k for k in acked if seen.get(k) != [acked[k]["first_position"]]]
    dup = [k for k, v in seen.items() if len(v) > 1]
    dense = [e["position"] for e in events] == list(range(len(events)))
    check(not lost and not dup and dense,
          f"every acknowledged append is in the log once, where acknowledged "
          f"({len(acked)} acknowledged, {len(events)} events)",
          f"lost {lost[:5]} duplicated {dup[:5]} dense {dense}")
    want = {}
    for e in events:
        n, t = want.get(e["stream"], (0, 0))
        want[e["stream"]] = (n + 1, t + e["data"]["n"])
    rows = None
    t1 = time.monotonic()
    while time.monotonic() - t1 < 20:
        st, j = request("GET", f"/views/counts/queries/all?min_position={len(events) - 1}")
        if st == 200:
            rows = {r["stream"]: (r["n"], r["total"]) for r in j["rows"]}
            if rows == want:
                break
        time.sleep(0.2)
    st2, vs = request("GET", "/views/counts")
    check(rows == want, "the counter view catches up and equals the log",
          f"view {rows} log {want} status {vs}")

    srv.send_signal(signal.SIGTERM)
    try:
        rc = srv.wait(timeout=30)
    except subprocess.TimeoutExpired:
        srv.kill()
        rc = srv.wait()
    check(rc == 0, "SIGTERM stops the server cleanly", f"exit {rc}", ktap.log_tail(TMP))
    r = run(KAPPA, "check", DATA)
    check(r.returncode == 0, "kappa check accepts the log", r.stdout, r.stderr)
    r = run(KAPPA, "verify", DATA)
    check(r.returncode == 0, "kappa verify accepts the audit chain", r.stdout, r.stderr)


try:
    main()
except Exception as e:  # noqa: BLE001
    bad("the test ran to its end", repr(e), ktap.log_tail(TMP))
finally:
    finish()
