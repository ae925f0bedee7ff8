#!/usr/bin/env python3
"""report.py -- the report of bench/peers: the environment, the durability of each
configuration, one table of every measurement with the ratio kappa / that system at the
same workload, payload and client count, the issue's targets (met or not), then one JSON
object per figure per line (the house format of bench/).

Given several runs (the raw measurement files bench/peers/run.sh keeps with BENCH_OUT), it
reports the median of each figure over the runs, ratios taken within each run first.

usage: report.py [--markdown] RESULTS.jsonl [MORE.jsonl ...]
"""
import json
import statistics
import sys

DURABILITY = {
    "kappa": "durable: --fsync always, each append acknowledged after its group's fdatasync",
    "redis-always": "durable: appendonly yes, appendfsync always (AOF fsync before replies)",
    "redis-everysec": "NOT durable: appendfsync everysec (up to ~1 s of acknowledged writes lost on power loss)",
    "redis": "reads only (in memory; durability does not change reads)",
    "pg": "durable: synchronous_commit=on, fsync=on (commit after WAL flush)",
    "nats": "NOT durable: JetStream file store, default sync (acked when written to the OS; fsync only periodically)",
    "nats-sync": "durable: JetStream with sync_interval: always",
    "sqlite": "durable: WAL, synchronous=FULL (WAL synced at each commit); in-process, no network",
    "raw": "the physical limit: one pwrite of all clients' bytes + fdatasync per round (a perfect group commit)",
}
ORDER = ["kappa", "redis-always", "redis-everysec", "redis", "pg", "nats", "nats-sync", "sqlite", "raw"]
WORKLOADS = ["append", "batch", "retry", "read", "catchup", "fill"]
IDEMPOTENCE = {
    "kappa": "request_id (a retry answers 200 with the original positions, writes nothing)",
    "pg": "INSERT ... ON CONFLICT (request_id) DO NOTHING",
    "nats": "Nats-Msg-Id header (duplicate window 2 min)",
    "sqlite": "INSERT ... ON CONFLICT (request_id) DO NOTHING",
    "redis": "none: XADD * always appends; Redis Streams have no idempotent append",
}


def load(path):
    env, notes, rows = None, {}, []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            o = json.loads(line)
            if o.get("kind") == "env":
                env = o
            elif o.get("kind") == "note":
                if "failed" in o:
                    notes.setdefault("failed", []).append(o["failed"])
                else:
                    notes.update({k: v for k, v in o.items() if k != "kind"})
            else:
                rows.append(o)
    return env, notes, rows


def key(r):
    return (r["workload"], r["size"], r["clients"], r["config"])


