#!/usr/bin/env python3
"""Checks that the DuckDB peer did the same job as the product (bench/run.sh, step 5).

    .venv/bin/python bench/compare.py --year 2024 PRODUCT_WAREHOUSE PRODUCT_QUARANTINE \
        DUCKDB_WAREHOUSE DUCKDB_QUARANTINE [--tolerance 1e-9] [--markdown FILE]

Every published table is joined on its unit key and every column the two sides share is
compared: floats to an absolute tolerance (default 1e-9 on the 0-100 index scale; relative
tol/100 for values above 100 such as population_estimate), integers,
booleans and strings exactly, NULLs in the same places. The quarantine is compared by reason
counts per file (its line numbers and raw text are only approximated by the peer). Prints the
headline figures side by side and a table of differences; exit status 1 when anything differs
beyond tolerance.
"""

from __future__ import annotations

import argparse
import math
import sys

import duckdb

TABLES = {
    "institution_index": (["institution_code"], "institution_index/year={y}/*.parquet", {}),
    "district_index": (["district_code"], "district_index/year={y}/*/*.parquet",
                       {"province_code": "VARCHAR"}),
    "province_index": (["province_code"], "province_index/year={y}/*.parquet", {}),
    "national_index": (["country_code"], "national_index/year={y}/*.parquet", {}),
    "behaviour_scores": (["level", "unit_code", "behaviour_code"],
                         "behaviour_scores/year={y}/*/*.parquet", {"level": "VARCHAR"}),
}
# Columns the peer writes as NULL on purpose (no previous year in a benchmark warehouse).
SKIP = {"prev_index_overall", "delta_index_overall", "prev_inst_mean_overall",
        "delta_inst_mean_overall"}


def read(con, base, pattern, y, hive_types):
    types = {"year": "INTEGER", **hive_types}
    ht = "{" + ", ".join(f"'{k}': {v}" for k, v in types.items()) + "}"
    return f"read_parquet('{base}/{pattern.format(y=y)}', hive_partitioning = true, hive_types = {ht})"


