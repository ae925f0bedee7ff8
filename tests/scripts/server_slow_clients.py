#!/usr/bin/env python3
"""server_slow_clients.py -- kappa serve under slowloris-style clients (standard library only).

Usage: server_slow_clients.py KAPPA_BIN TMPDIR

Opens 50 connections that send their request headers one byte a second, 20 that send a
POST body of a declared 1 MB a few bytes a second, 20 that connect and send nothing, and 10
that ask for a ~10 MB /log page with a small receive buffer and read it 1 KB a second. While
they hold their connections, 8 normal clients append and read for WINDOW seconds (keep-alive
and new connections). Asserted: every normal request succeeds within 2 s, enough of them
succeed, what they appended reads back, the slow partial POST bodies wrote nothing, and the
server is alive and stops cleanly afterwards. What the server did with each kind of slow
client (still open, closed after how long, any answer) is printed as TAP comments.

If the server has --request-timeout (headers and body must arrive within it) it is started
with --request-timeout 3 --idle-timeout 3, and then the slow-header, slow-body and silent
connections must also have been closed by the server before the window ends.

The server listens on 127.0.0.1; its PID goes to TMPDIR/server.pid so the wrapper can kill
it (and only it) if this script dies.
"""
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

KAPPA, TMP = sys.argv[1], sys.argv[2]
WINDOW = 10.0
NORMAL = 8
MAX_LATENCY = 2.0
MIN_OK = int(os.environ.get("SLOW_MIN_OK", "200"))

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktap  # noqa: E402
from ktap import HOST, bad, check, finish, free_port, ok, plan  # noqa: E402

PORT = free_port()
PIDFILE = os.path.join(TMP, "server.pid")
DATA = os.path.join(TMP, "data")

helptext = subprocess.run([KAPPA, "serve", "--help"], capture_output=True, text=True)
HAS_TIMEOUT = "--request-timeout" in helptext.stdout + helptext.stderr
TIMEOUT_S = 3
extra = ["--request-timeout", str(TIMEOUT_S), "--idle-timeout", str(TIMEOUT_S)] \
    if HAS_TIMEOUT else []


def request(method, path, body=None, conn=None, timeout=5):
    own = conn is None
    c = conn or http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    try:
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        b = r.read()
        return r.status, b
    finally:
        if own:
            c.close()


def start_server():
    p, took = ktap.start_server(KAPPA, TMP, PORT, ["--data", DATA, *extra])
    return p, took is not None


def server_log_tail():
    return ktap.log_tail(TMP)


# ---- slow clients ---------------------------------------------------------------------------

done = threading.Event()


class Slow(threading.Thread):
    """One slow client. Slow-header, slow-body and silent clients reconnect when the server
    closes them (as a slowloris attacker would), so the pressure lasts the whole window; a
    slow reader reads its one answer. Records how long each connection lived and what the
    server answered."""

    def __init__(self, kind, idx):
        super().__init__(daemon=True)
        self.kind, self.idx = kind, idx
        self.opened = None  # when the current connection was made
        self.connections = 0
        self.closed = []  # seconds each connection lived before the server closed it
        self.is_open = False
        self.received = b""  # first bytes of the current connection's answer
        self.answers = []  # status lines the server sent
        self.sent = 0
        self.got = 0
        self.error = None
        self.sock = None
        self.answer_started = threading.Event()

    def server_closed(self):
        if self.is_open:
            self.is_open = False
            self.closed.append(time.monotonic() - self.opened)

    def poll_read(self, wait, max_bytes=65536):
        """Wait up to 'wait' s for data; keep the first bytes. False once the server closed."""
        r, _, _ = select.select([self.sock], [], [], wait)
        if not r:
            return True
        try:
            b = self.sock.recv(max_bytes)
        except OSError:
            self.server_closed()
            return False
        if not b:
            self.server_closed()
            return False
        if len(self.received) < 4096:
            self.received += b[:4096 - len(self.received)]
        return True

    def send(self, data):
        try:
            self.sock.sendall(data)
            self.sent += len(data)
            return True
        except OSError:
            self.server_closed()
            return False

    def run(self):
        try:
            while not done.is_set():
                s = socket.socket()
                if self.kind == "reader":
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(10)
                s.connect((HOST, PORT))
                s.settimeout(None)
                self.sock = s
                self.opened = time.monotonic()
                self.connections += 1
                self.is_open = True
                self.received = b""
                getattr(self, "run_" + self.kind)()
                if self.received.startswith(b"HTTP/1."):
                    self.answers.append(self.received.split(b"\r\n", 1)[0].decode("latin-1"))
                if self.kind == "reader" or self.is_open:
                    break
                s.close()
        except OSError as e:
            self.error = repr(e)
        finally:
            self.answer_started.set()

    def run_headers(self):
        head = (f"POST /streams/slowh-{self.idx} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\n").encode()
        filler = b"X-Slow: " + b"a" * 60 + b"\r\n"
        data = head + filler * 1000
        i = 0
        while not done.is_set() and i < len(data):
            if not self.send(data[i:i + 1]):
                return
            i += 1
            if not self.poll_read(1.0):
                return

    def run_body(self):
        hdr = (f"POST /streams/slowb-{self.idx} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n").encode()
        if not self.send(hdr):
            return
        body = b'{"events":[{"type":"Slow","data":{"x":"' + b"y" * 1048576
        i = 0
        while not done.is_set():
            if not self.send(body[i:i + 3]):
                return
            i += 3
            if not self.poll_read(1.0):
                return

    def run_silent(self):
        while not done.is_set():
            if not self.poll_read(0.5):
                return

    def run_reader(self):
        if not self.send(b"GET /log?from=0&limit=10000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"):
            return
        # The first bytes come once the server has built the page; from then on, read slowly.
        r, _, _ = select.select([self.sock], [], [], 30)
        if r:
            b = self.sock.recv(1024)
            if not b:
                self.server_closed()
                self.answer_started.set()
                return
            self.got += len(b)
            self.received += b
        self.answer_started.set()
        while not done.is_set():
            time.sleep(1.0)
            try:
                self.sock.setblocking(False)
                b = self.sock.recv(1024)
            except BlockingIOError:
                continue
            except OSError:
                self.server_closed()
                return
            finally:
                self.sock.setblocking(True)
            if not b:
                self.server_closed()
                return
            self.got += len(b)
            if len(self.received) < 4096:
                self.received += b[:4096 - len(self.received)]

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass


