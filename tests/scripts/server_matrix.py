#!/usr/bin/env python3
"""server_matrix.py -- the bad-input and security matrix against kappa serve (standard
library only; documented in docs/testing.md, "Bad input and security matrix").

Usage: server_matrix.py KAPPA_BIN TMPDIR

One server with --auth-file (tokens admin, read, append, read+append, and read+append limited
to the prefix "user-") and a view. Each row of the table below is one hostile or malformed
request: depth bombs, huge numbers, invalid UTF-8 and NUL bytes in every string field,
oversize values and answers, path traversal in stream and view names, header injection,
request smuggling shapes, SQL injection through query parameters, writing SQL, every route
with a token that lacks its scope, replayed request ids with altered bodies. Each must get its
documented status and error code, leave the server alive, and write nothing (the log head
is unchanged) unless the row is meant to write. Then: a slowloris connection is cut off at
the request timeout; 10,000 idle connections are held while the server answers others (and
a server with a lower --max-connections refuses the excess cleanly and stays responsive);
the server's resident memory after the matrix stays within a generous bound of what it was
before. server_bad_input.py has the plainer bad requests (shapes, types, sizes, methods);
this table does not repeat them.

The servers listen on 127.0.0.1 only; the PID goes to TMPDIR/server.pid so the wrapper can
kill it (and only it) if this script dies.
"""
import http.client
import json
import os
import resource
import signal
import socket
import sys
import time

KAPPA, TMP = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktap  # noqa: E402
from ktap import HOST, bad, check, finish, free_port, jload, ok, plan  # noqa: E402

PORT = free_port()
IDLE_CONNECTIONS = 10000
RSS_BOUND_KB = 256 * 1024  # growth of the server's resident memory over the matrix
if os.environ.get("BUILD") == "build-asan":  # redzones, and up to 256 MiB of freed memory
    RSS_BOUND_KB = 1536 * 1024               # held in AddressSanitizer's quarantine

ADMIN = "matrix-admin-token-0123456789"
READ = "matrix-read-token-0123456789ab"
APPEND = "matrix-append-token-0123456789"
RA = "matrix-readappend-token-012345"
PFX = "matrix-prefix-token-0123456789"


# ---- helpers ----------------------------------------------------------------------------------
def request(method, path, body=None, token=ADMIN, headers=None, timeout=30):
    """One request on a fresh connection: (status, headers (lower-case keys), body bytes)."""
    c = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    try:
        c.putrequest(method, path, skip_accept_encoding=True)
        h = dict(headers or {})
        if body is not None:
            h.setdefault("Content-Type", "application/json")
            if isinstance(body, str):
                body = body.encode()
            h["Content-Length"] = str(len(body))
        if token:
            h.setdefault("Authorization", f"Bearer {token}")
        for k, v in h.items():
            c.putheader(k, v)
        c.endheaders(body)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def raw(data, timeout=10):
    """Send raw bytes on a fresh connection; read until the server closes or goes quiet.
    Returns (the statuses of every answer in order, all bytes read)."""
    s = socket.create_connection((HOST, PORT), timeout=timeout)
    out = b""
    try:
        s.sendall(data)
        s.settimeout(2)
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except OSError:
        pass
    finally:
        s.close()
    statuses = [int(line.split(b" ")[1]) for line in out.split(b"\r\n")
                if line.startswith(b"HTTP/1.") and len(line.split(b" ")) > 1 and
                line.split(b" ")[1].isdigit()]
    return statuses, out


def head():
    try:
        st, _, b = request("GET", "/log?from=0&limit=0")
        j = jload(b)
        return j.get("head") if st == 200 and isinstance(j, dict) else None
    except (OSError, http.client.HTTPException):
        return None


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def ev(**kw):
    e = {"type": "T", "data": {}}
    e.update(kw)
    return e


def append_body(**kw):
    b = {"events": [ev()]}
    b.update(kw)
    return json.dumps(b)


# ---- set up -----------------------------------------------------------------------------------
# 10,000 idle connections need that many descriptors here and in the server (which inherits
# the limit): raise the soft limit as far as the hard one allows.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want_fds = IDLE_CONNECTIONS + 1000
if soft < want_fds:
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want_fds, hard), hard))
    except (ValueError, OSError):
        pass
fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
n_idle = min(IDLE_CONNECTIONS, fd_limit - 500)

