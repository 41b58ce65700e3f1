#!/usr/bin/env python3
"""Writes the markdown report of bench/run.sh from BENCH_DIR/runs.tsv and BENCH_DIR/meta.txt.

    .venv/bin/python bench/report.py BENCH_DIR
"""

from __future__ import annotations

import json
import os
import statistics
import sys

LABELS = {
    "product": "berakhlak aggregate",
    "duckdb": "DuckDB job (bench/duckdb_job.py)",
    "cat": "floor: `cat` dumps > /dev/null",
    "wc_l": "floor: `wc -l` dumps",
}


def main() -> int:
    bench_dir = sys.argv[1]
    meta: dict[str, str] = {}
    with open(os.path.join(bench_dir, "meta.txt")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            meta[k] = v
    runs: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    with open(os.path.join(bench_dir, "runs.tsv")) as f:
        for line in f:
            size, tag, _run, wall, user, sys_, rss = line.rstrip("\n").split("\t")
            runs.setdefault((size, tag), []).append(
                (float(wall), float(user) + float(sys_), int(rss)))

    out = []
    p = out.append
    p("# berakhlak benchmark results")
    p("")
    p(f"Run {meta['date']} by `make bench` (bench/run.sh); median of {meta['runs']} run(s) per "
      "tool, tools alternating, warm page cache, outputs written to fresh directories.")
    p("")
    p("| machine | |")
    p("|---|---|")
    p(f"| CPU | {meta['cpu']}, {meta['nproc']} logical cores (nproc) |")
    p(f"| memory | {meta['memory']} |")
    p(f"| kernel | {meta['kernel']} |")
    p(f"| product | {meta['product']} |")
    p(f"| DuckDB | {meta['duckdb']} (Python {meta['python']}), default threads and memory limit |")
    p("")
    for size in meta["sizes"].split():
        if (size, "product") not in runs:
            continue
        records = int(meta.get(f"records_{size}", "0"))
        mbytes = int(meta[f"bytes_{size}"]) / 1e6
        p(f"## {int(size):,} respondents")
        p("")
        p(f"Input: {records:,} records in {meta[f'files_{size}']} CSV dumps, {mbytes:,.1f} MB "
          f"(MB = 10^6 bytes). Load average before the runs: {meta.get(f'loadavg_{size}', '?')}.")
        p("")
        p("| | wall s (median) | wall min-max | CPU s user+sys | max RSS MiB | records/s | MB/s |")
        p("|---|---:|---:|---:|---:|---:|---:|")
        med = {}
        for tag in ("product", "duckdb", "cat", "wc_l"):
            rs = runs.get((size, tag))
            if not rs:
                continue
            wall = statistics.median(r[0] for r in rs)
            cpu = statistics.median(r[1] for r in rs)
            rss = statistics.median(r[2] for r in rs) / 1024
            med[tag] = (wall, cpu, rss)
            p(f"| {LABELS[tag]} | {wall:.2f} | {min(r[0] for r in rs):.2f}-"
              f"{max(r[0] for r in rs):.2f} | {cpu:.2f} | {rss:,.0f} | "
              f"{records / wall:,.0f} | {mbytes / wall:,.0f} |")
        if "product" in med and "duckdb" in med:
            pw, pc, pr = med["product"]
            dw, dc, dr = med["duckdb"]
            p(f"| **product / DuckDB** | **{pw / dw:.2f}** | | {pc / dc:.2f} | **{pr / dr:.2f}** | | |")
        p("")
        phases = os.path.join(bench_dir, f"out-{size}", "duckdb-phases.json")
        if os.path.exists(phases):
            with open(phases) as f:
                ph = json.load(f)
            p("DuckDB job phases (last run, seconds inside the script): " + ", ".join(
                f"{k} {v:.2f}" for k, v in ph.items() if k not in ("total", "records_read"))
              + f"; total {ph['total']:.2f} (the rest of the wall time is Python and DuckDB "
              "start-up).")
            p("")
        cmp_md = os.path.join(bench_dir, f"out-{size}", "compare.md")
        if os.path.exists(cmp_md):
            with open(cmp_md) as f:
                p(f.read().rstrip("\n"))
            p("")
        p("Commands:")
        p("")
        p("```sh")
        p(meta[f"generate_{size}"])
        p(meta[f"product_cmd_{size}"])
        p(meta[f"duckdb_cmd_{size}"])
        p("```")
        p("")
    p(f"Reproduce: `make bench` (or `BENCH_SIZES=\"{meta['sizes']}\" BENCH_RUNS={meta['runs']} "
      "bench/run.sh` after `make build venv`); raw timings are in `$BENCH_DIR/runs.tsv`.")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