def compare_table(con, name, keys, a_src, b_src, tol):
    a_cols = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {a_src}").fetchall()}
    b_cols = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {b_src}").fetchall()}
    common = [c for c in a_cols if c in b_cols and c not in keys and c not in SKIP]
    missing = [c for c in a_cols if c not in b_cols and c not in SKIP]
    on = " AND ".join(f"a.{k} IS NOT DISTINCT FROM b.{k}" for k in keys)
    n_a = con.execute(f"SELECT count(*) FROM {a_src}").fetchone()[0]
    n_b = con.execute(f"SELECT count(*) FROM {b_src}").fetchone()[0]
    only = con.execute(f"""
        SELECT count(*) FILTER (WHERE a_present AND NOT b_present),
               count(*) FILTER (WHERE b_present AND NOT a_present)
        FROM (SELECT a.{keys[0]} IS NOT NULL AS a_present, b.{keys[0]} IS NOT NULL AS b_present
              FROM (SELECT * FROM {a_src}) a FULL JOIN (SELECT * FROM {b_src}) b ON {on})
    """).fetchone()
    problems = []
    worst = 0.0
    keyx = " || '/' || ".join(f"a.{k}" for k in keys)
    for c in common:
        t = a_cols[c]
        # tol is absolute on the 0-100 index scale; quantities on larger scales
        # (population_estimate, in persons) get the same relative precision.
        lim = f"{tol} * greatest(1.0, abs(a.{c}) / 100.0)"
        if t in ("DOUBLE", "FLOAT"):
            r = con.execute(f"""
                SELECT count(*) FILTER (WHERE (a.{c} IS NULL) <> (b.{c} IS NULL)
                                        OR abs(a.{c} - b.{c}) > {lim}),
                       max(abs(a.{c} - b.{c})),
                       any_value({keyx})
                           FILTER (WHERE (a.{c} IS NULL) <> (b.{c} IS NULL)
                                   OR abs(a.{c} - b.{c}) > {lim})
                FROM (SELECT * FROM {a_src}) a JOIN (SELECT * FROM {b_src}) b ON {on}
            """).fetchone()
            bad, mx, example = r
            if mx is not None and not math.isnan(mx):
                worst = max(worst, mx)
        else:
            bad, mx, example = con.execute(f"""
                SELECT count(*) FILTER (WHERE a.{c} IS DISTINCT FROM b.{c}::{t}), NULL,
                       any_value({keyx})
                           FILTER (WHERE a.{c} IS DISTINCT FROM b.{c}::{t})
                FROM (SELECT * FROM {a_src}) a JOIN (SELECT * FROM {b_src}) b ON {on}
            """).fetchone()
        if bad:
            problems.append(f"{c}: {bad} row(s) differ (max |diff| {mx}, e.g. {example})")
    if only[0] or only[1]:
        problems.append(f"rows only in product: {only[0]}, only in DuckDB: {only[1]}")
    if missing:
        problems.append(f"columns missing in DuckDB output: {', '.join(missing)}")
    return {"table": name, "rows": (n_a, n_b), "columns": len(common), "worst": worst,
            "problems": problems}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--year", type=int, default=2024)
    ap.add_argument("--tolerance", type=float, default=1e-9)
    ap.add_argument("--markdown", help="also write the comparison as markdown to this file")
    ap.add_argument("product_warehouse")
    ap.add_argument("product_quarantine")
    ap.add_argument("duckdb_warehouse")
    ap.add_argument("duckdb_quarantine")
    a = ap.parse_args()
    y, tol = a.year, a.tolerance
    con = duckdb.connect()
    out: list[str] = []
    failed = False

    def p(line=""):
        out.append(line)

    nat = {}
    for side, wh in (("product", a.product_warehouse), ("duckdb", a.duckdb_warehouse)):
        nat[side] = con.execute(f"""
            SELECT inst_mean_overall, index_overall, se_overall, n_respondents,
                   n_institutions_seated
            FROM {read(con, wh, TABLES['national_index'][1], y, {})}
        """).fetchone()
    p(f"Output check, product vs DuckDB (year {y}, tolerance {tol:g} on the 0-100 scale)")
    p()
    p("| national | product | DuckDB | |diff| |")
    p("|---|---:|---:|---:|")
    for i, label in enumerate(["inst_mean_overall (published national index)",
                               "index_overall (weighted)", "se_overall", "n_respondents",
                               "n_institutions_seated"]):
        x, z = nat["product"][i], nat["duckdb"][i]
        d = abs(x - z) if x is not None and z is not None else None
        p(f"| {label} | {x!r} | {z!r} | {d if d is not None else '-'} |")
    p()
    sample = con.execute(f"""
        SELECT a.institution_code, a.n_respondents, a.eligible, a.index_overall, b.index_overall,
               a.se_overall, b.se_overall
        FROM {read(con, a.product_warehouse, TABLES['institution_index'][1], y, {})} a
        JOIN {read(con, a.duckdb_warehouse, TABLES['institution_index'][1], y, {})} b
          USING (institution_code)
        WHERE a.index_overall IS NOT NULL
        ORDER BY hash(a.institution_code) LIMIT 8
    """).fetchall()
    p("| institution (sample) | n | eligible | index product | index DuckDB | se product | se DuckDB |")
    p("|---|---:|---|---:|---:|---:|---:|")
    for r in sample:
        p(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.12f} | {r[4]:.12f} | {r[5]:.12f} | {r[6]:.12f} |")
    p()
    p("| table | rows product / DuckDB | columns compared | max abs diff | result |")
    p("|---|---|---:|---:|---|")
    for name, (keys, pattern, ht) in TABLES.items():
        res = compare_table(con, name, keys, read(con, a.product_warehouse, pattern, y, ht),
                            read(con, a.duckdb_warehouse, pattern, y, ht), tol)
        ok = not res["problems"]
        failed |= not ok
        p(f"| {name} | {res['rows'][0]} / {res['rows'][1]} | {res['columns']} | "
          f"{res['worst']:.3g} | {'same' if ok else 'DIFFERENT: ' + '; '.join(res['problems'])} |")
    qa = f"read_parquet('{a.product_quarantine}/year={y}/*.parquet')"
    qb = f"read_parquet('{a.duckdb_quarantine}/year={y}/*.parquet')"
    diff = con.execute(f"""
        SELECT coalesce(a.source_file, b.source_file), coalesce(a.reason, b.reason),
               coalesce(a.n, 0), coalesce(b.n, 0)
        FROM (SELECT source_file, reason, count(*) AS n FROM {qa} GROUP BY ALL) a
        FULL JOIN (SELECT source_file, reason, count(*) AS n FROM {qb} GROUP BY ALL) b
          USING (source_file, reason)
        WHERE a.n IS DISTINCT FROM b.n ORDER BY 1, 2
    """).fetchall()
    totals = con.execute(f"""
        SELECT reason, a.n, b.n FROM (SELECT reason, count(*) AS n FROM {qa} GROUP BY ALL) a
        FULL JOIN (SELECT reason, count(*) AS n FROM {qb} GROUP BY ALL) b USING (reason)
        ORDER BY reason
    """).fetchall()
    p(f"| quarantine (reason counts per file) | {sum(t[1] or 0 for t in totals)} / "
      f"{sum(t[2] or 0 for t in totals)} | - | - | "
      + ("same" if not diff else "DIFFERENT: " + "; ".join(
          f"{d[0]} {d[1]} {d[2]} vs {d[3]}" for d in diff[:10])) + " |")
    failed |= bool(diff)
    p()
    p("Quarantine by reason (product / DuckDB): " + ", ".join(
        f"{r} {x or 0}/{z or 0}" for r, x, z in totals))
    p()
    p("RESULT: " + ("outputs agree" if not failed else "OUTPUTS DIFFER"))
    text = "\n".join(out)
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
