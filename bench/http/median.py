#!/usr/bin/env python3
"""median.py -- medians over several runs of bench/http/run.sh: reads their outputs (files
or stdin), keeps the JSON lines of bench "http", and prints, per metric and concurrency,
the median value, baseline and ratio (ratios are medians of the per-run ratios, each taken
within its own run) and every run's value, as one JSON object per line.

A figure measured while other processes used more than --max-other percent of the machine
(its "other_cpu_pct", see run.sh) is left out; "runs" counts the figures kept and
"dropped" those left out.

usage: for i in 1 2 3; do bench/http/run.sh >run$i.txt; done
       bench/http/median.py [--max-other PCT] run*.txt      (PCT: 5 by default)
"""
import argparse
import json
import statistics
import sys


def main():
    ap = argparse.ArgumentParser(description="medians over runs of bench/http/run.sh")
    ap.add_argument("--max-other", type=float, default=5.0)
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    lines = []
    for name in a.files or ["-"]:
        with (sys.stdin if name == "-" else open(name)) as fh:
            lines += fh.read().splitlines()
    by, dropped = {}, {}
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("bench") != "http":
            continue
        key = (o["metric"], o.get("connections"))
        by.setdefault(key, [])
        if o.get("other_cpu_pct", 0) > a.max_other:
            dropped[key] = dropped.get(key, 0) + 1
            continue
        by[key].append(o)
    for (metric, conns), runs in by.items():
        out = {"bench": "http", "metric": metric, "connections": conns, "runs": len(runs),
               "dropped": dropped.get((metric, conns), 0)}
        for k in ("value", "baseline", "ratio"):
            xs = [r[k] for r in runs if k in r]
            if xs:
                out[k] = round(statistics.median(xs), 3)
        if runs:
            out["unit"] = runs[0].get("unit")
            if "target" in runs[0]:
                out["target"] = runs[0]["target"]
        out["values"] = [r["value"] for r in runs]
        print(json.dumps(out))


if __name__ == "__main__":
    main()
