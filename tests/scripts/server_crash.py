#!/usr/bin/env python3
"""server_crash.py -- kappa serve killed with SIGKILL under 200 concurrent writers
(standard library only).

Usage: server_crash.py KAPPA_BIN TMPDIR

200 client threads, each with a keep-alive connection, append single events and small
batches, every request with a unique request id: some to the client's own stream with an
exact expected version, some to shared streams, some taking uniqueness claims, and some
repeating an earlier acknowledged request on purpose. Meanwhile the server is killed with
SIGKILL and restarted on the same port and data directory ROUNDS times at random moments.
A request whose connection fails is retried with the same request id once the server is back
(its first attempt may or may not have landed) until it gets an answer.

Then the whole log is read with GET /log pagination and checked: every acknowledged append
is there exactly once, at its acknowledged positions, with its stream, versions, types and
payloads; positions are dense from 0 and versions dense per stream; no request id's events
appear twice and no event comes from an unacknowledged request; each claim key was given to
one stream, and still is after the restarts; repeated requests answered deduplicated with the
original positions. Finally SIGTERM must stop the server cleanly and `kappa check` must
accept the data. Prints TAP; exits non-zero on any failure.

The server listens on 127.0.0.1; the PID of the one running is kept in TMPDIR/server.pid so
the wrapper can kill it (and only it) if this script dies.
"""
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

KAPPA, TMP = sys.argv[1], sys.argv[2]
CLIENTS = int(os.environ.get("SERVER_CRASH_CLIENTS", "200"))
ROUNDS = int(os.environ.get("SERVER_CRASH_ROUNDS", "5"))
SEED = int(os.environ.get("SERVER_CRASH_SEED", str(random.randrange(1 << 30))))
SHARED = 8
SEATS = 2000

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktap  # noqa: E402
from ktap import HOST, bad, check, finish, free_port, ok, plan  # noqa: E402

PORT = free_port()
PIDFILE = os.path.join(TMP, "server.pid")
DATA = os.path.join(TMP, "data")
print(f"# seed={SEED} clients={CLIENTS} rounds={ROUNDS} port={PORT}", flush=True)
rng = random.Random(SEED)


def get_json(path, timeout=30):
    c = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        b = r.read()
        return r.status, json.loads(b) if b else None
    finally:
        c.close()


def start_server():
    return ktap.start_server(KAPPA, TMP, PORT, ["--data", DATA])


def server_log_tail():
    return ktap.log_tail(TMP)


# ---- clients -------------------------------------------------------------------------------

stop_writing = threading.Event()
give_up_at = time.monotonic() + 90  # a request unanswered by then is reported, not retried
lock = threading.Lock()
acked = {}  # rid -> dict(stream, first, last, version, events, claims, dedup_first)
refused = {}  # rid -> (status, code): final non-2xx answers
errors = []  # unexpected answers
stats = {"requests": 0, "conn_errors": 0, "retried": 0, "retried_dedup": 0,
         "retried_landed": 0, "repeats": 0, "repeats_ok": 0, "claim_taken": 0,
         "unanswered": 0}


def bump(k, n=1):
    with lock:
        stats[k] += n


