#!/usr/bin/env python3
"""server_bad_input.py -- kappa serve against a table of bad requests (standard library only).

Usage: server_bad_input.py KAPPA_BIN TMPDIR

Every bad request must get its documented status (DESIGN.md, "HTTP API": 400 bad input,
404, 405, 409, 413 too large, 415) with a JSON error {"error": {"code", "message"}} whose
message is not empty, and must write nothing: the log head stays where it was and the target
stream reads empty. Protocol-level abuse (a 100 KB URL, thousands of headers, a 70 KB
header, a malformed Content-Length or chunk) must get some 4xx and leave the server alive.
Then the server must still answer /health, take good appends at the documented limits, not
have registered the claims and request ids of refused requests, stop cleanly on SIGTERM and
leave a log that `kappa check` accepts. Prints TAP; exits non-zero on any failure.

The server is started here on a free 127.0.0.1 port; its PID goes to TMPDIR/server.pid so
the wrapper can kill it (and only it) if this script dies.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback

KAPPA, TMP = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktap  # noqa: E402
from ktap import HOST, bad, check, finish, free_port, jload, ok, plan  # noqa: E402

PORT = free_port()
PIDFILE = os.path.join(TMP, "server.pid")


def start_server(data, views):
    return ktap.start_server(KAPPA, TMP, PORT, ["--data", data, "--views", views])[0]


def request(method, path, body=None, headers=None, timeout=60):
    """One request on a fresh connection: (status, headers dict (lower-case), body bytes)."""
    c = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    try:
        if headers is None:
            headers = {"Content-Type": "application/json"} if body is not None else {}
        if isinstance(body, str):
            body = body.encode()
        c.putrequest(method, path, skip_accept_encoding=True)
        for k, v in headers.items():
            c.putheader(k, v)
        if body is not None and not any(k.lower() in ("content-length", "transfer-encoding")
                                        for k in headers):
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        b = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, b
    finally:
        c.close()


def read_answer(s, out=b""):
    """Read one HTTP answer from socket 's' (until its Content-Length is in, or the server
    closes, or the socket times out)."""
    while True:
        if b"\r\n\r\n" in out:
            hdr, rest = out.split(b"\r\n\r\n", 1)
            if hdr.startswith(b"HTTP/1.1 100"):
                out = rest
                continue
            cl = [ln.split(b":", 1)[1] for ln in hdr.split(b"\r\n")[1:]
                  if ln.lower().startswith(b"content-length:")]
            if cl and len(rest) >= int(cl[0]):
                return out
        try:
            b = s.recv(65536)
        except OSError:
            return out
        if not b:
            return out
        out += b


def raw(data, timeout=20):
    """Send raw bytes and read the answer: (status or None, bytes)."""
    s = socket.create_connection((HOST, PORT), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except OSError:
            pass  # the server may answer and close before reading everything
        out = read_answer(s)
    finally:
        s.close()
    if out.startswith(b"HTTP/1."):
        try:
            return int(out.split(b" ", 2)[1]), out
        except ValueError:
            pass
    return None, out


def head():
    try:
        st, _, b = request("GET", "/log?from=0&limit=1")
    except (OSError, http.client.HTTPException):
        return None
    j = jload(b)
    return j.get("head") if st == 200 and isinstance(j, dict) else None


def stream_events(name_enc):
    try:
        st, _, b = request("GET", f"/streams/{name_enc}?from_version=0&limit=10")
    except (OSError, http.client.HTTPException):
        return None
    j = jload(b)
    if st != 200 or not isinstance(j, dict):
        return None
    return j.get("events")


EV = {"type": "T", "data": {"k": 1}}


def body(**kw):
    d = {"events": [EV]}
    d.update(kw)
    return json.dumps(d, separators=(",", ":"))


# ---- set up ------------------------------------------------------------------------------
data_dir = os.path.join(TMP, "data")
views_dir = os.path.join(TMP, "views")
os.makedirs(views_dir)
ktap.write_counts_view(views_dir)

srv = start_server(data_dir, views_dir)
try:
    alive = srv.poll() is None
    if not check(alive and request("GET", "/health")[0] == 200, "the server starts",
                 open(os.path.join(TMP, "server.log"), errors="replace").read()[-2000:]):
        plan()
        sys.exit(1)

    st, _, b = request("POST", "/streams/seed",
                       body(request_id="seed-1", claims=[{"claim": "seed-claim"}]))
    check(st == 201, "a first good append is created", f"status {st} body {b[:300]!r}")
    # Let the view see it, so that the SQL rows below have something to protect.
    request("GET", "/views/counts/queries/by_stream?stream=seed&min_position=0")
    base_head = head()
    check(base_head == 1, "the log head is 1 before the bad requests", f"head {base_head}")

    def sql_rows(sql):
        st, _, b = request("POST", "/views/counts/sql", json.dumps({"sql": sql}))
        j = jload(b)
        return j.get("rows") if st == 200 and isinstance(j, dict) else (st, b[:200])

    # ---- the table ---------------------------------------------------------------------------
    # (description, method, path, body, headers or None, allowed statuses, allowed codes or
    #  None for any non-empty code, stream (URL-encoded) that must stay empty or None)
    A = "/streams/bt"
    N = "bt"
    big_name = "s" * 201
    many_events = json.dumps({"events": [EV] * 10001})
    very_many_events = json.dumps({"events": [{"type": "T", "data": {}}] * 100001})
    claims101 = json.dumps({"events": [EV], "claims": [{"claim": f"bulk-{i}"} for i in range(101)]})
    claims1025 = json.dumps({"events": [EV],
                             "claims": [{"claim": f"bulk-{i}"} for i in range(1025)]})
    bigdata = json.dumps({"events": [{"type": "T", "data": {"x": "x" * (1 << 20)}}],
                          "request_id": "rid-bigdata"})
    oversize = b'{"events":[{"type":"T","data":{"x":"' + b"x" * (17 << 20) + b'"}}]}'
    deep = '{"events":[{"type":"T","data":{"a":' + "[" * 100000 + "1" + "]" * 100000 + "}}]}"
    INV = {"invalid_argument"}
    TOO = {"too_large"}
    NF = {"not_found"}
    table = [
        # bodies that are not a JSON object
        ("invalid JSON", "POST", A, "{bad", None, {400}, INV, N),
        ("truncated JSON", "POST", A, '{"events":[{"type":"T","data":{}}', None, {400}, INV, N),
        ("JSON array body", "POST", A, '[{"type":"T","data":{}}]', None, {400}, INV, N),
        ("JSON string body", "POST", A, '"hello"', None, {400}, INV, N),
        ("JSON number body", "POST", A, "42", None, {400}, INV, N),
        ("JSON null body", "POST", A, "null", None, {400}, INV, N),
        ("empty body with a JSON Content-Type", "POST", A, "", None, {400}, INV, N),
        ("POST without a body", "POST", A, None, {}, {400}, INV, N),
        ("trailing garbage after the object", "POST", A, body() + " x", None, {400}, INV, N),
        ("two concatenated objects", "POST", A, body() + body(), None, {400}, INV, N),
        ("invalid UTF-8 inside a JSON string", "POST", A,
         b'{"events":[{"type":"T\xff","data":{}}]}', None, {400}, INV, N),
        ("a lone surrogate escape", "POST", A, '{"events":[{"type":"\\ud800","data":{}}]}', None,
         {400}, INV, N),
        ("JSON nested 100,000 deep", "POST", A, deep, None, {400}, INV, N),
        # Content-Type
        ("Content-Type text/plain", "POST", A, body(), {"Content-Type": "text/plain"}, {415},
         None, N),
        ("no Content-Type with a body", "POST", A, body(), {}, {415}, None, N),
        ("Content-Type application/x-www-form-urlencoded", "POST", A, body(),
         {"Content-Type": "application/x-www-form-urlencoded"}, {415}, None, N),
        ("Content-Type application/jsonx (not JSON)", "POST", A, body(),
         {"Content-Type": "application/jsonx"}, {415}, None, N),
        # events
        ("no events", "POST", A, '{"request_id":"rid-bad-1"}', None, {400}, INV, N),
        ("events an empty array", "POST", A, body(events=[], request_id="rid-bad-2"), None,
         {400}, INV, N),
        ("events an object", "POST", A, body(events={"type": "T", "data": {}}), None, {400},
         INV, N),
        ("events a string", "POST", A, body(events="T"), None, {400}, INV, N),
        ("an event that is a number", "POST", A, body(events=[5]), None, {400}, INV, N),
        ("an event that is null", "POST", A, body(events=[EV, None]), None, {400}, INV, N),
        ("an event without type", "POST", A, body(events=[{"data": {}}], request_id="rid-bad-3"),
         None, {400}, INV, N),
        ("type a number", "POST", A, body(events=[{"type": 5, "data": {}}]), None, {400}, INV, N),
        ("type null", "POST", A, body(events=[{"type": None, "data": {}}]), None, {400}, INV, N),
        ("type empty", "POST", A, body(events=[{"type": "", "data": {}}]), None, {400}, INV, N),
        ("type of 101 bytes", "POST", A, body(events=[{"type": "t" * 101, "data": {}}]), None,
         {400}, INV, N),
        ("type with a control character", "POST", A,
         body(events=[{"type": "a\u0001b", "data": {}}]), None, {400}, INV, N),
        ("type with a NUL (\\u0000)", "POST", A, '{"events":[{"type":"T\\u0000x","data":{}}]}',
         None, {400}, INV, N),
        ("type with a C1 control (U+0085)", "POST", A,
         body(events=[{"type": "a\u0085b", "data": {}}]), None, {400}, INV, N),
        ("an event without data", "POST", A, body(events=[{"type": "T"}]), None, {400}, INV, N),
        ("data an array", "POST", A, body(events=[{"type": "T", "data": [1]}]), None, {400},
         INV, N),
        ("data a string", "POST", A, body(events=[{"type": "T", "data": "x"}]), None, {400},
         INV, N),
        ("data a number", "POST", A, body(events=[{"type": "T", "data": 1}]), None, {400}, INV,
         N),
        ("data null", "POST", A, body(events=[{"type": "T", "data": None}]), None, {400}, INV,
         N),
        ("subject a number", "POST", A, body(events=[{"type": "T", "data": {}, "subject": 5}]),
         None, {400}, INV, N),
        ("subject empty", "POST", A, body(events=[{"type": "T", "data": {}, "subject": ""}]),
         None, {400}, INV, N),
        ("subject of 201 bytes", "POST", A,
         body(events=[{"type": "T", "data": {}, "subject": "s" * 201}]), None, {400}, INV, N),
        ("subject with a NUL", "POST", A,
         '{"events":[{"type":"T","data":{},"subject":"a\\u0000b"}]}', None, {400}, INV, N),
        ("metadata an array", "POST", A, body(events=[{"type": "T", "data": {}, "metadata": []}]),
         None, {400}, INV, N),
        ("metadata a string", "POST", A,
         body(events=[{"type": "T", "data": {}, "metadata": "m"}]), None, {400}, INV, N),
        # sizes
        ("an event whose data is over 1 MiB", "POST", A, bigdata, None, {413}, TOO, N),
        ("10,001 events in one append", "POST", A, many_events, None, {413}, TOO, N),
        ("100,001 events in one append", "POST", A, very_many_events, None, {413}, TOO, N),
        # expected_version
        ("expected_version -1", "POST", A, body(expected_version=-1), None, {400}, INV, N),
        ("expected_version -5", "POST", A, body(expected_version=-5), None, {400}, INV, N),
        ("expected_version 2^63", "POST", A, body(expected_version=2**63), None, {400}, INV, N),
        ("expected_version 2^64", "POST", A, body(expected_version=2**64), None, {400}, INV, N),
        ("expected_version 1e30", "POST", A, '{"expected_version":1e30,"events":[{"type":"T","data":{}}]}',
         None, {400}, INV, N),
        ("expected_version 1.0", "POST", A, '{"expected_version":1.0,"events":[{"type":"T","data":{}}]}',
         None, {400}, INV, N),
        ('expected_version "12"', "POST", A, body(expected_version="12"), None, {400}, INV, N),
        ('expected_version ""', "POST", A, body(expected_version=""), None, {400}, INV, N),
        ('expected_version "ANY"', "POST", A, body(expected_version="ANY"), None, {400}, INV, N),
        ("expected_version true", "POST", A, body(expected_version=True), None, {400}, INV, N),
        ("expected_version {}", "POST", A, body(expected_version={}), None, {400}, INV, N),
        ("expected_version []", "POST", A, body(expected_version=[]), None, {400}, INV, N),
        ("expected_version 2^63-1 on a new stream", "POST", A, body(expected_version=2**63 - 1),
         None, {409}, {"wrong_expected_version"}, N),
        # request_id
        ("request_id a number", "POST", A, body(request_id=5), None, {400}, INV, N),
        ("request_id true", "POST", A, body(request_id=True), None, {400}, INV, N),
        ("request_id an object", "POST", A, body(request_id={}), None, {400}, INV, N),
        ("request_id empty", "POST", A, body(request_id=""), None, {400}, INV, N),
        ("request_id of 129 bytes", "POST", A, body(request_id="r" * 129), None, {400}, INV, N),
        ("request_id with a control character", "POST", A, body(request_id="r\u0001x"), None,
         {400}, INV, N),
        ("request_id with a NUL", "POST", A,
         '{"request_id":"rid-nul\\u0000x","events":[{"type":"T","data":{}}]}', None, {400},
         INV, N),
        # claims
        ("claims a string", "POST", A, body(claims="c1"), None, {400}, INV, N),
        ("claims an object", "POST", A, body(claims={"claim": "c1"}), None, {400}, INV, N),
        ("a claim that is a number", "POST", A, body(claims=[5]), None, {400}, INV, N),
        ("a claim that is a string", "POST", A, body(claims=["c1"]), None, {400}, INV, N),
        ("an empty claim object", "POST", A, body(claims=[{}]), None, {400}, INV, N),
        ("a claim with an unknown field", "POST", A, body(claims=[{"grab": "c1"}],
                                                          request_id="rid-bad-4"),
         None, {400}, INV, N),
        ("a claim key that is a number", "POST", A, body(claims=[{"claim": 5}]), None, {400},
         INV, N),
        ("an empty claim key", "POST", A, body(claims=[{"claim": ""}]), None, {400}, INV, N),
        ("claim and release in one object", "POST", A,
         body(claims=[{"claim": "c1", "release": "c1"}]), None, {400}, INV, N),
        ("a claim key of 513 bytes", "POST", A, body(claims=[{"claim": "c" * 513}]), None,
         {400}, INV, N),
        ("a claim key with a control character", "POST", A, body(claims=[{"claim": "c\u0002"}]),
         None, {400}, INV, N),
        ("a claim key with a NUL", "POST", A,
         '{"claims":[{"claim":"c1\\u0000x"}],"events":[{"type":"T","data":{}}]}', None, {400},
         INV, N),
        ("a valid claim next to a bad one", "POST", A,
         body(claims=[{"claim": "c1"}, {"claim": 7}], request_id="rid-bad-5"), None, {400},
         INV, N),
        ("101 claims in one append", "POST", A, claims101, None, {413}, TOO, N),
        ("1025 claims in one append", "POST", A, claims1025, None, {413}, TOO, N),
        # stream names
        ("a stream name with invalid UTF-8 (%FF)", "POST", "/streams/%FF", body(), None, {400},
         INV, None),
        ("a stream name with an overlong '/' (%C0%AF)", "POST", "/streams/a%C0%AF", body(), None,
         {400}, INV, None),
        ("a stream name with a surrogate (%ED%A0%80)", "POST", "/streams/%ED%A0%80", body(),
         None, {400}, INV, None),
        ("a stream name with a control character (%01)", "POST", "/streams/ctl%01x", body(), None,
         {400}, INV, "ctl"),
        ("a stream name with DEL (%7F)", "POST", "/streams/del%7F", body(), None, {400}, INV,
         "del"),
        ("a stream name with a C1 control (%C2%85)", "POST", "/streams/c1%C2%85", body(), None,
         {400}, INV, "c1"),
        ("a stream name with a NUL (%00)", "POST", "/streams/nulpre%00x", body(), None, {400},
         INV, "nulpre"),
        ("a stream name of 201 bytes", "POST", "/streams/" + big_name, body(), None, {400}, INV,
         None),
        ("a stream name with an encoded '/' (a%2Fb)", "POST", "/streams/sl%2Fx", body(), None,
         {400, 404}, INV | NF, "sl"),
        ("a stream path with a raw '/' (a/b)", "POST", "/streams/sl/x", body(), None, {400, 404},
         INV | NF, "sl"),
        ("the stream name '..'", "POST", "/streams/..", body(), None, {400, 404}, INV | NF, None),
        ("the stream name '.'", "POST", "/streams/.", body(), None, {400, 404}, INV | NF, None),
        ("the stream name '%2E%2E'", "POST", "/streams/%2E%2E", body(), None, {400, 404},
         INV | NF, None),
        ("an empty stream name", "POST", "/streams/", body(), None, {400, 404}, INV | NF, None),
        ("reading a stream named with invalid UTF-8", "GET", "/streams/%FF", None, None, {400},
         INV, None),
        ("reading a stream named with a NUL (seed%00x)", "GET", "/streams/seed%00x", None, None,
         {400}, INV, None),
        # query parameters
        ("/log?from=-1", "GET", "/log?from=-1", None, None, {400}, INV, None),
        ("/log?limit=abc", "GET", "/log?limit=abc", None, None, {400}, INV, None),
        ("/log?limit=-1", "GET", "/log?limit=-1", None, None, {400}, INV, None),
        ("/log?from=1e3", "GET", "/log?from=1e3", None, None, {400}, INV, None),
        ("/log?from= (empty)", "GET", "/log?from=", None, None, {400}, INV, None),
        ("/log?from= 20 digits", "GET", "/log?from=99999999999999999999", None, None, {400}, INV,
         None),
        ("/streams/x?from_version=-1", "GET", "/streams/x?from_version=-1", None, None, {400},
         INV, None),
        ("/streams/x?limit=abc", "GET", "/streams/x?limit=abc", None, None, {400}, INV, None),
        ("/streams/x?direction=sideways", "GET", "/streams/x?direction=sideways", None, None,
         {400}, INV, None),
        ("a query with min_position=-1", "GET",
         "/views/counts/queries/by_stream?stream=seed&min_position=-1", None, None, {400}, INV,
         None),
        ("a query with timeout_ms=abc", "GET",
         "/views/counts/queries/by_stream?stream=seed&timeout_ms=abc", None, None, {400}, INV,
         None),
        ("a query without its parameter", "GET", "/views/counts/queries/by_stream", None, None,
         {400}, INV, None),
        # views
        ("an unknown view", "GET", "/views/nope", None, None, {404}, NF, None),
        ("a query of an unknown view", "GET", "/views/nope/queries/x", None, None, {404}, NF,
         None),
        ("an unknown query", "GET", "/views/counts/queries/nope", None, None, {404}, NF, None),
        ("SQL on an unknown view", "POST", "/views/nope/sql", '{"sql":"SELECT 1"}', None, {404},
         NF, None),
        ("rebuilding an unknown view", "POST", "/views/nope/rebuild", None, {}, {404}, NF, None),
        ("an unknown view sub-route", "GET", "/views/counts/nope", None, None, {404}, NF, None),
        # ad-hoc SQL that writes or is not one statement
        ("SQL INSERT", "POST", "/views/counts/sql",
         '{"sql":"INSERT INTO counts VALUES (\'evil\', 1)"}', None, {400}, INV, None),
        ("SQL REPLACE", "POST", "/views/counts/sql",
         '{"sql":"REPLACE INTO counts VALUES (\'seed\', 99)"}', None, {400}, INV, None),
        ("SQL UPDATE", "POST", "/views/counts/sql", '{"sql":"UPDATE counts SET n = 99"}', None,
         {400}, INV, None),
        ("SQL DELETE", "POST", "/views/counts/sql", '{"sql":"DELETE FROM counts"}', None, {400},
         INV, None),
        ("SQL DELETE in a CTE", "POST", "/views/counts/sql",
         '{"sql":"WITH x AS (SELECT 1) DELETE FROM counts"}', None, {400}, INV, None),
        ("SQL DROP TABLE", "POST", "/views/counts/sql", '{"sql":"DROP TABLE counts"}', None,
         {400}, INV, None),
        ("SQL CREATE TABLE", "POST", "/views/counts/sql", '{"sql":"CREATE TABLE evil (x)"}',
         None, {400}, INV, None),
        ("SQL ALTER TABLE", "POST", "/views/counts/sql",
         '{"sql":"ALTER TABLE counts ADD COLUMN evil"}', None, {400}, INV, None),
        ("SQL ATTACH", "POST", "/views/counts/sql",
         json.dumps({"sql": f"ATTACH DATABASE '{TMP}/evil.db' AS evil"}), None, {400}, INV,
         None),
        ("SQL PRAGMA user_version = 5", "POST", "/views/counts/sql",
         '{"sql":"PRAGMA user_version = 5"}', None, {400}, INV, None),
        ("SQL PRAGMA journal_mode = DELETE", "POST", "/views/counts/sql",
         '{"sql":"PRAGMA journal_mode = DELETE"}', None, {400}, INV, None),
        ("SQL PRAGMA writable_schema = ON", "POST", "/views/counts/sql",
         '{"sql":"PRAGMA writable_schema = ON"}', None, {400}, INV, None),
        ("SQL VACUUM", "POST", "/views/counts/sql", '{"sql":"VACUUM"}', None, {400}, INV, None),
        ("SQL VACUUM INTO a file", "POST", "/views/counts/sql",
         json.dumps({"sql": f"VACUUM INTO '{TMP}/evil2.db'"}), None, {400}, INV, None),
        ("SQL load_extension()", "POST", "/views/counts/sql",
         '{"sql":"SELECT load_extension(\'x\')"}', None, {400}, INV, None),
        ("two SQL statements (SELECT; DELETE)", "POST", "/views/counts/sql",
         '{"sql":"SELECT 1; DELETE FROM counts"}', None, {400}, INV, None),
        ("two SQL statements (SELECT; SELECT)", "POST", "/views/counts/sql",
         '{"sql":"SELECT 1; SELECT 2"}', None, {400}, INV, None),
        ("SQL with a syntax error", "POST", "/views/counts/sql", '{"sql":"SELEC 1"}', None,
         {400}, INV, None),
        ("a SQL body without sql", "POST", "/views/counts/sql", '{"query":"SELECT 1"}', None,
         {400}, INV, None),
        ("a SQL body whose sql is a number", "POST", "/views/counts/sql", '{"sql":1}', None,
         {400}, INV, None),
        ("a SQL body whose params is an array", "POST", "/views/counts/sql",
         '{"sql":"SELECT 1","params":[1]}', None, {400}, INV, None),
        ("a SQL body that is not JSON", "POST", "/views/counts/sql", "SELECT 1", None, {400},
         INV, None),
        ("a SQL body as text/plain", "POST", "/views/counts/sql", '{"sql":"SELECT 1"}',
         {"Content-Type": "text/plain"}, {415}, None, None),
        # routes and methods
        ("an unknown route", "GET", "/nope", None, None, {404}, NF, None),
        ("a route that only looks like /streams", "GET", "/streamsx", None, None, {404}, NF,
         None),
        ("a path under /log", "GET", "/log/x", None, None, {404}, NF, None),
        ("POST to an unknown route", "POST", "/nope", body(), None, {404}, NF, None),
        ("DELETE /streams/x", "DELETE", "/streams/x", None, None, {405}, None, None),
        ("PUT /streams/x", "PUT", A, body(), None, {405}, None, N),
        ("PATCH /streams/x", "PATCH", A, body(), None, {405}, None, N),
        ("PUT /log", "PUT", "/log", body(), None, {405}, None, None),
        ("POST /log", "POST", "/log", body(), None, {405}, None, None),
        ("DELETE /views/counts", "DELETE", "/views/counts", None, None, {405}, None, None),
        ("GET /views/counts/sql", "GET", "/views/counts/sql", None, None, {405}, None, None),
        ("GET /views/counts/rebuild", "GET", "/views/counts/rebuild", None, None, {405}, None,
         None),
        ("POST to a named query", "POST", "/views/counts/queries/by_stream", '{}', None, {405},
         None, None),
    ]

    # HEAD is GET without the body (RFC 9110 9.3.2): same status, no body.
    head_rows = [("HEAD /health", "/health", 200), ("HEAD /log", "/log", 200),
                 ("HEAD /streams/seed", "/streams/seed", 200), ("HEAD /views", "/views", 200),
                 ("HEAD /nope", "/nope", 404)]

    missing_allow = []
    for i, (desc, method, path, b, hdrs, statuses, codes, stream) in enumerate(table):
        if path == A:  # each row its own target stream, so that one write taints one row
            path, stream = f"/streams/bt{i}", f"bt{i}"
        try:
            st, rh, rb = request(method, path, b, hdrs)
        except (OSError, http.client.HTTPException) as e:
            bad(f"{desc}: answered", f"{method} {path[:80]}: {e!r}")
            continue
        why = []
        if st not in statuses:
            why.append(f"status {st}, want {sorted(statuses)}")
        j = jload(rb)
        why += ktap.error_problems(j, codes)
        if st == 405 and "allow" not in rh:
            missing_allow.append(f"{method} {path}")
        h = head()
        if h != base_head:
            why.append(f"the log head moved from {base_head} to {h}")
        if stream is not None:
            evs = stream_events(stream)
            if evs != []:
                why.append(f"stream {stream!r} reads {str(evs)[:200]}")
        if why:
            bad(f"{desc} is refused and writes nothing", f"{method} {path[:100]}",
                *why, f"answer: {rb[:300]!r}")
            if h is not None and h != base_head:
                base_head = h  # report each write once
        else:
            ok(f"{desc} is refused with {st} and writes nothing")

    check(not missing_allow, "every 405 answer names the allowed methods (Allow header)",
          *missing_allow)

    for desc, path, want in head_rows:
        try:
            st, rh, rb = request("HEAD", path)
            check(st == want and rb == b"", f"{desc} answers {want} without a body",
                  f"status {st}, body {rb[:100]!r}")
        except OSError as e:
            bad(f"{desc} answers {want} without a body", repr(e))

    # ---- an oversize body (limit 16 MiB): 413 too_large, with and without Expect ------------
    def oversize_post(expect):
        """POST the 17 MiB body on a raw socket; the server may answer (and close) before it
        has read it all, so a failed send is not an error: the answer is what counts."""
        s = socket.create_connection((HOST, PORT), timeout=60)
        out = b""
        try:
            s.sendall(b"POST /streams/big HTTP/1.1\r\nHost: k\r\nContent-Type: application/json"
                      b"\r\nContent-Length: %d\r\n%s\r\n" %
                      (len(oversize), b"Expect: 100-continue\r\n" if expect else b""))
            if expect:
                out = s.recv(65536)
                if out.startswith(b"HTTP/1.1 100"):
                    out = out.split(b"\r\n\r\n", 1)[1]
                    expect = False  # the server asked for the body: send it
            if not expect:
                try:
                    for i in range(0, len(oversize), 1 << 16):
                        s.sendall(oversize[i:i + (1 << 16)])
                except OSError:
                    pass
            out = read_answer(s, out)
        finally:
            s.close()
        st = int(out.split(b" ", 2)[1]) if out.startswith(b"HTTP/1.") else None
        j = jload(out.split(b"\r\n\r\n", 1)[1]) if b"\r\n\r\n" in out else None
        code = (j.get("error") or {}).get("code") if isinstance(j, dict) else None
        msg = (j.get("error") or {}).get("message") if isinstance(j, dict) else None
        return st, code, msg, out

    for expect in (True, False):
        desc = ("a 17 MiB body (limit 16 MiB) " +
                ("announced with Expect: 100-continue" if expect else "sent whole"))
        try:
            st, code, msg, out = oversize_post(expect)
        except OSError as e:
            st, code, msg, out = None, None, None, repr(e).encode()
        h = head()
        evs = stream_events("big")
        if check(st == 413 and code == "too_large" and msg and h == base_head and evs == [],
                 f"{desc} is refused with 413 too_large and writes nothing",
                 f"status {st}, code {code}, head {h} (was {base_head}), stream big {evs}",
                 f"answer: {out[:300]!r}") is False and h is not None:
            base_head = h

    # ---- protocol-level abuse: some 4xx, and the server lives --------------------------------
    proto = [
        ("a 100 KB URL", b"GET /log?from=0&x=" + b"a" * 100000 + b" HTTP/1.1\r\nHost: k\r\n"
         b"Connection: close\r\n\r\n"),
        ("3,000 headers", b"GET /log HTTP/1.1\r\nHost: k\r\n" +
         b"".join(b"X-H%d: v\r\n" % i for i in range(3000)) + b"Connection: close\r\n\r\n"),
        ("a 70 KB header", b"GET /log HTTP/1.1\r\nHost: k\r\nX-Big: " + b"v" * 70000 +
         b"\r\nConnection: close\r\n\r\n"),
        ("Content-Length: abc", b"POST /streams/bt HTTP/1.1\r\nHost: k\r\nContent-Type: "
         b"application/json\r\nContent-Length: abc\r\nConnection: close\r\n\r\n" + body().encode()),
        ("Content-Length: -5", b"POST /streams/bt HTTP/1.1\r\nHost: k\r\nContent-Type: "
         b"application/json\r\nContent-Length: -5\r\nConnection: close\r\n\r\n" + body().encode()),
        ("a malformed chunk size", b"POST /streams/bt HTTP/1.1\r\nHost: k\r\nContent-Type: "
         b"application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n" +
         body().encode() + b"\r\n0\r\n\r\n"),
    ]
    for desc, data in proto:
        try:
            st, out = raw(data)
        except OSError as e:
            st, out = None, repr(e).encode()
        h = head()
        alive = srv.poll() is None
        check(st is not None and 400 <= st < 500 and h == base_head and alive,
              f"{desc} gets a 4xx, writes nothing, and the server lives",
              f"status {st}, head {h}, alive {alive}", f"answer: {out[:200]!r}")

    # ---- nothing leaked from the refused requests -------------------------------------------
    # The view must still be exactly what the log implies (whatever the log holds now: a
    # refused append that wrongly landed is reported above, not here).
    h = head()
    request("GET", f"/views/counts/queries/by_stream?stream=seed&min_position={h - 1}")
    st, _, b = request("GET", f"/log?from=0&limit={h}")
    want = {}
    for e in (jload(b) or {}).get("events", []):
        if e.get("type") == "T":
            want[e["stream"]] = want.get(e["stream"], 0) + 1
    view_after = sql_rows("SELECT stream, n FROM counts ORDER BY stream")
    got = {r["stream"]: r["n"] for r in view_after} if isinstance(view_after, list) else None
    check(got == want, "the refused SQL changed nothing in the view", f"view {view_after}",
          f"log implies {want}")
    check(sql_rows("SELECT name FROM sqlite_master WHERE name LIKE 'evil%'") == [],
          "the refused SQL created no table")
    check(not os.path.exists(os.path.join(TMP, "evil.db")) and
          not os.path.exists(os.path.join(TMP, "evil2.db")),
          "the refused SQL created no files")
    check(srv.poll() is None and request("GET", "/health")[0] == 200,
          "the server is alive and healthy after the table")

    goods = 0

    def good(desc, path, b, hdrs=None, want=201):
        global goods
        try:
            st, _, rb = request("POST", path, b, hdrs)
        except OSError as e:
            bad(desc, repr(e))
            return None
        j = jload(rb)
        if check(st == want, desc, f"status {st}, want {want}", f"answer: {rb[:300]!r}"):
            if st == 201:
                goods += (j["last_position"] - j["first_position"] + 1)
        return j

    good("a good append works after the table", "/streams/after", body())
    good("the request ids of refused requests were not consumed", "/streams/after",
         body(request_id="rid-bad-1", events=[{"type": "T", "data": {"other": 1}}],
              claims=[{"claim": "rid-check"}]))
    good("a refused 1 MiB event did not consume its request id", "/streams/after",
         body(request_id="rid-bigdata"))
    good("the claims of refused requests were not taken", "/streams/after2",
         body(claims=[{"claim": "c1"}] + [{"claim": f"bulk-{i}"} for i in range(99)]))
    good("Content-Type application/json; charset=utf-8 is accepted", "/streams/after",
         body(), {"Content-Type": "application/json; charset=utf-8"})
    good("the media type is case-insensitive (Application/JSON)", "/streams/after", body(),
         {"Content-Type": "Application/JSON"})
    st, out = raw(b"POST /streams/after HTTP/1.1\r\nHost: k\r\nContent-Type: application/json"
                  b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
                  b"%x\r\n%s\r\n0\r\n\r\n" % (len(body()), body().encode()))
    if check(st == 201, "a chunked body is accepted", f"answer: {out[:200]!r}"):
        goods += 1
    good("a 200-byte stream name is accepted", "/streams/" + "s" * 200, body())
    good("a 100-byte type is accepted", "/streams/after",
         body(events=[{"type": "t" * 100, "data": {}}]))
    good("a 128-byte request id is accepted", "/streams/after", body(request_id="r" * 128))
    good("a 512-byte claim key is accepted", "/streams/after", body(claims=[{"claim": "c" * 512}]))
    good("10,000 events in one append are accepted", "/streams/after-many",
         json.dumps({"events": [EV] * 10000}))
    good("a UTF-8 stream name is accepted", "/streams/%C3%A9t%C3%A9-%E2%82%AC", body())
    j = good("expected_version 0 on a one-event stream appends", "/streams/seed",
             body(expected_version=0))
    h = head()
    check(h == base_head + goods, "the log head counts exactly the good appends",
          f"head {h}, want {base_head} + {goods}")
    evs = stream_events("%C3%A9t%C3%A9-%E2%82%AC")
    check(isinstance(evs, list) and len(evs) == 1 and evs[0].get("stream") == "été-€" and
          evs[0].get("data") == {"k": 1}, "the UTF-8 stream reads back", str(evs)[:300])

    # ---- clean stop ----------------------------------------------------------------------------
    srv.send_signal(signal.SIGTERM)
    try:
        rc = srv.wait(timeout=30)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, "SIGTERM stops the server cleanly", f"exit {rc}")
    if rc is not None:
        os.unlink(PIDFILE)
    r = subprocess.run([KAPPA, "check", data_dir], capture_output=True, text=True)
    check(r.returncode == 0, "kappa check passes on the data", r.stdout[-500:], r.stderr[-500:])
except Exception:  # the server died under us, or a bug here: fail, don't just stop
    bad("the test ran to its end", traceback.format_exc())
finally:
    if srv.poll() is None:
        srv.kill()
        srv.wait()
    if os.path.exists(PIDFILE):
        os.unlink(PIDFILE)

finish()
