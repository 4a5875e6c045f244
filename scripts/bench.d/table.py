#!/usr/bin/env python3
"""Turns scripts/bench's results (one TSV line per measured row) into the
Markdown table: system, median, min, max and the ratio of the median to the
baseline measured in the same run.

Input columns: workload, system, unit, baseline-system (empty: none),
comma-separated values (empty: not measured), note.
"""
import statistics
import sys


def fmt(v, unit):
    if v is None:
        return "—"
    if unit == "s":
        if v < 0.01:
            return f"{v * 1000:.2f} ms"
        if v < 1:
            return f"{v * 1000:.0f} ms"
        return f"{v:.2f} s"
    if unit == "MiB":
        return f"{v:.1f} MiB" if v < 100 else f"{v:.0f} MiB"
    return f"{v:g} {unit}"


def main(path):
    rows = []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line:
            continue
        wl, system, unit, base, values, note = (line.split("\t") + [""] * 6)[:6]
        vals = [float(x) for x in values.split(",") if x != ""]
        rows.append((wl, system, unit, base, vals, note))
    med = {}
    for wl, system, unit, base, vals, note in rows:
        if vals:
            med[(wl, system)] = statistics.median(vals)
    # Group by workload, in the order workloads first appear; keep the
    # order of systems within each.
    # A workload first seen late (no native row) goes right after the
    # workload of the row recorded before it.
    order, last = [], None
    for r in rows:
        wl = r[0]
        if wl not in order:
            order.insert(order.index(last) + 1 if last in order else len(order), wl)
        last = wl
    rank = {wl: i for i, wl in enumerate(order)}
    rows.sort(key=lambda r: rank[r[0]])
    print("| workload | system | median | min | max | × baseline | n | notes |")
    print("|---|---|---|---|---|---|---|---|")
    for wl, system, unit, base, vals, note in rows:
        if vals:
            m = statistics.median(vals)
            lo, hi = min(vals), max(vals)
            ratio = "—"
            if base and (wl, base) in med and med[(wl, base)] > 0:
                ratio = f"{m / med[(wl, base)]:.2f}×"
            cells = [fmt(m, unit), fmt(lo, unit), fmt(hi, unit), ratio, str(len(vals))]
        else:
            cells = ["—", "—", "—", "—", "0"]
        print(f"| {wl} | {system} | " + " | ".join(cells) + f" | {note} |")


if __name__ == "__main__":
    main(sys.argv[1])
