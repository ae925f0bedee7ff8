#!/usr/bin/env python3
"""median.py -- medians over several runs of bench/http/run.sh: reads their outputs (files
or stdin), keeps the JSON lines of bench "http", and prints, per metric and concurrency,
the median value, baseline and ratio (ratios are medians of the per-run ratios, each taken
within its own run) and every run's value, as one JSON object per line.

usage: for i in 1 2 3; do bench/http/run.sh >run$i.txt; done; bench/http/median.py run*.txt
"""
import fileinput
import json
import statistics

by = {}
for line in fileinput.input():
    line = line.strip()
    if not line.startswith("{"):
        continue
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if o.get("bench") != "http":
        continue
    by.setdefault((o["metric"], o.get("connections")), []).append(o)

for (metric, conns), runs in by.items():
    out = {"bench": "http", "metric": metric, "connections": conns, "runs": len(runs)}
    for k in ("value", "baseline", "ratio"):
        xs = [r[k] for r in runs if k in r]
        if xs:
            out[k] = round(statistics.median(xs), 3)
    out["unit"] = runs[0].get("unit")
    if "target" in runs[0]:
        out["target"] = runs[0]["target"]
    out["values"] = [r["value"] for r in runs]
    print(json.dumps(out))
