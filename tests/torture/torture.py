#!/usr/bin/env python3
"""torture.py -- kappa serve killed with SIGKILL and restarted ROUNDS times under load, with
a checker that shares no code with kappa (Python 3 standard library only).

Usage: torture.py KAPPA_BIN TMPDIR      (TORTURE_ROUNDS, default 500; TORTURE_SEED)

Four client threads append over keep-alive connections: every request carries a unique
request id; some use the exact expected version of the client's own stream, some go to
shared streams with "any", some take or release uniqueness claims. An append counts as
acknowledged only once its whole 2xx answer was read. A request whose connection broke is
sent again with the same id and body once the server is back. A fifth thread queries the
counter view. Segments are 64 KiB, so the log rolls all the time. A sixth thread appends
events with data subjects (person-N streams, subject pN, sealed data), and some rounds forget
one of those subjects just before the kill (the kill can land during the forget).

Each round waits a random moment (0-400 ms), sometimes after asking for a view rebuild (so
the kill lands during it) or pausing the server with SIGSTOP for 2 s (clients must only
time out, then carry on after SIGCONT), then kills it with SIGKILL and restarts it on the
same data directory and port. After every restart the checker reads the log from where it
stopped last time and checks: every acknowledged append is there exactly once, at its
acknowledged positions, with its content; nothing appears twice; positions are dense and
versions dense per stream; each claim key belongs to one stream at a time; the counter view
answers what the checker computes from the events up to the view's position; the server's
audit verification passes; every subject whose forget was acknowledged exports as forgotten
with no data left, and a forget the kill cut short completes when sent again. At the end, after SIGTERM, `kappa verify` and `kappa
check` run on the data directory, and the summary line is printed:

    rounds=N acknowledged=N lost=0 duplicated=0 view_mismatches=0 verify=ok

The server listens on 127.0.0.1; its PID is in TMPDIR/server.pid for the wrapper.
"""
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

KAPPA, TMP = sys.argv[1], sys.argv[2]
ROUNDS = int(os.environ.get("TORTURE_ROUNDS", "500"))
SEED = int(os.environ.get("TORTURE_SEED", str(random.randrange(1 << 30))))
CLIENTS = 4
SHARED = 3
KEYS = 8
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
import ktap  # noqa: E402
from ktap import HOST, bad, check, finish, free_port, ok  # noqa: E402

PORT = free_port()
DATA = os.path.join(TMP, "data")
VIEWS = os.path.join(TMP, "views")
rng = random.Random(SEED)
print(f"# seed={SEED} rounds={ROUNDS} port={PORT}", flush=True)

VIEW_SQL = """-- @view counts
CREATE TABLE counts (stream TEXT PRIMARY KEY, n INTEGER NOT NULL, total INTEGER NOT NULL);
-- @on Tick
INSERT INTO counts VALUES (:stream, 1, :data->>'$.n')
  ON CONFLICT(stream) DO UPDATE SET n = n + 1, total = total + excluded.total;
-- @query all()
SELECT stream, n, total FROM counts ORDER BY stream;
"""

lock = threading.Lock()
acked = {}  # rid -> (stream, first, last, [data])
sent = {}  # rid -> (stream, [data]): every request ever sent
stats = {"requests": 0, "conn_errors": 0, "timeouts": 0, "retries": 0, "dedup": 0,
         "refused": 0, "queries": 0}
problems = {"lost": [], "duplicated": [], "dense": [], "view": [], "verify": [], "other": [],
            "forget": []}
persons = []  # subjects with an acknowledged event, not yet sent a forget
forgets = {}  # subject -> "sent" | "acked"
stop = threading.Event()
server = {"proc": None}


def problem(kind, msg):
    with lock:
        problems[kind].append(msg)


def bump(k):
    with lock:
        stats[k] += 1


def call(method, path, body=None, timeout=10):
    c = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    try:
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Content-Type": "application/json"} if body is not None else {})
        r = c.getresponse()
        raw = r.read()
        return r.status, (json.loads(raw) if raw else None)
    finally:
        c.close()


