#!/usr/bin/env python3
"""bench_peers.py -- the parts of bench/peers that need no peer installed (standard library
only): its view definition against a real server, and its report.

Usage: bench_peers.py KAPPA_BIN TMPDIR

1. kappa serve with bench/peers/bench.sql answers the named point query the benchmark's
   read workload sends (GET /views/bench/queries/get?id=<position>) with the event's data,
   and /views/bench reports the position the benchmark's fill waits for.
2. bench/peers/report.py on a synthetic two-run results file: medians over the runs,
   ratios kappa / peer within each run, the durability lines, Redis's missing idempotence,
   the targets (met and not met as the figures say), one JSON object per figure per line
   with bench, metric, value, unit (and baseline/ratio for kappa against each peer), and the
   Markdown table.

The server listens on 127.0.0.1; its PID is kept in TMPDIR/server.pid for the wrapper.
"""
import http.client
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ktap import HOST, check, finish, free_port, log_tail, start_server  # noqa: E402

KAPPA, TMP = sys.argv[1], sys.argv[2]
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
REPORT = os.path.join(ROOT, "bench", "peers", "report.py")


def request(port, method, path, body=None):
    c = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        c.request(method, path, json.dumps(body) if body is not None else None, hdrs)
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        c.close()


def view_test():
    views = os.path.join(TMP, "views")
    os.makedirs(views)
    with open(os.path.join(ROOT, "bench", "peers", "bench.sql")) as f:
        sql = f.read()
    with open(os.path.join(views, "bench.sql"), "w") as f:
        f.write(sql)
    port = free_port()
    p, up = start_server(KAPPA, TMP, port, ["--data", os.path.join(TMP, "data"), "--views", views])
    try:
        if not check(up is not None, "kappa serve starts with bench/peers/bench.sql", log_tail(TMP)):
            return
        payload = {"p": "x" * 90}
        st, ans = request(port, "POST", "/streams/s-1",
                          {"request_id": "r-1", "events": [{"type": "Bench", "data": payload},
                                                           {"type": "Bench", "data": {"p": "y"}}]})
        check(st == 201 and ans.get("last_position") == 1, "two Bench events appended", st, ans)
        deadline, status = time.monotonic() + 10, {}
        while time.monotonic() < deadline:
            st, status = request(port, "GET", "/views/bench")
            if st == 200 and status.get("position", 0) >= 2:
                break
            time.sleep(0.05)
        check(status.get("position") == 2, "/views/bench reports position 2 once both are applied",
              status)
        st, ans = request(port, "GET", "/views/bench/queries/get?id=0")
        rows = ans.get("rows") if isinstance(ans, dict) else None
        check(st == 200 and rows and json.loads(rows[0]["data"]) == payload,
              "the get query answers the event at position 0 with its data", st, ans)
        st, ans = request(port, "GET", "/views/bench/queries/get?id=7")
        check(st == 200 and ans.get("rows") == [], "a position without an event answers no row",
              st, ans)
    finally:
        p.terminate()
        p.wait(timeout=20)


def meas(config, workload, size, clients, eps, p50=100.0, p99=900.0):
    return {"system": config.split("-")[0], "config": config, "workload": workload, "size": size,
            "clients": clients, "batch": 1, "seconds": 3.0, "ops": int(eps * 3),
            "events": int(eps * 3), "ops_per_s": eps, "events_per_s": eps,
            "mb_per_s": eps * size / 1e6, "p50_us": p50, "p99_us": p99, "errors": 0}