# ---- normal clients -------------------------------------------------------------------------

results = []  # (what, ok, latency, detail)
rlock = threading.Lock()
appended = {}  # stream -> acknowledged appends


def normal(k, stop_at):
    stream = f"normal-{k}"
    keep = None
    i = 0
    n_ok = 0
    while time.monotonic() < stop_at:
        i += 1
        use_keep = i % 2 == 0
        steps = [("append", "POST", f"/streams/{stream}",
                  json.dumps({"events": [{"type": "N", "data": {"k": k, "i": i}}]})),
                 ("read stream", "GET", f"/streams/{stream}?from_version=0&limit=5", None),
                 ("read log", "GET", "/log?from=0&limit=5", None),
                 ("health", "GET", "/health", None)]
        for what, m, path, body in steps:
            t0 = time.monotonic()
            try:
                if use_keep and keep is None:
                    keep = http.client.HTTPConnection(HOST, PORT, timeout=5)
                st, b = request(m, path, body, conn=keep if use_keep else None)
                good = st in (200, 201)
                detail = f"{st} {b[:120]!r}"
            except (OSError, http.client.HTTPException) as e:
                good, detail = False, repr(e)
                if keep is not None:
                    keep.close()
                    keep = None
            lat = time.monotonic() - t0
            if good and what == "append":
                n_ok += 1
            with rlock:
                results.append((what, good, lat, f"{m} {path}: {detail}"))
    if keep is not None:
        keep.close()
    with rlock:
        appended[stream] = n_ok


# ---- the run --------------------------------------------------------------------------------

