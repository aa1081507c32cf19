#!/usr/bin/env python3
"""Print the medians of the last `cargo bench -p chill-benches --bench schedule` run as a
Markdown table: one row per operation and case, one column per library, and how many times
faster chill-core is than each peer.

Usage: python3 benches/report.py [CRITERION_DIR]
CRITERION_DIR defaults to $CARGO_TARGET_DIR/criterion, else target/criterion of the workspace.
"""

import json
import os
import sys
from pathlib import Path

# The order of `chill_benches::CASES`; other cases follow by name.
CASES = ["every_5_min_utc", "weekdays_9am_utc", "feb_29_utc", "daily_0230_new_york"]


def fmt(ns):
    if ns is None:
        return "n/a"
    if ns >= 1000:
        return f"{ns / 1000:.2f} µs"
    return f"{ns:.1f} ns"


def ratio(peer, ours):
    if peer is None or ours is None:
        return "n/a"
    return f"{peer / ours:.1f}×"


def main():
    if len(sys.argv) > 1:
        root = Path(sys.argv[1])
    elif os.environ.get("CARGO_TARGET_DIR"):
        root = Path(os.environ["CARGO_TARGET_DIR"]) / "criterion"
    else:
        root = Path(__file__).resolve().parent.parent / "target" / "criterion"
    medians = {}  # (op, case) -> {lib: ns}
    order = []
    for bench in sorted(root.glob("*/*/new/benchmark.json")):
        meta = json.loads(bench.read_text())
        op, _, case = meta["group_id"].partition("/")
        if op not in ("parse", "next_after"):
            continue
        estimates = json.loads((bench.parent / "estimates.json").read_text())
        key = (op, case)
        if key not in medians:
            medians[key] = {}
            order.append(key)
        medians[key][meta["function_id"]] = estimates["median"]["point_estimate"]
    if not medians:
        sys.exit(f"no criterion results under {root}")
    # parse first, then next_after; cases in the order the benchmark defines them.
    order.sort(key=lambda k: (k[0] != "parse", CASES.index(k[1]) if k[1] in CASES else 99, k[1]))
    print("| operation | case | chill-core | cron 0.17 | croner 4 | croner ÷ chill | cron ÷ chill |")
    print("|---|---|---|---|---|---|---|")
    for op, case in order:
        m = medians[(op, case)]
        ours = m.get("chill-core")
        print(
            f"| {op} | {case} | {fmt(ours)} | {fmt(m.get('cron'))} | {fmt(m.get('croner'))} "
            f"| {ratio(m.get('croner'), ours)} | {ratio(m.get('cron'), ours)} |"
        )


if __name__ == "__main__":
    main()