class Client(threading.Thread):
    def __init__(self, idx):
        super().__init__(daemon=True)
        self.idx, self.rng = idx, random.Random(SEED * 100 + idx)
        self.stream, self.version, self.seq, self.conn = f"c{idx}", -1, 0, None

    def drop(self):
        if self.conn:
            try:
                self.conn.close()
            except OSError:
                pass
        self.conn = None

    def post(self, path, body):
        """Send until a whole answer is read; (status, json) or None when stopping."""
        raw_body = json.dumps(body)
        while not stop.is_set():
            try:
                if not self.conn:
                    self.conn = http.client.HTTPConnection(HOST, PORT, timeout=1.5)
                self.conn.request("POST", path, body=raw_body,
                                  headers={"Content-Type": "application/json"})
                r = self.conn.getresponse()
                raw = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.drop()
                return r.status, json.loads(raw)
            except TimeoutError:
                bump("timeouts")
                self.drop()
            except (OSError, http.client.HTTPException, ValueError):
                bump("conn_errors")
                self.drop()
                time.sleep(0.02)
            bump("retries")
        return None

    def run(self):
        while not stop.is_set():
            self.seq += 1
            rid = f"t{SEED}-c{self.idx}-{self.seq}"
            r = self.rng.random()
            claims = []
            if r < 0.5:
                stream, expected = self.stream, self.version if self.version >= 0 else "no_stream"
            else:
                stream, expected = f"shared-{self.rng.randrange(SHARED)}", "any"
                if self.rng.random() < 0.3:
                    k = f"seat-{self.rng.randrange(KEYS)}"
                    claims = [{"release": k}] if self.rng.random() < 0.4 else [{"claim": k}]
            n = self.rng.randint(1, 3)
            datas = [{"rid": rid, "i": i, "n": self.rng.randint(-50, 50),
                      "pad": "x" * self.rng.randrange(400)} for i in range(n)]
            body = {"request_id": rid, "expected_version": expected,
                    "events": [{"type": "Tick", "data": d} for d in datas]}
            if claims:
                body["claims"] = claims
            with lock:
                sent[rid] = (stream, datas)
                stats["requests"] += 1
                if claims:
                    kind = "claim" if "claim" in claims[0] else "release"
                    claim_of[rid] = (kind, claims[0][kind])
            res = self.post(f"/streams/{stream}", body)
            if res is None:
                return
            st, j = res
            if st in (200, 201):
                with lock:
                    acked[rid] = (stream, j["first_position"], j["last_position"], datas)
                    if j.get("deduplicated"):
                        stats["dedup"] += 1
                if stream == self.stream:
                    self.version = j["version"]
            elif st == 409:
                bump("refused")
                if stream == self.stream and j["error"]["code"] == "wrong_expected_version":
                    self.version = j["error"].get("actual_version", self.version)
            elif st == 503:  # closing or busy: nothing written, the request is dropped
                bump("refused")
            else:
                problem("other", f"{rid}: answered {st} {j}")


class Persons(Client):
    """Appends events with data subjects: a few per subject, then the next subject."""

    def run(self):
        k, left = 0, 0
        while not stop.is_set():
            if left == 0:
                k, left = k + 1, self.rng.randint(1, 4)
            subject = f"p{self.idx}x{k}"
            self.seq += 1
            body = {"request_id": f"t{SEED}-{subject}-{self.seq}",
                    "events": [{"type": "Noted", "subject": subject,
                                "data": {"secret": f"{subject}-{self.seq}"}}]}
            res = self.post(f"/streams/person-{subject}", body)
            if res is None:
                return
            st, _ = res
            left -= 1
            if st in (200, 201):
                with lock:
                    if subject not in forgets and subject not in persons:
                        persons.append(subject)
            elif st == 410:
                left = 0  # forgotten meanwhile: a new subject
            elif st not in (409, 503):
                problem("other", f"{subject}: answered {st}")
            time.sleep(0.005)


class Reader(threading.Thread):
    """Queries the view all the time, so kills land during queries too."""

    def run(self):
        while not stop.is_set():
            try:
                call("GET", "/views/counts/queries/all", timeout=1.5)
                bump("queries")
            except (OSError, http.client.HTTPException, ValueError):
                time.sleep(0.05)
            time.sleep(0.01)


# ---- the checker ---------------------------------------------------------------------------

log_events = []  # every event read so far, in position order
count_by_rid = {}
versions = {}  # stream -> next version
holders = {}  # claim key -> stream


def read_more():
    """Read the log from where the last check stopped."""
    while True:
        st, j = call("GET", f"/log?from={len(log_events)}&limit=2000", timeout=30)
        if st != 200:
            raise RuntimeError(f"GET /log answered {st}: {j}")
        for e in j["events"]:
            if e["position"] != len(log_events):
                problem("dense", f"expected position {len(log_events)}, got {e['position']}")
            log_events.append(e)
            d = e["data"] or {}  # null: a forgotten subject's event
            rid = d.get("rid")
            if rid and d.get("i") == 0:
                count_by_rid[rid] = count_by_rid.get(rid, 0) + 1
                if count_by_rid[rid] == 2:
                    problem("duplicated", f"{rid} twice (again at {e['position']})")
            v = versions.get(e["stream"], 0)
            if e["version"] != v:
                problem("dense", f"{e['stream']} version {e['version']} at {e['position']},"
                                 f" expected {v}")
            versions[e["stream"]] = e["version"] + 1
        if not j["events"] or len(log_events) >= j["head"]:
            return


