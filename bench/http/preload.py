#!/usr/bin/env python3
"""preload.py -- fill a kappa server for the query benchmark of bench/http: one append of
EVENTS Tick events to each of the streams s-1 .. s-STREAMS, over keep-alive connections
from a few threads. Exits non-zero unless every append answered 201.

usage: preload.py HOST:PORT STREAMS EVENTS [THREADS]
"""
import http.client
import json
import sys
import threading


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    host, port = sys.argv[1].rsplit(":", 1)
    streams, events = int(sys.argv[2]), int(sys.argv[3])
    nthreads = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    body = json.dumps({"events": [{"type": "Tick", "data": {"n": j + 1}} for j in range(events)]})
    headers = {"Content-Type": "application/json"}
    bad = []

    def worker(t):
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        for k in range(t + 1, streams + 1, nthreads):
            conn.request("POST", "/streams/s-%d" % k, body, headers)
            r = conn.getresponse()
            r.read()
            if r.status != 201:
                bad.append((k, r.status))
        conn.close()

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if bad:
        sys.exit("preload: %d appends failed, first: stream s-%d status %d" % (len(bad), *bad[0]))


if __name__ == "__main__":
    main()