def report_test():
    env = {"kind": "env", "cpu": "Test CPU", "vcpus": 2, "kernel": "Linux 6", "fs": "ext4",
           "dir": "/var/tmp/x", "load": "0.5", "kappa": "kappa 0.1.0", "redis": "7.0.15",
           "postgresql": "15", "nats": "2.9.10", "libnats": "3.4.1", "hiredis": "0.14.1",
           "sqlite": "3.40.1", "seconds_per_measurement": 3.3, "warmup": 0.5,
           "events": 1000000, "batch": 100, "date": "2026-11-23T10:00Z"}
    runs = []
    # run 1 and run 2: kappa appends at 64 clients 30k and 50k, Redis always 20k and 25k:
    # ratios 1.5 and 2.0 (median 1.75; the ratio of the medians would be 40/22.5 = 1.78).
    for kappa_app, redis_app, kappa_batch_mb in ((30000, 20000, 90.0), (50000, 25000, 70.0)):
        rows = [env, {"kind": "note", "nats_sync_always": "no"},
                meas("kappa", "append", 100, 64, kappa_app, 500, 2000),
                meas("redis-always", "append", 100, 64, redis_app),
                meas("redis-everysec", "append", 100, 64, 60000),
                meas("pg", "append", 100, 64, 10000),
                meas("kappa", "batch", 100, 64, kappa_batch_mb * 1e4),
                meas("raw", "batch", 100, 64, 1e6),
                meas("kappa", "read", 100, 64, 20000),
                meas("redis", "read", 100, 64, 50000),
                meas("kappa", "catchup", 100, 1, 1.5e6),
                meas("kappa", "retry", 100, 64, 40000),
                meas("pg", "retry", 100, 64, 20000)]
        path = os.path.join(TMP, "run%d.jsonl" % (len(runs) + 1))
        with open(path, "w") as f:
            f.write("\n".join(json.dumps(r) for r in rows) + "\n")
        runs.append(path)
    r = subprocess.run([sys.executable, REPORT, *runs], capture_output=True, text=True, timeout=60)
    out = r.stdout
    if not check(r.returncode == 0, "report.py reads two runs", r.stderr):
        return
    lines = out.splitlines()
    row = [ln for ln in lines if ln.startswith("append") and " kappa " in ln]
    check(row and "40,000" in row[0] and "500" in row[0],
          "kappa's appends are the median of the runs (40,000/s, p50 500 us)", row)
    row = [ln for ln in lines if ln.startswith("append") and "redis-always" in ln]
    check(row and row[0].split()[-1] == "1.75",
          "the ratio kappa / Redis is the median of the per-run ratios (1.75)", row)
    check(any("redis-everysec" in ln and "NOT durable" in ln for ln in lines) and
          any(ln.split()[:1] == ["pg"] and "synchronous_commit=on" in ln for ln in lines),
          "each configuration's durability is stated", out)
    check(any("redis" in ln and "no idempotent append" in ln for ln in lines),
          "the output says Redis has no idempotent append", out)
    check(any("nats-sync" in ln and "not run" in ln for ln in lines),
          "the output says why NATS with per-message sync did not run", out)

    def target(text):
        t = [ln for ln in lines if ln.strip().startswith(text) and "target >=" in ln]
        return t[0] if t else ""
    check(target("durable appends/s, 100 B, 64 clients: kappa / redis-always").endswith(" met"),
          "the Redis append target (1.75 >= 1.25) is met", target("durable appends/s"))
    check(target("durable appends/s, 100 B, 64 clients: kappa / pg").endswith(" met"),
          "the PostgreSQL append target (4.0 >= 3) is met", out)
    check(target("batched MB/s, 100 B, 64 clients").endswith(" met"),
          "the batch target (0.8 of raw) is met at the median 80 MB/s", out)
    check(target("point reads/s, 100 B, 64 clients").endswith("NOT met"),
          "the read target (0.4 of Redis < 0.5) is not met", out)
    check(target("catch-up of 1000000 events, 100 B").endswith(" met"),
          "the catch-up target (1.5M events/s) is met", out)
    objs = []
    for ln in lines:
        if ln.startswith("{"):
            try:
                objs.append(json.loads(ln))
            except ValueError:
                pass
    check(objs and lines[-1].startswith("{") and all(
        {"bench", "metric", "value", "unit"} <= o.keys() and o["bench"] == "peers" for o in objs),
        "the output ends with JSON objects, each with bench, metric, value and unit",
        lines[-3:])
    vs = [o for o in objs if o["metric"] == "append_events_per_s_vs_pg"]
    check(len(vs) == 1 and vs[0]["value"] == 40000 and vs[0]["baseline"] == 10000 and
          vs[0]["ratio"] == 4.0, "kappa against PostgreSQL carries baseline and ratio", vs)
    r = subprocess.run([sys.executable, REPORT, "--markdown", *runs], capture_output=True,
                       text=True, timeout=60)
    md = r.stdout.splitlines()
    check(r.returncode == 0 and md[0].startswith("| workload |") and
          any(ln.startswith("| append | 100 B | 64 | **kappa** | 40,000 |") for ln in md),
          "--markdown prints the table for BENCHMARKS.md", md[:4])


def main():
    view_test()
    report_test()
    finish()


if __name__ == "__main__":
    main()