def main():
    args = sys.argv[1:]
    markdown = False
    if args and args[0] == "--markdown":
        markdown, args = True, args[1:]
    if not args:
        sys.exit(__doc__)
    runs = [load(p) for p in args]
    env, notes = runs[0][0] or {}, runs[0][1]

    # Per run: each measurement, and the ratio of kappa to it (same workload, size, clients).
    vals = {}    # key -> {field: [values over runs]}
    ratios = {}  # key -> [kappa events/s / this events/s, per run]
    for _, _, rows in runs:
        by = {key(r): r for r in rows}
        for k, r in by.items():
            d = vals.setdefault(k, {})
            for f in ("ops_per_s", "events_per_s", "mb_per_s", "p50_us", "p99_us", "errors", "seconds"):
                d.setdefault(f, []).append(r[f])
            kk = (k[0], k[1], k[2], "kappa")
            if k[0] != "fill" and kk in by and r["events_per_s"] > 0:
                ratios.setdefault(k, []).append(by[kk]["events_per_s"] / r["events_per_s"])
    med = {k: {f: statistics.median(v) for f, v in d.items()} for k, d in vals.items()}
    rmed = {k: statistics.median(v) for k, v in ratios.items()}

    out = []
    p = out.append
    if markdown:
        p("| workload | payload | clients | system | events/s | MB/s | p50 µs | p99 µs | kappa ÷ system |")
        p("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    else:
        p("bench/peers: %s vCPU (%s), %s, data on %s (%s)" % (
            env.get("vcpus", "?"), env.get("cpu", "?"), env.get("kernel", "?"),
            env.get("fs", "?"), env.get("dir", "?")))
        p("  kappa %s, Redis %s (hiredis %s), PostgreSQL %s, nats-server %s (libnats %s), SQLite %s" % (
            env.get("kappa", "?"), env.get("redis", "?"), env.get("hiredis", "?"),
            env.get("postgresql", "?"), env.get("nats", "?"), env.get("libnats", "?"),
            env.get("sqlite", "?")))
        p("  %s s per measurement after %s s warm-up; batches of %s; %s events filled for reads and catch-up" % (
            env.get("seconds_per_measurement", "?"), env.get("warmup", "?"), env.get("batch", "?"),
            env.get("events", "?")))
        p("  runs: %d (%s); load average at start / end: %s; wall time: %s" % (
            len(runs), ", ".join((r[0] or {}).get("date", "?") for r in runs),
            ", ".join("%s / %s" % ((r[0] or {}).get("load", "?"), r[1].get("load_end", "?"))
                      for r in runs),
            ", ".join("%s s" % r[1].get("elapsed_s", "?") for r in runs)))
        for r in runs:
            for f in r[1].get("failed", []):
                p("  FAILED (no figure): %s" % f)
        if len(runs) > 1:
            p("  figures are medians over the runs; ratios are taken within each run, then the median")
        p("")
        p("durability of each configuration:")
        seen = sorted({k[3] for k in med}, key=lambda c: ORDER.index(c) if c in ORDER else 99)
        for c in seen:
            p("  %-15s %s" % (c, DURABILITY.get(c, "?")))
        if notes.get("nats_sync_always") == "no":
            p("  %-15s not run: this nats-server (%s) refuses `sync_interval` (unknown field; it came with"
              " 2.10), so it offers no per-message sync; `nats` above is the strictest it has" % (
                  "nats-sync", env.get("nats", "?")))
        p("idempotent retry (the same request again):")
        for c, how in IDEMPOTENCE.items():
            p("  %-15s %s" % (c, how))
        p("")
        p("%-8s %6s %7s  %-15s %12s %9s %9s %9s %8s" % (
            "workload", "bytes", "clients", "system", "events/s", "MB/s", "p50 us", "p99 us", "kappa/x"))

    def sort_key(k):
        w, size, clients, config = k
        return (WORKLOADS.index(w) if w in WORKLOADS else 99, size, clients,
                ORDER.index(config) if config in ORDER else 99)

    for k in sorted(med, key=sort_key):
        w, size, clients, config = k
        m = med[k]
        ratio = "" if config == "kappa" or k not in rmed else "%.2f" % rmed[k]
        err = "  (%d errors)" % m["errors"] if m["errors"] else ""
        if markdown:
            p("| %s | %d B | %d | %s | %s | %.1f | %s | %s | %s |" % (
                w, size, clients, "**kappa**" if config == "kappa" else config,
                "{:,.0f}".format(m["events_per_s"]), m["mb_per_s"],
                "{:,.0f}".format(m["p50_us"]), "{:,.0f}".format(m["p99_us"]), ratio))
        else:
            p("%-8s %6d %7d  %-15s %12s %9.1f %9s %9s %8s%s" % (
                w, size, clients, config, "{:,.0f}".format(m["events_per_s"]), m["mb_per_s"],
                "{:,.0f}".format(m["p50_us"]), "{:,.0f}".format(m["p99_us"]), ratio, err))
    p("")

    # ---- targets -----------------------------------------------------------------------
    targets = []  # (text, value, target, met)
    sizes = sorted({k[1] for k in med})
    clients = sorted({k[2] for k in med if k[0] == "append"})
    top = clients[-1] if clients else 64

    def r(w, size, c, config):
        return rmed.get((w, size, c, config))

    for size in sizes:
        for config, want in (("redis-always", 1.25), ("pg", 3.0)):
            x = r("append", size, top, config)
            if x is not None:
                targets.append(("durable appends/s, %d B, %d clients: kappa / %s" % (size, top, config), x, want, x >= want))
        for c in clients:
            kb = med.get(("batch", size, c, "kappa"))
            rb = med.get(("batch", size, c, "raw"))
            if kb and rb and rb["mb_per_s"] > 0:
                x = kb["mb_per_s"] / rb["mb_per_s"]
                targets.append(("batched MB/s, %d B, %d clients: kappa / raw fdatasync" % (size, c), x, 0.8, x >= 0.8))
        x = r("read", size, top, "redis")
        if x is not None:
            targets.append(("point reads/s, %d B, %d clients: kappa / Redis (within 2x)" % (size, top), x, 0.5, x >= 0.5))
        kc = med.get(("catchup", size, 1, "kappa"))
        if kc:
            targets.append(("catch-up of %s events, %d B: kappa events/s" % (env.get("events", "?"), size),
                            kc["events_per_s"], 1e6, kc["events_per_s"] >= 1e6))
    if markdown:
        p("| target | value | wanted | met? |")
        p("|---|---:|---:|---|")
        for text, x, want, ok in targets:
            fmt = "{:,.0f}" if want >= 1000 else "{:.2f}"
            p("| %s | %s | ≥ %s | %s |" % (text, fmt.format(x), fmt.format(want), "yes" if ok else "**no**"))
    else:
        p("targets:")
        for text, x, want, ok in targets:
            fmt = "{:,.0f}" if want >= 1000 else "{:.3f}"
            p("  %-66s %12s  target >= %-9s %s" % (text, fmt.format(x), fmt.format(want), "met" if ok else "NOT met"))
        p("")

        # ---- JSON figures ----------------------------------------------------------------
        def j(o):
            p(json.dumps(o, separators=(",", ":")))

        for k in sorted(med, key=sort_key):
            w, size, c, config = k
            m = med[k]
            base = {"bench": "peers", "system": config, "workload": w, "size": size, "clients": c}
            j(dict(base, metric="%s_events_per_s" % w, value=round(m["events_per_s"], 1), unit="events/s"))
            if w in ("batch", "catchup", "fill"):
                j(dict(base, metric="%s_mb_per_s" % w, value=round(m["mb_per_s"], 3), unit="MB/s"))
            j(dict(base, metric="%s_p50_us" % w, value=round(m["p50_us"], 1), unit="us"))
            j(dict(base, metric="%s_p99_us" % w, value=round(m["p99_us"], 1), unit="us"))
            if config != "kappa" and k in rmed:
                kv = med[(w, size, c, "kappa")]["events_per_s"]
                j({"bench": "peers", "system": "kappa", "workload": w, "size": size, "clients": c,
                   "metric": "%s_events_per_s_vs_%s" % (w, config), "value": round(kv, 1),
                   "unit": "events/s", "baseline": round(m["events_per_s"], 1), "ratio": round(rmed[k], 3)})
        for text, x, want, ok in targets:
            j({"bench": "peers", "metric": "target: " + text, "value": round(x, 3), "unit": "ratio" if want < 1000 else "events/s",
               "target": want, "met": ok})
    print("\n".join(out))


if __name__ == "__main__":
    main()