srv = None
slows = []
try:
    srv, up = start_server()
    if not check(up, "the server starts" + (f" (with {' '.join(extra)})" if extra else ""),
                 server_log_tail()):
        raise SystemExit
    if not HAS_TIMEOUT:
        print("# this server has no --request-timeout: the default idle timeout (30 s) "
              "applies; slow clients are observed, not required to be cut off", flush=True)

    # ~10 MB of log, so that one /log page of 10,000 events is about that large.
    pad = "p" * 1000
    for b in range(10):
        st, body = request("POST", "/streams/bulk",
                           json.dumps({"events": [{"type": "Bulk", "data": {"b": b, "i": i,
                                                                            "pad": pad}}
                                                  for i in range(1000)]}), timeout=60)
        if st != 201:
            bad("the bulk data is appended", f"{st} {body[:200]!r}")
            raise SystemExit
    ok("10,000 events of 1 KB appended for the slow readers")

    for kind, count in (("headers", 50), ("body", 20), ("silent", 20), ("reader", 10)):
        for i in range(count):
            slows.append(Slow(kind, i))
    for s in slows:
        s.start()
    # Start the normal clients once every slow reader's page is built and being sent: what
    # is measured is slow reading, not the cost of building ten 10 MB pages at once (which
    # holds the server's request threads: reported, not asserted).
    t0 = time.monotonic()
    for s in slows:
        if s.kind == "reader":
            s.answer_started.wait(timeout=max(0.1, 30 - (time.monotonic() - t0)))
    print(f"# the 10 slow readers' pages were being sent after {time.monotonic() - t0:.2f} s",
          flush=True)
    time.sleep(1.0)
    t_start = time.monotonic()
    stop_at = t_start + WINDOW
    threads = [threading.Thread(target=normal, args=(k, stop_at), daemon=True)
               for k in range(NORMAL)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=WINDOW + 30)
    hung = sum(t.is_alive() for t in threads)

    with rlock:
        res = list(results)
    fails = [r for r in res if not r[1]]
    slow = [r for r in res if r[1] and r[2] > MAX_LATENCY]
    n_good = sum(1 for r in res if r[1])
    lats = sorted(r[2] for r in res) or [0]
    print(f"# normal requests: {len(res)} answered, {n_good} succeeded, latency p50 "
          f"{lats[len(lats) // 2] * 1000:.1f} ms, p99 {lats[int(len(lats) * 0.99)] * 1000:.1f} ms,"
          f" max {lats[-1] * 1000:.1f} ms", flush=True)
    check(hung == 0, "the normal clients finished", f"{hung} still running")
    check(not fails, "every normal request succeeded while the slow clients held on",
          f"{len(fails)} failed:", *[f"{w} after {l:.2f}s: {d}" for w, _, l, d in fails[:15]])
    check(not slow, f"every normal request answered within {MAX_LATENCY:.0f} s",
          f"{len(slow)} slower:", *[f"{w} {l:.2f}s: {d}" for w, _, l, d in slow[:15]])
    check(n_good >= MIN_OK, f"at least {MIN_OK} normal requests succeeded in the "
          f"{WINDOW:.0f}-s window", f"only {n_good}")

    # What the server did with the slow ones.
    elapsed = time.monotonic() - t_start + 1.0
    summary = {}
    for sl in slows:
        e = summary.setdefault(sl.kind, {"n": 0, "conns": 0, "open": 0, "oldest": 0.0,
                                         "closed": [], "answers": {}, "errors": [],
                                         "sent": 0, "got": 0})
        e["n"] += 1
        e["conns"] += sl.connections
        e["sent"] += sl.sent
        e["got"] += sl.got
        if sl.error:
            e["errors"].append(sl.error)
        if sl.is_open:
            e["open"] += 1
            e["oldest"] = max(e["oldest"], time.monotonic() - sl.opened)
        e["closed"] += sl.closed
        answers = list(sl.answers)
        if sl.is_open and sl.received.startswith(b"HTTP/1.") and b"\r\n" in sl.received:
            answers.append(sl.received.split(b"\r\n", 1)[0].decode("latin-1"))
        for a in answers:
            e["answers"][a] = e["answers"].get(a, 0) + 1
    for kind, e in summary.items():
        cl = sorted(e["closed"])
        closed = (f"{len(cl)} closed by the server after {cl[0]:.1f}-{cl[-1]:.1f} s"
                  if cl else "none closed by the server")
        print(f"# slow {kind}: {e['n']} clients made {e['conns']} connections; {closed}; "
              f"{e['open']} open at the end of the window (oldest {e['oldest']:.0f} s); "
              f"answers {e['answers'] or 'none'}; errors {len(e['errors'])}; bytes sent "
              f"{e['sent']}" + (f", bytes read {e['got']}" if kind == "reader" else ""),
              flush=True)
    errs = [sl.error for sl in slows if sl.error]
    check(not errs, "every slow client got its connections (none refused)",
          f"{len(errs)} errors: {errs[:5]}")
    if HAS_TIMEOUT:
        for kind in ("headers", "body", "silent"):
            e = summary[kind]
            late = [t for t in e["closed"] if t > TIMEOUT_S + 3]
            check(not late and e["oldest"] <= TIMEOUT_S + 3 and e["closed"],
                  f"slow {kind} connections are closed by the server within the "
                  f"{TIMEOUT_S}-s request/idle timeout (+3 s)",
                  f"{len(late)} lived longer: {sorted(late)[-5:]}; oldest still open "
                  f"{e['oldest']:.1f} s; {len(e['closed'])} closed")

    done.set()
    for s in slows:
        s.close()
    for s in slows:
        s.join(timeout=5)

    # Nothing of the partial requests was written; the normal appends all were.
    leaked = []
    for kind, prefix, count in (("body", "slowb", 20), ("headers", "slowh", 50)):
        for i in range(count):
            st, b = request("GET", f"/streams/{prefix}-{i}")
            if st != 200 or json.loads(b).get("events") != []:
                leaked.append(f"{prefix}-{i}: {st} {b[:150]!r}")
    check(not leaked, "the slow partial requests wrote nothing", *leaked[:10])
    short = []
    for stream, n in sorted(appended.items()):
        st, b = request("GET", f"/streams/{stream}?from_version=0&limit=10000")
        got = len(json.loads(b).get("events", [])) if st == 200 else None
        if got != n:
            short.append(f"{stream}: acknowledged {n}, reads {got}")
    check(not short, "every acknowledged normal append reads back", *short)

    alive = srv.poll() is None
    st = None
    try:
        st = request("GET", "/health")[0]
    except (OSError, http.client.HTTPException) as e:
        st = repr(e)
    check(alive and st == 200, "the server is alive and healthy afterwards",
          f"alive {alive}, /health {st}", server_log_tail())
    srv.send_signal(signal.SIGTERM)
    try:
        rc = srv.wait(timeout=30)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, "SIGTERM stops the server cleanly", f"exit {rc}", server_log_tail())
except SystemExit:
    pass
except Exception:  # the server died under us, or a bug here: fail, don't just stop
    bad("the test ran to its end", traceback.format_exc())
finally:
    done.set()
    for s in slows:
        s.close()
    if srv is not None and srv.poll() is None:
        srv.kill()
        srv.wait()
    if os.path.exists(PIDFILE):
        os.unlink(PIDFILE)

finish()
