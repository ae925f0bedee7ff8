#!/usr/bin/env python3
"""server_http_engine.py -- kappa serve's connection engine on the wire (raw sockets).

Usage: server_http_engine.py KAPPA_BIN TMPDIR

Pipelining (several requests in one write, answered in order), a request split byte by
byte, Expect: 100-continue (sent for an acceptable request, not for one over the body
limit), chunked request bodies, HEAD (headers only, the connection stays usable), HTTP/1.0
with and without keep-alive, clients closing while their appends wait for the group
commit, and a slow reader of a large streamed page and of many pipelined answers (partial
writes continued as the client reads), a first subscriber woken at once, and a second
server refused on the same address.
The server listens on 127.0.0.1 on a free port; its PID goes to TMPDIR/server.pid.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktap  # noqa: E402
from ktap import HOST, check, finish, free_port  # noqa: E402

KAPPA, TMP = sys.argv[1], sys.argv[2]
PORT = free_port()
MAX_BODY = 65536


def connect(rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect((HOST, PORT))
    return s


def read_answers(s, n, deadline=10.0):
    """Read n answers (Content-Length or chunked). Returns [(status, headers, body)] and
    whether the peer closed after them."""
    buf, out, t0 = b"", [], time.monotonic()

    def more():
        nonlocal buf
        s.settimeout(max(0.1, deadline - (time.monotonic() - t0)))
        d = s.recv(65536)
        if not d:
            raise EOFError
        buf += d

    try:
        while len(out) < n:
            while b"\r\n\r\n" not in buf:
                more()
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin1").split("\r\n")
            status = int(lines[0].split()[1])
            hdrs = {}
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            if status == 100:
                out.append((100, hdrs, b""))
                continue
            body = b""
            if "content-length" in hdrs:
                want = int(hdrs["content-length"])
                if hdrs.get("_head"):
                    want = 0
                while len(buf) < want:
                    more()
                body, buf = buf[:want], buf[want:]
            elif hdrs.get("transfer-encoding") == "chunked":
                while True:
                    while b"\r\n" not in buf:
                        more()
                    size_line, buf = buf.split(b"\r\n", 1)
                    size = int(size_line, 16)
                    while len(buf) < size + 2:
                        more()
                    body += buf[:size]
                    buf = buf[size + 2:]
                    if size == 0:
                        break
            out.append((status, hdrs, body))
    except (EOFError, OSError):
        return out, True
    return out, False


def closed_soon(s, wait=2.0):
    s.settimeout(wait)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def post(stream, body, extra=b"", version=b"HTTP/1.1"):
    return (b"POST /streams/" + stream + b" " + version + b"\r\nHost: k\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body) +
            extra + b"\r\n" + body)


def ev_body(n=1, size=0):
    return json.dumps({"events": [{"type": "T", "data": {"p": "x" * size}}] * n}).encode()


def stream_len(name):
    s = connect()
    s.sendall(b"GET /streams/" + name + b"?limit=10000 HTTP/1.1\r\nHost: k\r\n\r\n")
    a, _ = read_answers(s, 1)
    s.close()
    return len(json.loads(a[0][2])["events"]) if a and a[0][0] == 200 else None


data_dir = os.path.join(TMP, "data")
srv, up = ktap.start_server(KAPPA, TMP, PORT, ["--data", data_dir, "--max-body",
                                               str(MAX_BODY), "--threads", "2"])
if not check(up is not None, "the server starts", ktap.log_tail(TMP)):
    srv.kill()
    finish()

try:
    # ---- pipelining: four requests in one write, answered in order ---------------------
    s = connect()
    s.sendall(b"GET /health HTTP/1.1\r\nHost: k\r\n\r\n" + post(b"pipe", ev_body()) +
              b"GET /nothing HTTP/1.1\r\nHost: k\r\n\r\n" + post(b"pipe", ev_body()))
    a, closed = read_answers(s, 4)
    st = [x[0] for x in a]
    ver = [json.loads(x[2]).get("version") for x in a if x[0] == 201]
    check(st == [200, 201, 404, 201] and ver == [0, 1] and not closed,
          "four pipelined requests in one write are answered in order on one connection",
          f"statuses {st}, versions {ver}, closed {closed}")
    s.close()

    # ---- a request split byte by byte ---------------------------------------------------
    s = connect()
    for ch in post(b"bytes", ev_body()):
        s.sendall(bytes([ch]))
        time.sleep(0.001)
    a, _ = read_answers(s, 1)
    check(a and a[0][0] == 201 and stream_len(b"bytes") == 1,
          "an append sent one byte per write is appended once", f"answers {a}")
    s.close()

    # ---- Expect: 100-continue -----------------------------------------------------------
    body = ev_body()
    s = connect()
    s.sendall(post(b"cont", b"", b"Expect: 100-continue\r\n").replace(
        b"Content-Length: 0", b"Content-Length: %d" % len(body)))
    first, _ = read_answers(s, 1, deadline=3)
    s.sendall(body)
    rest, _ = read_answers(s, 1)
    check([x[0] for x in first] == [100] and [x[0] for x in rest] == [201],
          "Expect: 100-continue gets 100 Continue, then the append's 201",
          f"first {first}, then {rest}")
    s.close()
    s = connect()
    s.sendall(b"POST /streams/cont HTTP/1.1\r\nHost: k\r\nContent-Type: application/json\r\n"
              b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1))
    a, _ = read_answers(s, 1, deadline=3)
    check([x[0] for x in a] == [413] and closed_soon(s),
          "Expect: 100-continue over the body limit gets 413 (no 100) and the connection "
          "closes", f"answers {a}")
    s.close()

    # ---- chunked request bodies ---------------------------------------------------------
    body = ev_body(3)
    parts = [body[:5], body[5:20], body[20:]]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    s = connect()
    s.sendall(b"POST /streams/chunks HTTP/1.1\r\nHost: k\r\nContent-Type: application/json\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n" + chunked[:7])
    time.sleep(0.05)
    s.sendall(chunked[7:] + b"GET /health HTTP/1.1\r\nHost: k\r\n\r\n")
    a, _ = read_answers(s, 2)
    check([x[0] for x in a] == [201, 200] and stream_len(b"chunks") == 3,
          "a chunked body of three chunks appends its three events; the next request follows",
          f"answers {[x[0] for x in a]}")
    s.close()
    big = b"%x\r\n%s\r\n" % (MAX_BODY + 10, b"y" * (MAX_BODY + 10))
    s = connect()
    s.sendall(b"POST /streams/chunks HTTP/1.1\r\nHost: k\r\nContent-Type: application/json\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n" + big)
    a, _ = read_answers(s, 1)
    check([x[0] for x in a] == [413] and closed_soon(s) and stream_len(b"chunks") == 3,
          "a chunked body over the body limit gets 413, closes, writes nothing",
          f"answers {a}")
    s.close()

    # ---- HEAD ---------------------------------------------------------------------------
    s = connect()
    s.sendall(b"HEAD /health HTTP/1.1\r\nHost: k\r\n\r\nGET /health HTTP/1.1\r\nHost: k\r\n\r\n")
    time.sleep(0.3)
    s.settimeout(2)
    raw = b""
    while raw.count(b"HTTP/1.1 200") < 2 or not raw.endswith(b'{"status":"ok"}'):
        d = s.recv(65536)
        if not d:
            break
        raw += d
    heads = raw.split(b"HTTP/1.1 ")
    check(len(heads) == 3 and b"Content-Length: 15\r\n\r\nHTTP/1.1" in raw.replace(
        b"HTTP/1.1 200", b"HTTP/1.1", 1) and raw.endswith(b'{"status":"ok"}'),
          "HEAD answers the headers (Content-Length 15) without the body; a GET follows",
          f"raw {raw!r}")
    s.close()

    # ---- HTTP/1.0 -----------------------------------------------------------------------
    s = connect()
    s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
    a, closed = read_answers(s, 1)
    closed = closed or closed_soon(s)
    check(a and a[0][0] == 200 and a[0][1].get("connection") == "close" and closed,
          "HTTP/1.0 without keep-alive: Connection: close, then EOF", f"{a} closed {closed}")
    s.close()
    s = connect()
    s.sendall(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    a1, _ = read_answers(s, 1)
    s.sendall(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    a2, closed = read_answers(s, 1)
    check(a1 and a2 and a1[0][1].get("connection", "").lower() == "keep-alive" and
          a2[0][0] == 200 and not closed,
          "HTTP/1.0 with keep-alive: Connection: Keep-Alive, and a second request is answered",
          f"{a1} {a2}")
    s.close()
    s = connect()
    s.sendall(b"GET /health HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n"
              b"GET /health HTTP/1.1\r\nHost: k\r\n\r\n")
    a, closed = read_answers(s, 2)
    check(len(a) == 1 and a[0][1].get("connection") == "close" and closed,
          "Connection: close: one answer, then EOF (the pipelined request after it is not "
          "answered)", f"{a} closed {closed}")
    s.close()

    # ---- clients closing while their appends wait ---------------------------------------
    socks = []
    for i in range(100):
        x = connect()
        x.sendall(post(b"gone", ev_body()))
        socks.append(x)
    for x in socks:
        x.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        x.close()  # RST: the server's answer finds the socket gone
    time.sleep(0.5)
    n = stream_len(b"gone")
    s = connect()
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: k\r\n\r\n")
    a, _ = read_answers(s, 1)
    s.close()
    open_conns = None
    for ln in (a[0][2].decode() if a else "").splitlines():
        if ln.startswith("kappa_http_open_connections "):
            open_conns = float(ln.split()[1])
    check(srv.poll() is None and n is not None and n <= 100 and open_conns is not None and
          open_conns <= 2,
          "100 clients that reset their connections while their appends wait: the server "
          "lives on and holds none of them", f"appended {n}, open {open_conns}")

    # ---- slow readers: partial writes continue as the client reads ----------------------
    for i in range(20):  # 20 x 100 events of ~600 bytes: a page of ~1.3 MB
        s = connect()
        s.sendall(post(b"big", ev_body(100, 500)))
        a, _ = read_answers(s, 1)
        s.close()
    s = connect(rcvbuf=4096)
    s.sendall(b"GET /streams/big?limit=10000 HTTP/1.1\r\nHost: k\r\n\r\n")
    time.sleep(1.0)  # the server fills the socket and waits for EPOLLOUT
    t0 = time.monotonic()
    h = connect()
    h.sendall(b"GET /health HTTP/1.1\r\nHost: k\r\n\r\n")
    ha, _ = read_answers(h, 1)
    h.close()
    health_ms = (time.monotonic() - t0) * 1000
    a, _ = read_answers(s, 1, deadline=30)
    events = json.loads(a[0][2])["events"] if a and a[0][0] == 200 else []
    check(len(events) == 2000 and [e["version"] for e in events] == list(range(2000)) and
          ha and ha[0][0] == 200 and health_ms < 1000,
          "a 1.3 MB page to a reader with a 4 KB buffer arrives whole and in order; others "
          f"are answered meanwhile (/health in {health_ms:.0f} ms)", f"{len(events)} events")
    s.close()
    s = connect(rcvbuf=4096)
    s.sendall(b"GET /streams/big?limit=50 HTTP/1.1\r\nHost: k\r\n\r\n" * 40)
    time.sleep(1.0)
    a, closed = read_answers(s, 40, deadline=30)
    ok_all = [x[0] for x in a] == [200] * 40 and all(
        len(json.loads(x[2])["events"]) == 50 for x in a)
    check(ok_all and not closed,
          "40 pipelined 30 KB answers to a reader that waits, then reads: all arrive, in order",
          f"{len(a)} answers, closed {closed}")
    s.close()

    # A first subscriber of an idle server (the housekeeping thread does not follow the
    # head without subscribers, and sleeps up to 250 ms) still sees a new event at once.
    delays = []
    def subscribers():
        m = connect()
        m.sendall(b"GET /metrics HTTP/1.1\r\nHost: k\r\n\r\n")
        text = read_answers(m, 1)[0][0][2].decode()
        m.close()
        return int(text.split("\nkappa_subscribers ")[1].split()[0])

    for i in range(5):
        for _ in range(100):  # until the last round's subscriber is gone (the next event
            a = connect()      # or write finds it closed)
            a.sendall(post(b"firstsub", ev_body()))
            head = json.loads(read_answers(a, 1)[0][0][2])["last_position"] + 1
            a.close()
            if subscribers() == 0:
                break
            time.sleep(0.05)
        time.sleep(0.4)  # no subscriber for a while: the thread is asleep
        sub = connect()
        sub.sendall(b"GET /subscribe?from=%d HTTP/1.1\r\nHost: k\r\n\r\n" % head)
        got = b""
        while b"kappa subscribe from" not in got:
            got += sub.recv(65536)
        time.sleep(0.05)
        a = connect()
        t0 = time.monotonic()
        a.sendall(post(b"firstsub", ev_body()))
        want = b"id: %d\n" % head
        sub.settimeout(5)
        try:
            while want not in got:
                d = sub.recv(65536)
                if not d:
                    break
                got += d
        except socket.timeout:
            pass
        delays.append(time.monotonic() - t0 if want in got else 9.0)
        read_answers(a, 1)
        a.close()
        sub.close()
    delays.sort()
    check(delays[2] < 0.025 and delays[-1] < 5,
          "a first subscriber of an idle server gets a new event at once (median of 5 under 25 ms)",
          f"delays {[round(d * 1000) for d in delays]} ms")

    # A second server on the same address must not start (and share this one's clients).
    second = subprocess.run([KAPPA, "serve", "--data", os.path.join(TMP, "second"),
                             "--listen", f"{HOST}:{PORT}"], capture_output=True, text=True,
                            timeout=30)
    s = connect()
    s.sendall(b"GET /health HTTP/1.1\r\nHost: k\r\n\r\n")
    a, _ = read_answers(s, 1)
    s.close()
    check(second.returncode != 0 and "Address already in use" in second.stderr and
          a and a[0][0] == 200,
          "a second server on the same address refuses to start; the first still answers",
          f"rc {second.returncode}: {second.stderr[-300:]}")
finally:
    srv.send_signal(signal.SIGTERM)
    try:
        rc = srv.wait(timeout=30)
    except Exception:
        srv.kill()
        rc = None
check(rc == 0, "SIGTERM stops the server cleanly", f"exit {rc}", ktap.log_tail(TMP))
finish()