class Client(threading.Thread):
    def __init__(self, idx):
        super().__init__(daemon=True)
        self.idx = idx
        self.rng = random.Random(SEED * 1000 + idx)
        self.stream = f"c{idx}"
        self.version = -1  # last version of the own stream, as acknowledged
        self.conn = None
        self.seq = 0
        self.mine = []  # (rid, path, body) acknowledged, for repeats
        self.held = set()

    def connect(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, PORT, timeout=20)
        return self.conn

    def drop(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None

    def post(self, path, body):
        """Send until answered: (status, json, attempts) or (None, None, attempts)."""
        attempts = 0
        while True:
            attempts += 1
            try:
                c = self.connect()
                c.request("POST", path, body=body,
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                raw = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.drop()
                try:
                    j = json.loads(raw)
                except ValueError:
                    j = {"unparsable": raw[:200].decode("latin-1")}
                return r.status, j, attempts
            except (OSError, http.client.HTTPException):
                self.drop()
                bump("conn_errors")
                if time.monotonic() > give_up_at:
                    return None, None, attempts
                time.sleep(self.rng.uniform(0.02, 0.1))

    def make_request(self):
        r = self.rng
        self.seq += 1
        rid = f"r{self.idx}-{self.seq}-{r.randrange(1 << 30):x}"
        kind = r.random()
        claims = []
        if kind < 0.45:  # own stream, exact expected version
            stream = self.stream
            expected = "no_stream" if self.version < 0 else self.version
            if r.random() < 0.3:
                seat = f"seat-{r.randrange(SEATS)}"
                if seat not in self.held:
                    claims = [{"claim": seat}]
        elif kind < 0.85:  # shared streams, any version
            stream = f"shared-{r.randrange(SHARED)}"
            expected = "any"
        else:  # own stream, any version, with a claim
            stream = self.stream
            expected = "any"
            seat = f"seat-{r.randrange(SEATS)}"
            if seat not in self.held:
                claims = [{"claim": seat}]
        nev = 1 if r.random() < 0.5 else r.randint(2, 5)
        events = []
        for i in range(nev):
            e = {"type": r.choice(["Crash", "Tick", "Batch"]),
                 "data": {"rid": rid, "i": i, "c": self.idx,
                          "pad": "%x" % r.getrandbits(4 * r.randint(1, 120))}}
            if r.random() < 0.2:
                e["metadata"] = {"m": i, "rid": rid}
            if r.random() < 0.1:
                e["subject"] = f"subj-{self.idx % 17}"
            events.append(e)
        req = {"expected_version": expected, "request_id": rid, "events": events}
        if claims:
            req["claims"] = claims
        return rid, stream, req

    def one(self):
        # Now and then repeat an acknowledged request on purpose.
        if self.mine and self.rng.random() < 0.1:
            self.repeat(self.rng.choice(self.mine))
            return
        rid, stream, req = self.make_request()
        body = json.dumps(req, separators=(",", ":"))
        path = f"/streams/{stream}"
        st, j, attempts = self.post(path, body)
        bump("requests")
        if attempts > 1:
            bump("retried")
        if st is None:
            bump("unanswered")
            with lock:
                errors.append(f"{rid}: never answered")
            return
        if st in (200, 201) and isinstance(j, dict) and "first_position" in j:
            dedup = bool(j.get("deduplicated"))
            if (st == 200) != dedup:
                with lock:
                    errors.append(f"{rid}: status {st} with deduplicated={dedup}")
            if dedup and attempts == 1:
                with lock:
                    errors.append(f"{rid}: a first attempt answered deduplicated: {j}")
            if attempts > 1:
                bump("retried_dedup" if dedup else "retried_landed")
            rec = {"stream": stream, "first": j["first_position"], "last": j["last_position"],
                   "version": j["version"], "events": req["events"],
                   "claims": [c["claim"] for c in req.get("claims", [])]}
            with lock:
                acked[rid] = rec
            self.mine.append((rid, path, body))
            if stream == self.stream:
                if req["expected_version"] != "any" and \
                        j["version"] != self.version + len(req["events"]):
                    with lock:
                        errors.append(f"{rid}: own stream at {self.version}, appended "
                                      f"{len(req['events'])}, answered version {j['version']}")
                self.version = j["version"]
            self.held.update(rec["claims"])
            return
        code = (j.get("error") or {}).get("code") if isinstance(j, dict) else None
        with lock:
            refused[rid] = (st, code)
        if st == 409 and code == "claim_taken":
            bump("claim_taken")
            holder = j["error"].get("holder")
            if holder == stream:
                with lock:
                    errors.append(f"{rid}: claim_taken by its own stream {stream} (a retry "
                                  f"after a lost answer must be deduplicated): {j}")
            return
        with lock:
            errors.append(f"{rid}: unexpected answer {st} {json.dumps(j)[:300]} "
                          f"(attempts {attempts})")
        if st == 409 and code == "wrong_expected_version" and stream == self.stream:
            av = j["error"].get("actual_version")
            self.version = -1 if av is None else av

    def repeat(self, item):
        rid, path, body = item
        st, j, attempts = self.post(path, body)
        bump("repeats")
        with lock:
            rec = acked.get(rid)
        want = {"first_position": rec["first"], "last_position": rec["last"],
                "version": rec["version"], "deduplicated": True}
        if st == 200 and isinstance(j, dict) and all(j.get(k) == v for k, v in want.items()):
            bump("repeats_ok")
        else:
            with lock:
                errors.append(f"repeat of {rid}: {st} {json.dumps(j)[:300]}, want 200 {want}")

    def run(self):
        try:
            while not stop_writing.is_set():
                self.one()
            # Repeat a few acknowledged requests once more, after every restart.
            for item in self.rng.sample(self.mine, min(5, len(self.mine))):
                self.repeat(item)
        except Exception as e:  # a bug in this script must fail the test, not hang it
            with lock:
                errors.append(f"client {self.idx} crashed: {e!r}")
        finally:
            self.drop()


# ---- the run ------------------------------------------------------------------------------

srv = None
try:
    srv, took = start_server()
    if not check(took is not None, "the server starts", server_log_tail()):
        raise SystemExit
    clients = [Client(i) for i in range(CLIENTS)]
    for c in clients:
        c.start()
    kills = 0
    restarts = []
    restart_ok = True
    check_fails = []
    for rnd in range(ROUNDS):
        time.sleep(rng.uniform(0.3, 1.5))
        srv.kill()  # SIGKILL, by the PID we started
        srv.wait()
        os.unlink(PIDFILE)
        kills += 1
        # What a SIGKILL leaves (at most a torn tail, which the next open cuts) must check.
        r = subprocess.run([KAPPA, "check", DATA], capture_output=True, text=True)
        if r.returncode != 0:
            check_fails.append(f"round {rnd + 1}: exit {r.returncode}: "
                               f"{(r.stdout + r.stderr)[-400:]}")
        srv, took = start_server()
        if took is None:
            restart_ok = False
            bad(f"the server restarts after kill -9 round {rnd + 1}", server_log_tail())
            break
        restarts.append(took)
    check(not check_fails, "kappa check passes on the data right after each kill -9",
          *check_fails)
    if restart_ok:
        ok(f"the server restarted after each of {kills} kill -9 rounds "
           f"(restart times {', '.join('%.2fs' % t for t in restarts)})")
    time.sleep(1.0)  # let the clients write against the last incarnation too
    stop_writing.set()
    for c in clients:
        c.join(timeout=max(1, give_up_at - time.monotonic() + 30))
    hung = [c.idx for c in clients if c.is_alive()]
    check(not hung, "every client finished", f"still running: {hung[:20]}")
    if srv.poll() is not None or not restart_ok:
        bad("the server is running after the clients finished", server_log_tail())
        raise SystemExit

    with lock:
        acked_now = dict(acked)
        errs = list(errors)
        st = dict(stats)
    print("# stats " + " ".join(f"{k}={v}" for k, v in st.items()), flush=True)
    check(not errs, "every request got an expected answer (no wrong version on own streams, "
          "no claim refused to its own holder, repeats deduplicated with the original result)",
          f"{len(errs)} problems:", *errs[:25])
    check(st["retried"] > 0 and st["conn_errors"] > 0,
          "the kills interrupted requests in flight (the test exercised retries)",
          f"retried {st['retried']}, connection errors {st['conn_errors']}")
    check(st["repeats"] > 0 and st["repeats_ok"] == st["repeats"],
          "repeated request ids answered 200 deduplicated with the original positions",
          f"{st['repeats_ok']} of {st['repeats']}")

    # ---- read the whole log --------------------------------------------------------------
    events = []
    pos = 0
    head = None
    read_ok = True
    while True:
        s, j = get_json(f"/log?from={pos}&limit=10000", timeout=60)
        if s != 200 or not isinstance(j, dict):
            bad("GET /log pages read", f"status {s} at from={pos}: {str(j)[:300]}")
            read_ok = False
            break
        page = j.get("events", [])
        head = j.get("head")
        events.extend(page)
        if not page:
            break
        if j.get("next") != page[-1]["position"] + 1:
            bad("GET /log next follows the page", f"next {j.get('next')} after "
                f"{page[-1]['position']}")
            read_ok = False
            break
        pos = j["next"]
    if read_ok:
        ok(f"the whole log reads with GET /log pagination ({len(events)} events, head {head})")

    positions = [e.get("position") for e in events]
    check(positions == list(range(len(events))) and head == len(events),
          "positions are dense from 0 up to the head",
          f"{len(events)} events, head {head}",
          f"first gaps/disorder: {[(i, p) for i, p in enumerate(positions) if p != i][:10]}")

    per_stream = {}
    bad_versions = []
    for e in events:
        v = per_stream.get(e["stream"], -1) + 1
        if e.get("version") != v:
            bad_versions.append(f"{e['stream']} position {e['position']}: version "
                                f"{e.get('version')}, want {v}")
        per_stream[e["stream"]] = e.get("version", v)
    check(not bad_versions, f"versions are dense per stream ({len(per_stream)} streams)",
          *bad_versions[:10])

    by_rid = {}
    foreign = []
    for e in events:
        d = e.get("data")
        rid = d.get("rid") if isinstance(d, dict) else None
        if rid is None:
            foreign.append(e["position"])
            continue
        by_rid.setdefault(rid, []).append(e)
    lost, dup, misplaced, mismatch = [], [], [], []
    for rid, rec in acked_now.items():
        got = by_rid.get(rid)
        n = len(rec["events"])
        if not got:
            lost.append(rid)
            continue
        if len(got) != n:
            dup.append(f"{rid}: {len(got)} events in the log, appended {n} "
                       f"(positions {[e['position'] for e in got]})")
            continue
        want_pos = list(range(rec["first"], rec["last"] + 1))
        want_ver = list(range(rec["version"] - n + 1, rec["version"] + 1))
        if [e["position"] for e in got] != want_pos or \
                [e["version"] for e in got] != want_ver or \
                any(e["stream"] != rec["stream"] for e in got):
            misplaced.append(f"{rid}: acknowledged {rec['stream']} positions {want_pos} "
                             f"versions {want_ver}; log has "
                             f"{[(e['stream'], e['position'], e['version']) for e in got]}")
            continue
        for e, sent in zip(got, rec["events"]):
            if e.get("type") != sent["type"] or e.get("data") != sent["data"] or \
                    e.get("metadata") != sent.get("metadata") or \
                    e.get("subject") != sent.get("subject"):
                mismatch.append(f"{rid} position {e['position']}: sent {json.dumps(sent)[:200]}"
                                f", read {json.dumps(e)[:200]}")
                break
    unacked = sorted(set(by_rid) - set(acked_now))
    check(not lost, "every acknowledged append is in the log", f"{len(lost)} lost: {lost[:10]}")
    check(not dup, "no request id's events appear twice", *dup[:10])
    check(not misplaced, "every acknowledged append is at its acknowledged positions and "
          "versions", *misplaced[:10])
    check(not mismatch, "every acknowledged event reads back with its type, data, metadata "
          "and subject", *mismatch[:10])
    check(not unacked and not foreign,
          "no event in the log comes from a request that was refused or never acknowledged",
          f"{len(unacked)} unacknowledged request ids: "
          f"{[(r, refused.get(r)) for r in unacked[:10]]}", f"foreign positions {foreign[:10]}")

    # ---- claims ------------------------------------------------------------------------------
    holders = {}
    for rid, rec in acked_now.items():
        for k in rec["claims"]:
            holders.setdefault(k, set()).add(rec["stream"])
    shared_claims = {k: sorted(v) for k, v in holders.items() if len(v) > 1}
    check(not shared_claims, f"each claim key was given to one stream ({len(holders)} keys "
          f"claimed, {st['claim_taken']} refusals)", str(shared_claims)[:500])
    # After all the restarts each key must still be held by that stream.
    wrong_holder = []
    pc = http.client.HTTPConnection(HOST, PORT, timeout=30)
    for k in sorted(holders):
        want = next(iter(holders[k]))
        pc.request("POST", "/streams/probe", headers={"Content-Type": "application/json"},
                   body=json.dumps({"events": [{"type": "Probe", "data": {"k": k}}],
                                    "claims": [{"claim": k}]}))
        r = pc.getresponse()
        j = json.loads(r.read())
        if r.status != 409 or (j.get("error") or {}).get("holder") != want:
            wrong_holder.append(f"{k}: probe answered {r.status} {json.dumps(j)[:200]}, "
                                f"want 409 claim_taken held by {want}")
    pc.close()
    check(not wrong_holder, "after the restarts every claim is still held by its stream",
          *wrong_holder[:10])

    n_ev = sum(len(r["events"]) for r in acked_now.values())
    print(f"# acknowledged={len(acked_now)} events={n_ev} lost={len(lost)} "
          f"duplicated={len(dup)} misplaced={len(misplaced)} unacknowledged_in_log="
          f"{len(unacked)} retried={st['retried']} retried_dedup={st['retried_dedup']} "
          f"retried_landed={st['retried_landed']} repeats={st['repeats']} kills={kills}",
          flush=True)
    check(len(acked_now) >= 200, "enough appends were acknowledged to mean something",
          f"only {len(acked_now)}")

    # ---- clean stop and check -------------------------------------------------------------
    srv.send_signal(signal.SIGTERM)
    try:
        rc = srv.wait(timeout=60)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, "SIGTERM stops the last server cleanly", f"exit {rc}", server_log_tail())
    r = subprocess.run([KAPPA, "check", DATA], capture_output=True, text=True)
    check(r.returncode == 0, "kappa check passes on the data after the final stop",
          r.stdout[-800:], r.stderr[-800:])
except SystemExit:
    pass
except Exception:  # the server died under us, or a bug here: fail, don't just stop
    bad("the test ran to its end", traceback.format_exc())
finally:
    stop_writing.set()
    if srv is not None and srv.poll() is None:
        srv.kill()
        srv.wait()
    if srv is not None and os.path.exists(PIDFILE):
        os.unlink(PIDFILE)

finish()