data_dir = os.path.join(TMP, "data")
views_dir = os.path.join(TMP, "views")
os.makedirs(views_dir)
ktap.write_counts_view(views_dir)
auth = os.path.join(TMP, "auth")
with open(auth, "w") as f:
    f.write(f"{ADMIN} admin\n{READ} read\n{APPEND} append\n{RA} read,append\n"
            f"{PFX} read,append user-\n")
os.chmod(auth, 0o600)

srv, up = ktap.start_server(KAPPA, TMP, PORT, [
    "--data", data_dir, "--views", views_dir, "--auth-file", auth,
    "--max-connections", str(n_idle + 1000), "--request-timeout", "3", "--idle-timeout", "30"])
if not check(up is not None and srv.poll() is None, "the server starts with an auth file",
             ktap.log_tail(TMP)):
    plan()
    sys.exit(1)

try:
    st, _, b = request("POST", "/streams/seed", append_body(request_id="seed-1"))
    check(st == 201, "a first good append is created", f"status {st} {b[:200]!r}")
    request("GET", "/views/counts/queries/by_stream?stream=seed&min_position=0")
    base_head = head()
    rss_before = rss_kb(srv.pid)

    # ---- the table --------------------------------------------------------------------------
    # (case, method, path, body, token, extra headers, statuses, error code (None: any JSON
    #  error; "" : no JSON error body expected), writes: how far the head may move)
    INV, NF, TOO = "invalid_argument", "not_found", "too_large"
    UNAUTH, FORB = "unauthorized", "forbidden"
    deep = "[" * 200000 + "]" * 200000
    deep_obj = '{"a":' * 100000 + "1" + "}" * 100000
    big_meta = {"m": "x" * (1 << 20)}
    Q = "/views/counts/queries/by_stream"
    SQL = "/views/counts/sql"

    def sql(text, **kw):
        b = {"sql": text}
        b.update(kw)
        return json.dumps(b)

    table = [
        # depth bombs and malformed JSON
        ("depth bomb: an append body of 200,000 nested arrays", "POST", "/streams/m1", deep,
         ADMIN, None, {400}, INV, 0),
        ("depth bomb: 100,000 nested objects in metadata", "POST", "/streams/m1",
         '{"events":[{"type":"T","data":{},"metadata":' + deep_obj + "}]}", ADMIN, None,
         {400}, INV, 0),
        ("depth bomb: 100,000 nested objects in SQL params", "POST", SQL,
         '{"sql":"SELECT 1","params":' + deep_obj + "}", ADMIN, None, {400}, INV, 0),
        ("duplicate keys in the append body", "POST", "/streams/m1",
         '{"events":[{"type":"T","data":{}}],"events":[{"type":"U","data":{}}]}', ADMIN, None,
         {400}, INV, 0),
        ("duplicate keys inside data", "POST", "/streams/m1",
         '{"events":[{"type":"T","data":{"a":1,"a":2}}]}', ADMIN, None, {400}, INV, 0),
        ("a UTF-8 byte order mark before the body", "POST", "/streams/m1",
         b"\xef\xbb\xbf" + append_body().encode(), ADMIN, None, {400}, INV, 0),
        # huge numbers
        ("a number over the double range in data (1e400)", "POST", "/streams/m1",
         '{"events":[{"type":"T","data":{"n":1e400}}]}', ADMIN, None, {400}, INV, 0),
        ("an integer of 2^64 in data", "POST", "/streams/m1",
         '{"events":[{"type":"T","data":{"n":18446744073709551616}}]}', ADMIN, None, {400},
         INV, 0),
        ("a 10,000-digit integer in metadata", "POST", "/streams/m1",
         '{"events":[{"type":"T","data":{},"metadata":{"n":' + "9" * 10000 + "}}]}", ADMIN,
         None, {400}, INV, 0),
        ("expected_version 1e400", "POST", "/streams/m1",
         '{"expected_version":1e400,"events":[{"type":"T","data":{}}]}', ADMIN, None, {400},
         INV, 0),
        ("from_version 2^64 on a stream read", "GET", "/streams/seed?from_version="
         "18446744073709551616", None, ADMIN, None, {400}, INV, 0),
        ("limit of 30 digits on /log", "GET", "/log?limit=" + "9" * 30, None, ADMIN, None,
         {400}, INV, 0),
        ("min_position 2^64-2 with timeout_ms=50: the wait ends", "GET",
         Q + "?stream=seed&min_position=18446744073709551614&timeout_ms=50", None, ADMIN, None,
         {504}, "timeout", 0),
        ("SQL params with a number over the double range", "POST", SQL,
         '{"sql":"SELECT :x AS x","params":{"x":1e400}}', ADMIN, None, {400}, INV, 0),
        # invalid UTF-8 and NUL in every string field
        ("invalid UTF-8 in a data value", "POST", "/streams/m1",
         b'{"events":[{"type":"T","data":{"v":"a\xffb"}}]}', ADMIN, None, {400}, INV, 0),
        ("invalid UTF-8 in a data key", "POST", "/streams/m1",
         b'{"events":[{"type":"T","data":{"\xc0\xaf":1}}]}', ADMIN, None, {400}, INV, 0),
        ("NUL (\\u0000) in a data value", "POST", "/streams/m1",
         '{"events":[{"type":"T","data":{"v":"a\\u0000b"}}]}', ADMIN, None, {400}, INV, 0),
        ("NUL (\\u0000) in a data key", "POST", "/streams/m1",
         '{"events":[{"type":"T","data":{"a\\u0000b":1}}]}', ADMIN, None, {400}, INV, 0),
        ("invalid UTF-8 in the subject", "POST", "/streams/m1",
         b'{"events":[{"type":"T","data":{},"subject":"s\xed\xa0\x80"}]}', ADMIN, None, {400},
         INV, 0),
        ("invalid UTF-8 in a metadata value", "POST", "/streams/m1",
         b'{"events":[{"type":"T","data":{},"metadata":{"ip":"\xfe"}}]}', ADMIN, None, {400},
         INV, 0),
        ("NUL in a metadata value", "POST", "/streams/m1",
         '{"events":[{"type":"T","data":{},"metadata":{"ip":"\\u0000"}}]}', ADMIN, None,
         {400}, INV, 0),
        ("invalid UTF-8 in the request_id", "POST", "/streams/m1",
         b'{"request_id":"r\xff","events":[{"type":"T","data":{}}]}', ADMIN, None, {400}, INV,
         0),
        ("invalid UTF-8 in a claim key", "POST", "/streams/m1",
         b'{"claims":[{"claim":"k\x80"}],"events":[{"type":"T","data":{}}]}', ADMIN, None,
         {400}, INV, 0),
        ("NUL in a release key", "POST", "/streams/m1",
         '{"claims":[{"release":"k\\u0000"}],"events":[{"type":"T","data":{}}]}', ADMIN, None,
         {400}, INV, 0),
        ("invalid UTF-8 in the SQL text", "POST", SQL, b'{"sql":"SELECT \'\xff\'"}', ADMIN,
         None, {400}, INV, 0),
        ("NUL in the SQL text (hiding a second statement)", "POST", SQL,
         '{"sql":"SELECT 1\\u0000; DELETE FROM counts"}', ADMIN, None, {400}, INV, 0),
        ("NUL in an SQL parameter", "POST", SQL,
         '{"sql":"SELECT :x AS x","params":{"x":"a\\u0000b"}}', ADMIN, None, {400}, INV, 0),
        ("invalid UTF-8 in a query parameter (%FF)", "GET", Q + "?stream=%FF", None, ADMIN,
         None, {400}, INV, 0),
        ("NUL in a query parameter (%00)", "GET", Q + "?stream=seed%00x", None, ADMIN, None,
         {400}, INV, 0),
        ("NUL in a view name (%00)", "GET", "/views/counts%00x", None, ADMIN, None, {400}, INV,
         0),
        ("invalid UTF-8 in the bearer token", "GET", "/log", None, None,
         {"Authorization": b"Bearer \xff\xfe-token-0123456789"}, {401}, UNAUTH, 0),
        # oversize
        ("metadata over 1 MiB", "POST", "/streams/m1",
         json.dumps({"events": [ev(metadata=big_meta)]}), ADMIN, None, {413}, TOO, 0),
        ("a bearer token of 300 characters", "GET", "/log", None, "t" * 300, None, {401},
         UNAUTH, 0),
        ("a 1 GB blob through ad-hoc SQL", "POST", SQL, sql("SELECT zeroblob(1000000000)"),
         ADMIN, None, {400}, INV, 0),
        ("a 600 MB random blob through ad-hoc SQL", "POST", SQL,
         sql("SELECT randomblob(600000000)"), ADMIN, None, {400}, INV, 0),
        ("a 200 MB string built by ad-hoc SQL", "POST", SQL,
         sql("SELECT replace(hex(zeroblob(100000000)), '0', 'aa')"), ADMIN, None, {400}, INV,
         0),
        ("an endless recursive SQL query counted to the end", "POST", SQL,
         sql("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
             "SELECT count(*) FROM c"), ADMIN, None, {504}, "timeout", 0),
        ("257 query parameters", "GET", Q + "?stream=seed&" +
         "&".join(f"p{i}=1" for i in range(257)), None, ADMIN, None, {400}, INV, 0),
        ("a view name of 200 bytes", "GET", "/views/" + "v" * 200, None, ADMIN, None, {404}, NF,
         0),
        ("a query name of 200 bytes", "GET", "/views/counts/queries/" + "q" * 200, None, ADMIN,
         None, {404}, NF, 0),
        # path traversal
        ("a view named '..' (%2E%2E)", "GET", "/views/%2E%2E", None, ADMIN, None, {404}, NF, 0),
        ("a view path ../../etc/passwd (encoded)", "GET", "/views/..%2F..%2Fetc%2Fpasswd",
         None, ADMIN, None, {404}, NF, 0),
        ("a view path with a raw ../", "GET", "/views/../log", None, ADMIN, None, {404}, NF, 0),
        ("SQL on a view path that climbs out", "POST", "/views/..%2F..%2Ftmp%2Fx/sql",
         sql("SELECT 1"), ADMIN, None, {404}, NF, 0),
        ("a view named counts.db", "GET", "/views/counts.db", None, ADMIN, None, {404}, NF, 0),
        ("a view path with a backslash climb", "GET", "/views/..%5C..%5Ccounts", None, ADMIN,
         None, {404}, NF, 0),
        ("rebuilding a view named ..", "POST", "/views/%2E%2E/rebuild", None, ADMIN, None,
         {404}, NF, 0),
        ("appending to stream ../../log (encoded)", "POST", "/streams/..%2F..%2Flog",
         append_body(), ADMIN, None, {400}, INV, 0),
        ("reading stream ..%2Fseed", "GET", "/streams/..%2Fseed", None, ADMIN, None, {400}, INV,
         0),
        ("an absolute URL as the request target", "GET", "http://evil.example/log", None, ADMIN,
         None, {404}, NF, 0),
        # header injection: nothing a client sends comes back as a header
        ("CR LF in a query parameter", "GET", Q + "?stream=a%0D%0ASet-Cookie:%20x=1", None,
         ADMIN, None, {200}, "", 0),
        ("CR LF in a stream name", "POST", "/streams/a%0D%0ASet-Cookie:%20x=1", append_body(),
         ADMIN, None, {400}, INV, 0),
        ("CR LF in a view name", "GET", "/views/a%0D%0ALocation:%20http:%2F%2Fevil", None,
         ADMIN, None, {404}, NF, 0),
        # SQL injection through query parameters (bound, never spliced)
        ("SQL injection: ' OR '1'='1 in a parameter", "GET",
         Q + "?stream=x%27%20OR%20%271%27%3D%271", None, ADMIN, None, {200}, "", 0),
        ("SQL injection: a stacked DROP TABLE in a parameter", "GET",
         Q + "?stream=seed%27%3B%20DROP%20TABLE%20counts%3B--", None, ADMIN, None, {200}, "",
         0),
        ("SQL injection: UNION SELECT from sqlite_master", "GET",
         Q + "?stream=x%27%20UNION%20SELECT%20sql%2C%201%20FROM%20sqlite_master--", None, ADMIN,
         None, {200}, "", 0),
        ("SQL injection in a parameter name", "GET",
         Q + "?stream=seed&x%27%3B%20DROP%20TABLE%20counts%3B--=1", None, ADMIN, None, {200},
         "", 0),
        ("SQL injection in min_position", "GET", Q + "?stream=seed&min_position=0%20OR%201=1",
         None, ADMIN, None, {400}, INV, 0),
        ("SQL injection in a query name", "GET", "/views/counts/queries/by_stream%3BDROP", None,
         ADMIN, None, {404}, NF, 0),
        # writing SQL beyond server_bad_input.py's INSERT/ATTACH/PRAGMA/load_extension rows
        ("SQL BEGIN (a transaction left open)", "POST", SQL, sql("BEGIN"), ADMIN, None, {400},
         INV, 0),
        ("SQL SAVEPOINT", "POST", SQL, sql("SAVEPOINT x"), ADMIN, None, {400}, INV, 0),
        ("SQL CREATE TEMP TABLE", "POST", SQL, sql("CREATE TEMP TABLE t(x)"), ADMIN, None,
         {400}, INV, 0),
        ("SQL INSERT ... RETURNING", "POST", SQL,
         sql("INSERT INTO counts VALUES ('evil', 1) RETURNING *"), ADMIN, None, {400}, INV, 0),
        ("SQL PRAGMA query_only = 0", "POST", SQL, sql("PRAGMA query_only = 0"), ADMIN, None,
         {400}, INV, 0),
        ("SQL DETACH main", "POST", SQL, sql("DETACH DATABASE main"), ADMIN, None, {400}, INV,
         0),
        ("SQL writefile()", "POST", SQL, sql(f"SELECT writefile('{TMP}/evil', 'x')"), ADMIN,
         None, {400}, INV, 0),
        ("SQL load_extension of libc", "POST", SQL,
         sql("SELECT load_extension('libc.so.6')"), ADMIN, None, {400}, INV, 0),
        ("SQL ATTACH through a parameter", "POST", SQL,
         sql("ATTACH :f AS evil", params={"f": f"{TMP}/evil.db"}), ADMIN, None, {400}, INV, 0),
        ("SQL PRAGMA wal_checkpoint", "POST", SQL, sql("PRAGMA wal_checkpoint(TRUNCATE)"),
         ADMIN, None, {400}, INV, 0),
        # tokens without the scope of the route (and without a token at all)
        ("append with a read token", "POST", "/streams/m1", append_body(), READ, None, {403},
         FORB, 0),
        ("append outside the token's stream prefix", "POST", "/streams/other", append_body(),
         PFX, None, {403}, FORB, 0),
        ("append without a token", "POST", "/streams/m1", append_body(), None, None, {401},
         UNAUTH, 0),
        ("append with an unknown token", "POST", "/streams/m1", append_body(),
         "matrix-unknown-token-012345678", None, {401}, UNAUTH, 0),
        ("append with a token that is a prefix of a real one", "POST", "/streams/m1",
         append_body(), ADMIN[:-1], None, {401}, UNAUTH, 0),
        ("append with Basic auth", "POST", "/streams/m1", append_body(), None,
         {"Authorization": "Basic " + ADMIN}, {401}, UNAUTH, 0),
        ("read a stream with an append token", "GET", "/streams/seed", None, APPEND, None,
         {403}, FORB, 0),
        ("read a stream outside the token's prefix", "GET", "/streams/seed", None, PFX, None,
         {403}, FORB, 0),
        ("read /log with an append token", "GET", "/log", None, APPEND, None, {403}, FORB, 0),
        ("subscribe with an append token", "GET", "/subscribe", None, APPEND, None, {403}, FORB,
         0),
        ("list views with an append token", "GET", "/views", None, APPEND, None, {403}, FORB,
         0),
        ("a view's status with an append token", "GET", "/views/counts", None, APPEND, None,
         {403}, FORB, 0),
        ("a named query with an append token", "GET", Q + "?stream=seed", None, APPEND, None,
         {403}, FORB, 0),
        ("ad-hoc SQL with an append token", "POST", SQL, sql("SELECT 1"), APPEND, None, {403},
         FORB, 0),
        ("rebuild with a read token", "POST", "/views/counts/rebuild", None, READ, None, {403},
         FORB, 0),
        ("rebuild with a read+append token", "POST", "/views/counts/rebuild", None, RA, None,
         {403}, FORB, 0),
        ("metrics with an append token", "GET", "/metrics", None, APPEND, None, {403}, FORB, 0),
        ("the audit digest with an append token", "GET", "/audit/digest", None, APPEND, None,
         {403}, FORB, 0),
        ("audit verify with a read token", "GET", "/audit/verify", None, READ, None, {403},
         FORB, 0),
        ("audit verify without a token", "GET", "/audit/verify", None, None, None, {401},
         UNAUTH, 0),
        ("metrics without a token", "GET", "/metrics", None, None, None, {401}, UNAUTH, 0),
        # Last-Event-ID
        ("Last-Event-ID of 20 digits", "GET", "/subscribe", None, ADMIN,
         {"Last-Event-ID": "99999999999999999999"}, {400}, INV, 0),
        ("Last-Event-ID negative", "GET", "/subscribe", None, ADMIN, {"Last-Event-ID": "-1"},
         {400}, INV, 0),
        ("Last-Event-ID with SQL in it", "GET", "/subscribe", None, ADMIN,
         {"Last-Event-ID": "1; DROP TABLE counts"}, {400}, INV, 0),
        # replayed request ids with altered bodies (seed-1 was {"events":[T {}]} on "seed")
        ("replay of seed-1 with the same body", "POST", "/streams/seed",
         append_body(request_id="seed-1"), ADMIN, None, {200}, "", 0),
        ("replay of seed-1 with only whitespace changed", "POST", "/streams/seed",
         '{ "request_id" : "seed-1",\n "events" : [ { "type" : "T", "data" : { } } ] }', ADMIN,
         None, {200}, "", 0),
        ("replay of seed-1 with other data", "POST", "/streams/seed",
         json.dumps({"request_id": "seed-1", "events": [ev(data={"x": 1})]}), ADMIN, None,
         {409}, "request_id_reused", 0),
        ("replay of seed-1 on another stream", "POST", "/streams/seed2",
         append_body(request_id="seed-1"), ADMIN, None, {409}, "request_id_reused", 0),
        ("replay of seed-1 with an expected version", "POST", "/streams/seed",
         append_body(request_id="seed-1", expected_version="no_stream"), ADMIN, None, {409},
         "request_id_reused", 0),
        ("replay of seed-1 with a claim added", "POST", "/streams/seed",
         append_body(request_id="seed-1", claims=[{"claim": "k1"}]), ADMIN, None, {409},
         "request_id_reused", 0),
        ("replay of seed-1 with a second event", "POST", "/streams/seed",
         json.dumps({"request_id": "seed-1", "events": [ev(), ev()]}), ADMIN, None, {409},
         "request_id_reused", 0),
        ("replay of seed-1 with a subject added", "POST", "/streams/seed",
         json.dumps({"request_id": "seed-1", "events": [ev(subject="s")]}), ADMIN, None, {409},
         "request_id_reused", 0),
    ]

    rows = 0
    for desc, method, path, body, token, hdrs, statuses, code, writes in table:
        rows += 1
        try:
            st, rh, rb = request(method, path, body, token, hdrs)
        except (OSError, http.client.HTTPException) as e:
            bad(f"{desc}: answered", f"{method} {path[:80]}: {e!r}")
            continue
        why = []
        if st not in statuses:
            why.append(f"status {st}, want {sorted(statuses)}")
        j = jload(rb)
        err = j.get("error") if isinstance(j, dict) else None
        if code != "":
            why += ktap.error_problems(j, None if code is None else {code})
        elif err is not None:
            why.append(f"an error answer: {err}")
        injected = [k for k in rh if k in ("set-cookie", "location")]
        if injected:
            why.append(f"injected headers {injected}")
        if st == 401 and "www-authenticate" not in rh:
            why.append("a 401 without WWW-Authenticate")
        alive = srv.poll() is None
        if not alive:
            why.append("the server died")
        h = head()
        if h is None or not base_head <= h <= base_head + writes:
            why.append(f"the log head moved from {base_head} to {h}")
        if why:
            bad(f"{desc}: {sorted(statuses)} {code or ''}", f"{method} {path[:100]}", *why,
                f"answer: {rb[:300]!r}")
            if not alive:
                break
            if h is not None:
                base_head = h
        else:
            ok(f"{desc}: {st} {code or (err or {}).get('code', '')}".rstrip())

    # SQL injection did not reach the table
    st, _, b = request("POST", SQL, sql("SELECT stream, n FROM counts ORDER BY stream"))
    j = jload(b) or {}
    check(st == 200 and j.get("rows") == [{"stream": "seed", "n": 1}],
          "the view is intact after the injection rows", f"{st} {b[:300]!r}")
    check(not os.path.exists(os.path.join(TMP, "evil")) and
          not os.path.exists(os.path.join(TMP, "evil.db")), "the refused SQL created no files")

    # ---- protocol-level rows: raw bytes ------------------------------------------------------
    E = b'{"events":[{"type":"T","data":{}}]}'
    AUTH = b"Authorization: Bearer " + ADMIN.encode() + b"\r\n"

    def post(stream, hdrs, body, version=b"HTTP/1.1"):
        return (b"POST /streams/" + stream + b" " + version + b"\r\nHost: k\r\n" + AUTH +
                b"Content-Type: application/json\r\n" + hdrs + b"\r\n" + body)

    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(E), E)
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: k\r\n\r\n"
    proto = [
        # (case, bytes, allowed answer statuses in order ([] : closed without one), stream)
        ("smuggling: Content-Length and Transfer-Encoding with a request after the chunks",
         post(b"sm1", b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", chunked + smuggled),
         [[400]], b"sm1"),
        ("smuggling: two different Content-Lengths", post(
            b"sm2", b"Content-Length: %d\r\nContent-Length: 5\r\n" % len(E), E + smuggled),
         [[400]], b"sm2"),
        ("smuggling: Content-Length: 35, 35", post(b"sm3", b"Content-Length: %d, %d\r\n" % (
            len(E), len(E)), E + smuggled), [[400], [400, 400]], b"sm3"),
        ("smuggling: Content-Length: +35", post(b"sm4", b"Content-Length: +%d\r\n" % len(E), E),
         [[400], [400, 400]], b"sm4"),
        ("smuggling: Transfer-Encoding: xchunked", post(
            b"sm5", b"Transfer-Encoding: xchunked\r\n", E), [[], [400], [501]], b"sm5"),
        ("smuggling: Transfer-Encoding: chunked, identity", post(
            b"sm6", b"Transfer-Encoding: chunked, identity\r\n", chunked), [[], [400], [501]],
         b"sm6"),
        ("smuggling: a space before the colon of Transfer-Encoding", post(
            b"sm7", b"Transfer-Encoding : chunked\r\n", chunked + smuggled),
         [[400], [400, 400]], b"sm7"),
        ("smuggling: Transfer-Encoding in HTTP/1.0", post(
            b"sm8", b"Transfer-Encoding: chunked\r\n", chunked + smuggled, b"HTTP/1.0"), [[400]],
         b"sm8"),
        ("smuggling: a chunk size over 64 bits", post(
            b"sm9", b"Transfer-Encoding: chunked\r\n", b"FFFFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n"),
         [[400], [413]], b"sm9"),
        ("a header of 17 KB (--max-header 16 KiB)", b"GET /health HTTP/1.1\r\nHost: k\r\nX-Big: " +
         b"v" * 17000 + b"\r\n\r\n", [[431]], None),
        ("1,000 query arguments in a 7 KB URL", b"GET /log?" +
         b"&".join(b"a%d=1" % i for i in range(1000)) + b" HTTP/1.1\r\nHost: k\r\n\r\n",
         [[], [431]], None),
        ("two Host headers", b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", [[400]],
         None),
        ("a request line without a version", b"GET /health\r\n\r\n", [[400]], None),
        ("HTTP/2 preface to an HTTP/1.1 server", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
         [[505], [400]], None),
        ("header injection: a bare CR inside a header value",
         b"GET /health HTTP/1.1\r\nHost: k\r\nX-A: a\rSet-Cookie: x=1\r\n\r\n", [[200], [400]],
         None),
        ("header injection: a NUL inside a header value",
         b"GET /health HTTP/1.1\r\nHost: k\r\nX-A: a\x00b\r\n\r\n", [[200], [400]], None),
        ("header injection: an obsolete folded header",
         b"GET /health HTTP/1.1\r\nHost: k\r\nX-A: a\r\n Set-Cookie: x=1\r\n\r\n",
         [[200], [400]], None),
    ]
    for desc, data, allowed, stream in proto:
        h0 = head()
        statuses, out = raw(data)
        alive = srv.poll() is None
        h = head()
        why = []
        if statuses not in allowed:
            why.append(f"answers {statuses}, want one of {allowed}")
        if b"\r\nset-cookie" in out.lower():
            why.append("an injected Set-Cookie came back")
        if h != h0:
            why.append(f"the log head moved from {h0} to {h}")
        if stream is not None:
            st, _, b = request("GET", "/streams/" + stream.decode())
            evs = (jload(b) or {}).get("events")
            if evs != []:
                why.append(f"stream {stream!r} reads {str(evs)[:200]}")
        if not alive:
            why.append("the server died")
        if why:
            bad(desc, *why, f"answer: {out[:300]!r}")
        else:
            ok(f"{desc}: {statuses or 'closed'}")
        if not alive:
            break

    # ---- slowloris: a request trickling in is cut off at --request-timeout (3 s) ---------------
    s = socket.create_connection((HOST, PORT), timeout=10)
    t0 = time.monotonic()
    closed_at = None
    try:
        for ch in b"GET /health HTTP/1.1\r\nHost: k\r\nX-Slow: " + b"a" * 40:
            s.sendall(bytes([ch]))
            time.sleep(0.25)
            if time.monotonic() - t0 > 8:
                break
    except OSError:
        closed_at = time.monotonic() - t0
    if closed_at is None:
        try:
            s.settimeout(3)
            closed_at = time.monotonic() - t0 if s.recv(100) == b"" else None
        except OSError:
            closed_at = time.monotonic() - t0
    s.close()
    check(closed_at is not None and closed_at <= 7 and srv.poll() is None,
          "slowloris: a request sent a byte every 250 ms is closed within the request "
          "timeout (3 s)", f"closed after {closed_at}")

    # ---- 10,000 idle connections --------------------------------------------------------------
    socks, refused = [], 0
    t0 = time.monotonic()
    for i in range(n_idle):
        try:
            socks.append(socket.create_connection((HOST, PORT), timeout=5))
        except OSError:
            refused += 1
    opened = time.monotonic() - t0
    t1 = time.monotonic()
    try:
        st, _, _ = request("GET", "/health", timeout=10)
    except OSError as e:
        st = repr(e)
    latency = time.monotonic() - t1
    rss_idle = rss_kb(srv.pid)
    check(st == 200 and latency < 2 and refused == 0,
          f"{len(socks)} idle connections are held and the server still answers "
          f"(/health in {latency * 1000:.0f} ms)",
          f"/health {st}, {refused} connects failed, opened in {opened:.1f}s, "
          f"fd limit {fd_limit}")
    for x in socks:
        x.close()
    socks = []
    print(f"# {n_idle} idle connections opened in {opened:.1f}s; server RSS {rss_idle} kB "
          f"with them (before the matrix: {rss_before} kB)")

    rss_after = rss_kb(srv.pid)
    check(rss_after is not None and rss_before is not None and
          rss_after - rss_before < RSS_BOUND_KB,
          f"the server's memory is bounded: RSS {rss_before} kB before the matrix, "
          f"{rss_after} kB after (bound +{RSS_BOUND_KB // 1024} MiB)")
    check(srv.poll() is None and request("GET", "/health")[0] == 200 and head() == base_head,
          "after the matrix the server is alive and the log head is where it was",
          f"head {head()}, want {base_head}")
    srv.send_signal(signal.SIGTERM)
    try:
        rc = srv.wait(timeout=30)
    except Exception:
        rc = None
    check(rc == 0, "SIGTERM stops the server cleanly", f"exit {rc}")

    # ---- a server with --max-connections 64: the excess is refused, it stays responsive -----
    os.remove(os.path.join(TMP, "server.pid"))
    srv, up = ktap.start_server(KAPPA, TMP, PORT, [
        "--data", data_dir, "--views", views_dir, "--auth-file", auth,
        "--max-connections", "64", "--threads", "2"])
    held, dropped = [], 0
    for i in range(500):
        try:
            held.append(socket.create_connection((HOST, PORT), timeout=5))
        except OSError:
            dropped += 1
    time.sleep(0.5)
    closed = 0
    for x in held:
        x.setblocking(False)
        try:
            if x.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    alive = srv.poll() is None
    for x in held:
        x.close()
    answered = None
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        try:
            if request("GET", "/health", timeout=2)[0] == 200:
                answered = time.monotonic() - t0
                break
        except OSError:
            time.sleep(0.05)
    check(alive and closed + dropped >= 500 - 64 and answered is not None,
          "with --max-connections 64, 500 connections: the excess is closed at once and the "
          "server answers as soon as they go",
          f"closed {closed}, refused {dropped}, alive {alive}, /health after {answered}")
    srv.send_signal(signal.SIGTERM)
    try:
        rc = srv.wait(timeout=30)
    except Exception:
        rc = None
    check(rc == 0, "the second server stops cleanly", f"exit {rc}")
    print(f"# matrix: {rows} request rows, {len(proto)} protocol rows")
except Exception as e:  # report, then let the wrapper kill the server
    import traceback
    bad("the matrix ran to the end", traceback.format_exc())
finally:
    if srv.poll() is None:
        srv.kill()
finish()