def check_acked(snapshot):
    for rid, (stream, first, last, datas) in snapshot.items():
        ok_ = (count_by_rid.get(rid) == 1 and last < len(log_events) and
               last - first + 1 == len(datas) and
               all(log_events[first + i]["stream"] == stream and
                   log_events[first + i]["data"] == datas[i] for i in range(len(datas))))
        if not ok_:
            problem("lost", f"{rid} acknowledged at {first}..{last} in {stream}: "
                            f"{count_by_rid.get(rid, 0)} times in the log")


def check_claims():
    """Replay the claims of the requests that landed, in log order: a key is never taken
    while another stream holds it (claims are not in the events; the checker knows them
    from the request bodies it sent)."""
    held = {}
    for e in log_events:
        d = e["data"] or {}
        if d.get("i") != 0 or "rid" not in d:
            continue
        with lock:
            req = claim_of.get(d["rid"])
        if not req:
            continue
        kind, key = req
        if kind == "claim":
            if held.get(key, e["stream"]) != e["stream"]:
                problem("other", f"claim {key} taken by {e['stream']} at {e['position']} "
                                 f"while {held[key]} held it")
            held[key] = e["stream"]
        elif held.get(key) == e["stream"]:
            del held[key]


claim_of = {}  # rid -> ("claim"|"release", key), filled from the request bodies


view_acc = {"upto": 0, "counts": {}}


def check_view():
    """The view's answer equals the checker's count of the events below its position."""
    for _ in range(50):
        head = len(log_events)
        st, j = call("GET", f"/views/counts/queries/all?min_position={head - 1}"
                     if head else "/views/counts/queries/all", timeout=30)
        if st == 200:
            break
        time.sleep(0.2)
    else:
        problem("view", f"the view did not answer: {st} {j}")
        return
    pos = j["position"]
    if pos is not None and pos >= len(log_events):
        read_more()
    upto = (pos + 1) if pos is not None else 0
    if upto < view_acc["upto"]:
        problem("view", f"the view went back to position {pos}")
        return
    want = view_acc["counts"]  # counted incrementally: the log only grows
    for e in log_events[view_acc["upto"]:upto]:
        if e["type"] != "Tick":
            continue  # the persons' events and forget records: not counted by the view
        n, t = want.get(e["stream"], (0, 0))
        want[e["stream"]] = (n + 1, t + e["data"]["n"])
    view_acc["upto"] = upto
    got = {r["stream"]: (r["n"], r["total"]) for r in j["rows"]}
    if got != want:
        problem("view", f"at position {pos}: view {sorted(got.items())[:4]} "
                        f"checker {sorted(want.items())[:4]}")


def check_forgets():
    """Acknowledged forgets hold; a forget the kill cut short completes when sent again."""
    with lock:
        todo = dict(forgets)
    for subject, state in todo.items():
        if state == "sent":
            st, j = call("POST", f"/subjects/{subject}/forget", {}, timeout=10)
            if st != 200 or j.get("forgotten") is not True:
                problem("forget", f"forget of {subject} sent again answered {st}: {j}")
                continue
            with lock:
                forgets[subject] = "acked"
        st, j = call("GET", f"/subjects/{subject}/export", timeout=30)
        if (st != 200 or j.get("state") != "forgotten" or not j.get("events")
                or any(not e.get("forgotten") or e.get("data") is not None for e in j["events"])
                or subject + "-" in json.dumps(j)):
            problem("forget", f"{subject} forgotten but its export is {st}: {str(j)[:300]}")


def check_round():
    with lock:
        snapshot = dict(acked)
    read_more()
    check_acked(snapshot)
    check_view()
    check_forgets()
    st, j = call("GET", "/audit/verify", timeout=60)
    if st != 200:
        problem("verify", f"/audit/verify answered {st}: {j}")


# ---- the server and the rounds -------------------------------------------------------------


def start():
    p, t = ktap.start_server(KAPPA, TMP, PORT, ["--data", DATA, "--views", VIEWS,
                                                 "--segment-bytes", "65536"])
    if t is None:
        raise RuntimeError("kappa serve did not start:\n" + ktap.log_tail(TMP))
    server["proc"] = p
    return p


def forget_hook():
    """Forget a subject the persons thread wrote, from a thread of its own, so that the kill
    that follows may land during the forget."""
    with lock:
        if not persons:
            return
        subject = persons.pop(rng.randrange(len(persons)))
        forgets[subject] = "sent"

    def run():
        try:
            st, j = call("POST", f"/subjects/{subject}/forget", {}, timeout=5)
        except (OSError, http.client.HTTPException, ValueError):
            return  # the kill: checked (and sent again) after the restart
        if st == 200:
            with lock:
                forgets[subject] = "acked"
        elif st not in (503,):
            problem("forget", f"forget of {subject} answered {st}: {j}")

    threading.Thread(target=run, daemon=True).start()
    time.sleep(rng.random() * 0.01)


def one_round(r):
    p = server["proc"]
    what = rng.random()
    if what < 0.15:
        call("POST", "/views/counts/rebuild", {})  # the kill lands during the rebuild
    elif what < 0.3:
        forget_hook()
    elif what < 0.35 or (r == 1 and ROUNDS <= 50):
        p.send_signal(signal.SIGSTOP)  # a long pause: clients time out, nothing breaks
        time.sleep(2)
        p.send_signal(signal.SIGCONT)
        st, _ = call("GET", "/health", timeout=5)
        if st != 200:
            problem("other", f"after SIGSTOP/SIGCONT /health answered {st}")
        stats["pauses"] = stats.get("pauses", 0) + 1
    time.sleep(rng.random() * 0.4)
    p.kill()
    p.wait()
    start()
    check_round()


def main():
    os.makedirs(VIEWS)
    with open(os.path.join(VIEWS, "counts.sql"), "w") as f:
        f.write(VIEW_SQL)
    start()
    clients = [Client(i) for i in range(CLIENTS)]
    for c in clients:
        c.start()
    Reader(daemon=True).start()
    persons_thread = Persons(CLIENTS)
    persons_thread.start()
    clients.append(persons_thread)
    t0 = time.monotonic()
    for r in range(1, ROUNDS + 1):
        one_round(r)
        if r % 50 == 0 or r == ROUNDS:
            with lock:
                print(f"# round {r}: {len(acked)} acknowledged, {len(log_events)} events, "
                      f"{time.monotonic() - t0:.0f} s, {stats}", flush=True)
    stop.set()
    for c in clients:
        c.join(timeout=30)
    check_round()
    check_claims()
    with lock:
        snapshot = dict(acked)
    check_acked(snapshot)
    p = server["proc"]
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=60)
    check(rc == 0, "SIGTERM stops the server cleanly", f"exit {rc}", ktap.log_tail(TMP))
    v = subprocess.run([KAPPA, "verify", DATA], capture_output=True, text=True)
    if v.returncode != 0:
        problem("verify", f"kappa verify: {v.stdout} {v.stderr}")
    c = subprocess.run([KAPPA, "check", DATA], capture_output=True, text=True)
    check(c.returncode == 0, "kappa check accepts the log", c.stdout, c.stderr)

    n = len(snapshot)
    check(n > ROUNDS, f"appends were acknowledged across the rounds ({n})")
    for kind, desc in [("lost", "every acknowledged append is present once, where acknowledged"),
                       ("duplicated", "no request appears twice in the log"),
                       ("dense", "positions are dense and versions dense per stream"),
                       ("view", "the counter view equals the checker's count after every restart"),
                       ("verify", "audit verification passes after every restart and at the end"),
                       ("other", "claims unique; no unexpected answers; the server answers "
                                 "after SIGSTOP/SIGCONT"),
                       ("forget", "acknowledged forgets hold across kills (exports forgotten, "
                                  "no data); forgets cut short complete when sent again")]:
        check(not problems[kind], desc, *problems[kind][:5])
    print(f"# {stats} in {time.monotonic() - t0:.0f} s")
    nf = sum(1 for v in forgets.values() if v == "acked")
    check(ROUNDS < 20 or nf > 0, f"subjects were forgotten across the rounds ({nf})")
    print(f"rounds={ROUNDS} acknowledged={n} lost={len(problems['lost'])} "
          f"duplicated={len(problems['duplicated'])} view_mismatches={len(problems['view'])} "
          f"verify={'ok' if not problems['verify'] else 'failed'} forgotten={nf}", flush=True)


try:
    main()
except Exception as e:  # noqa: BLE001
    import traceback
    bad("the torture run reached its end", traceback.format_exc(), ktap.log_tail(TMP))
finally:
    stop.set()
    p = server["proc"]
    if p and p.poll() is None:
        p.send_signal(signal.SIGCONT)
        p.kill()
    finish()
