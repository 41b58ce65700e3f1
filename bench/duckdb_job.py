#!/usr/bin/env python3
"""The DuckDB peer of `berakhlak aggregate` (SPEC 8): the same nightly job written the way a
DuckDB practitioner would write it, used by bench/run.sh as the reference for speed and memory
and, on the same generated data, as an independent check of the product's numbers.

    .venv/bin/python bench/duckdb_job.py --year 2024 [--config config/berakhlak.toml]
        [--regions F] [--master F] [--input DIR] [--warehouse DIR] [--quarantine DIR]
        [--threads N] [--quiet] [--timings FILE]

What it does, all of it in SQL through the duckdb Python package (Python only discovers the
files, sniffs each CSV header and strings the SQL together):

 1. read every *.csv / *.csv.gz under the input directory, in bytewise order of relative path,
    with read_csv (all VARCHAR, the delimiter detected from the header line the way the product
    does: the most frequent of , ; TAB outside quotes; header names trimmed and
    case-insensitive; RFC 4180 quoting, quoted newlines, BOM, CRLF), each file into its own
    table (files read concurrently), unioned with an explicit input-order key;
 2. validate every record per SPEC 3 (votes instrument) with one CASE cascade in precedence
    order, joining the master and the regions;
 3. deduplicate with window functions (latest submitted_at, then greatest response_id, then
    first in input order; then the first response_id in input order);
 4. score (votes: y = picked, x = any of the value's three behaviours, s = mean of the 7 x)
    into integer sums per (institution, work district);
 5. estimate institutions (Slovin eligibility, se with fpc, suppression), districts, provinces
    and the nation (design weights, Taylor-linearised stratified se of SPEC 5.2, headline
    means), ranks with RANK() on the index rounded to 2 decimals, categories;
 6. apply the quality gate, then write institution_index, district_index (partitioned by
    province_code), province_index, national_index, behaviour_scores (partitioned by level) and
    the quarantine with COPY ... (FORMAT parquet, PARTITION_BY ..., COMPRESSION zstd) into a
    staging directory, fsync them and rename each table's year partition into place.

Deliberate differences from the product, none of which the generated benchmark data exercises
except where said:
 * Malformed rows and encoding errors are found by DuckDB's own reader (store_rejects: wrong
   field count, text after a closing quote, invalid UTF-8), not by a hand-written RFC 4180
   splitter. DuckDB accepts a quote inside an unquoted field (`Laki"laki`) literally, so a record
   with a `"` in any value is counted as malformed_row here; a properly escaped `""` inside a
   quoted field would be misclassified the same way (the generator never writes one).
 * Quarantine line_number and raw are approximate: for reader rejects they are DuckDB's `line`
   and `csv_line` (its line count drifts from the physical line after blank lines and quoted
   newlines); for other rejected records line_number is the record's ordinal in its file + 1
   (the physical line only when no blank line or multi-line field comes before it) and raw is
   rebuilt from the parsed fields (joined with the file's delimiter, original quoting lost).
   The records quarantined and their reasons are the product's.
 * JSON Lines dumps and the likert instrument are not implemented (the benchmark uses CSV and
   votes); the run stops with exit 2 if it meets either.
 * Year-on-year: prev_* / delta_* columns are written as NULL (the benchmark warehouse never
   holds a previous year), and no manifest or _SUCCESS run-id files are written.
 * Whitespace trimming uses the Unicode White_Space set like Rust's str::trim; upper-casing is
   DuckDB's upper() (simple case mapping; Rust's to_uppercase is full case mapping).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import datetime as dt
import gzip
import io
import json
import os
import re
import shutil
import sys
import time
import tomllib
import uuid

import duckdb

BEHAVIOURS = [f"{v}{i}" for v in ("BP", "AK", "KO", "HA", "LO", "AD", "KL") for i in (1, 2, 3)]
VALUES = ["bp", "ak", "ko", "ha", "lo", "ad", "kl"]
FIELDS = [
    "response_id", "respondent_key", "submitted_at", "survey_year", "institution_code",
    "work_district_code", "work_province_code", "duration_seconds", "gender", "age_band",
    "employment_type", "position_type", "current_culture",
]
REQUIRED = ["response_id", "respondent_key", "submitted_at", "survey_year", "institution_code",
            "work_district_code", "current_culture"]
# Unicode White_Space, the set Rust's str::trim removes, as trim() characters and as a RE2 class.
WS = ("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
      "\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
WS_CLASS = (r"[\t\n\x0b\x0c\r \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}"
            r"\x{205f}\x{3000}]")


class UsageError(Exception):
    """Bad usage, configuration, reference data or dump header: exit 2."""


def q(s: str) -> str:
    """SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def dbl(x: float) -> str:
    """An exact DOUBLE literal (plain numeric literals are DECIMAL in DuckDB)."""
    return f"CAST({q(repr(float(x)))} AS DOUBLE)"


def log(args, msg: str) -> None:
    if not args.quiet:
        print(f"duckdb_job: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Configuration and input discovery
# --------------------------------------------------------------------------------------------

def load_config(args) -> dict:
    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    paths = cfg.get("paths", {})
    survey = cfg.get("survey", {})
    est = cfg.get("estimation", {})
    pub = cfg.get("publish", {})
    y = str(args.year)

    def path(flag, key, default):
        v = flag if flag is not None else paths.get(key, default)
        return v.replace("{year}", y)

    instrument = survey.get("instrument_by_year", {}).get(y, survey.get("instrument", "votes"))
    if instrument != "votes":
        raise UsageError(f"instrument {instrument!r}: this DuckDB peer implements votes only")
    off = survey.get("default_utc_offset", "+07:00")
    if len(off) != 6 or off[0] not in "+-" or off[3] != ":":
        raise UsageError(f"survey.default_utc_offset {off!r}")
    off_secs = (int(off[1:3]) * 3600 + int(off[4:6]) * 60) * (1 if off[0] == "+" else -1)
    return {
        "regions": path(args.regions, "regions", "config/reference/regions.csv"),
        "master": path(args.master, "master", "data-samples/{year}/institutions.csv"),
        "input": path(args.input, "input", "data-samples/{year}/raw"),
        "warehouse": path(args.warehouse, "warehouse", "warehouse"),
        "quarantine": path(args.quarantine, "quarantine", "quarantine"),
        "max_picks": int(survey.get("max_picks", 10)),
        "distractors": list(survey.get("distractors", [f"X{i:02d}" for i in range(1, 25)])),
        "offset_secs": off_secs,
        "min_duration": int(survey.get("min_duration_seconds", 60)),
        "moe": float(est.get("margin_of_error", 0.05)),
        "min_floor": int(est.get("min_floor", 30)),
        "suppress": int(est.get("suppression_min_n", 10)),
        "max_ratio": float(pub.get("max_quarantine_ratio", 0.10)),
        "compression": str(pub.get("compression", "zstd")),
    }


def discover(input_dir: str) -> list[str]:
    """Relative paths of the dumps, in bytewise order."""
    found = []
    for root, _dirs, files in os.walk(input_dir):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), input_dir)
            found.append(rel)
    found.sort(key=lambda p: p.encode())
    dumps = [p for p in found if p.endswith((".csv", ".csv.gz"))]
    if any(p.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")) for p in found):
        raise UsageError("JSON Lines dumps are not implemented by the DuckDB peer")
    if not dumps:
        raise UsageError(f"no input file under {input_dir}")
    return dumps


def sniff_header(path: str) -> tuple[str, list[str]]:
    """Delimiter and trimmed lower-case column names, as the product detects them."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        first = True
        while True:
            line = f.readline()
            if not line:
                raise UsageError(f"{path}: no header line")
            if first and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            first = False
            if line.strip():
                break
    counts = {",": 0, ";": 0, "\t": 0}
    quoted = False
    for ch in line.decode("utf-8", "replace"):
        if ch == '"':
            quoted = not quoted
        elif ch in counts and not quoted:
            counts[ch] += 1
    delim = ","
    for c in (";", "\t"):
        if counts[c] > counts[delim]:
            delim = c
    text = line.decode("utf-8", "replace").rstrip("\r\n")
    names = next(csv.reader(io.StringIO(text), delimiter=delim))
    return delim, [n.strip(WS).lower() for n in names]


# --------------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------------

def stage(con, args, cfg, dumps) -> list[dict]:
    """Step 1: every dump into its own table stage_<fid> (rowid = order within the file), read
    concurrently, one file per DuckDB thread; view `stage` unions them with `ord`, the input
    order (file in bytewise path order, then position in the file)."""
    files = []
    for fid, rel in enumerate(dumps):
        path = os.path.join(cfg["input"], rel)
        delim, names = sniff_header(path)
        # Header names are matched trimmed and case-insensitively; the first of a repeated name
        # wins; unknown columns are read under placeholder names and dropped.
        colmap, seen = {}, set()
        for i, n in enumerate(names):
            if n in FIELDS and n not in seen:
                colmap[f"c{i}"] = n
                seen.add(n)
        missing = [f for f in REQUIRED if f not in seen]
        if missing:
            raise UsageError(f"{path}: header lacks required column(s) {', '.join(missing)}")
        files.append({"fid": fid, "rel": rel, "path": path, "delim": delim, "names": names,
                      "colmap": colmap, "order": [colmap.get(f"c{i}") for i in range(len(names))],
                      "bytes": os.path.getsize(path)})

    def load(f: dict) -> int:
        # A fresh table per file: appending to a non-empty table is ~2.5x slower in DuckDB
        # 1.4, and a single read_csv cannot take a different delimiter per file.
        # store_rejects (not ignore_errors) keeps the records the reader rejects; it is also the
        # only safe choice: in DuckDB 1.4.4 ignore_errors = true silently drops every record
        # after a field with text after its closing quote (e.g. `"P"x`).
        cur = con.cursor()
        fid = f["fid"]
        columns = "{" + ", ".join(
            f"{q('c' + str(i))}: 'VARCHAR'" for i in range(len(f["names"]))) + "}"
        select = ", ".join(
            f"{next((c for c, f2 in f['colmap'].items() if f2 == fld), 'NULL::VARCHAR')} AS {fld}"
            for fld in FIELDS)
        cur.execute(f"""
            CREATE TABLE stage_{fid} AS
            SELECT {select}
            FROM read_csv({q(f['path'])}, columns = {columns}, header = true,
                          delim = {q(f['delim'])}, quote = '"', escape = '"',
                          auto_detect = false, strict_mode = true, null_padding = false,
                          store_rejects = true, rejects_scan = 'rej_scan_{fid}',
                          rejects_table = 'rej_err_{fid}')
        """)
        # the reject tables are temporary, i.e. private to this cursor: copy them out
        cur.execute(f"""
            CREATE TABLE rejected_{fid} AS
            SELECT {fid} AS fid, line, error_type::VARCHAR AS error_type, csv_line
            FROM rej_err_{fid}
        """)
        n = cur.execute(f"SELECT count(*) FROM stage_{fid}").fetchone()[0]
        cur.close()
        return n

    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, int(threads))) as pool:
        counts = list(pool.map(load, files))
    first_ord = 0
    for f, n in zip(files, counts):
        f["first_ord"] = first_ord
        first_ord += n
    con.execute("CREATE VIEW stage AS " + " UNION ALL ".join(
        f"SELECT {f['fid']} AS fid, rowid + {f['first_ord']} AS ord, {', '.join(FIELDS)} "
        f"FROM stage_{f['fid']}" for f in files))
    # Records DuckDB's reader rejected: one row per record, blank lines are not records.
    parts = [f"SELECT * FROM rejected_{f['fid']}" for f in files]
    con.execute(f"""
        CREATE TABLE reader_rejects AS
        SELECT fid, line,
               CASE WHEN bool_or(error_type IN ('MISSING COLUMNS', 'TOO MANY COLUMNS',
                                                'UNQUOTED VALUE', 'LINE SIZE OVER MAXIMUM'))
                    THEN 'malformed_row' ELSE 'invalid_encoding' END AS reason,
               CASE WHEN bool_or(error_type IN ('MISSING COLUMNS', 'TOO MANY COLUMNS',
                                                'UNQUOTED VALUE', 'LINE SIZE OVER MAXIMUM'))
                    THEN 'DuckDB reader: ' || string_agg(DISTINCT lower(error_type), ', ')
                    ELSE 'record is not valid UTF-8' END AS detail,
               trim(any_value(csv_line), E'\\r\\n') AS raw
        FROM ({' UNION ALL '.join(parts)})
        WHERE trim(csv_line, {q(WS)}) <> ''
        GROUP BY fid, line
    """)
    return files


def validate(con, cfg, files) -> None:
    """Steps 2-3: validation (SPEC 3) and deduplication into table `checked`."""
    con.execute(f"""
        CREATE TABLE regions_raw AS
        SELECT trim(region_code) AS code, trim(region_name) AS name, trim(level) AS level,
               trim(province_code) AS province_code
        FROM read_csv({q(cfg['regions'])}, header = true, all_varchar = true)
    """)
    con.execute("""
        CREATE TABLE provinces AS SELECT code AS province_code, name AS province_name
        FROM regions_raw WHERE level = 'province'
    """)
    con.execute("""
        CREATE TABLE districts AS SELECT code AS district_code, name AS district_name,
               province_code FROM regions_raw WHERE level = 'district'
    """)
    con.execute(f"""
        CREATE TABLE master AS
        SELECT upper(trim(institution_code, {q(WS)})) AS institution_code,
               trim(institution_name, {q(WS)}) AS institution_name,
               lower(trim(institution_type, {q(WS)})) AS institution_type,
               trim(province_code, {q(WS)}) AS province_code,
               nullif(replace(trim(coalesce(district_code, ''), {q(WS)}), '.', ''), '')
                   AS district_code,
               CAST(trim(headcount, {q(WS)}) AS BIGINT) AS headcount
        FROM read_csv({q(cfg['master'])}, header = true, all_varchar = true)
    """)
    dup = con.execute("""
        SELECT institution_code FROM master GROUP BY 1 HAVING count(*) > 1 LIMIT 1
    """).fetchone()
    if dup:
        raise UsageError(f"{cfg['master']}: duplicate institution_code {dup[0]}")
    if con.execute("SELECT count(*) FROM master WHERE headcount <= 0").fetchone()[0]:
        raise UsageError(f"{cfg['master']}: headcount must be > 0")

    catalogue = BEHAVIOURS + [d.strip().upper() for d in cfg["distractors"]]
    cat_list = "[" + ", ".join(q(c) for c in catalogue) + "]"
    if len(set(catalogue)) != len(catalogue) or len(catalogue) > 63:
        raise UsageError("survey.distractors: at most 42 codes, distinct from the behaviours")
    # Each pick maps to its catalogue bit (behaviours first, so bits 0-20 are the y's); OR-ing
    # them gives the set of distinct known codes picked. The picks are valid iff that set has
    # as many members as there are picks (no unknown or empty code, no repeat) and there are at
    # most max_picks of them: one pass, no list_distinct and no regex.
    catmask = ("list_aggregate(list_transform(picks, c -> CASE c "
               + " ".join(f"WHEN {q(c)} THEN {1 << b}::BIGINT" for b, c in enumerate(catalogue))
               + " ELSE 0::BIGINT END), 'bit_or')")
    ws = q(WS)
    around_bar = WS_CLASS + "*\\|" + WS_CLASS + "*"
    # trim(x, <the 25 Unicode spaces>) is slow; only strings whose first or last character is
    # one of them need it.
    con.execute(f"""
        CREATE MACRO wtrim(x) AS
        CASE WHEN contains({ws}, x[1]) OR contains({ws}, x[-1]) THEN trim(x, {ws}) ELSE x END
    """)
    off = cfg["offset_secs"]
    year = cfg["year"]
    max_picks = cfg["max_picks"]
    min_dur = cfg["min_duration"]
    # raw text of a rejected record, rebuilt in the file's own column order
    def raw_expr(prefix: str) -> str:
        cases = []
        for f in files:
            parts = ", ".join(f"coalesce({prefix}{c}, '')" if c else "''" for c in f["order"])
            cases.append(f"WHEN {f['fid']} THEN concat_ws({q(f['delim'])}, {parts})")
        return f"left(CASE fid {' '.join(cases)} END, 65536)"

    # line_number of a record DuckDB parsed: its ordinal in the file + 1 (header)
    line_expr = ("CASE fid " + " ".join(f"WHEN {f['fid']} THEN ord - {f['first_ord']} + 2"
                                         for f in files) + " END")
    any_quote = " OR ".join(f"contains(coalesce(s.{c}, ''), '\"')" for c in FIELDS)

    ts_re = (r"^([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
             r"(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})?$")
    con.execute(f"""
        CREATE TABLE validated AS
        WITH t AS (                       -- fields as the checks see them: trimmed, '' = absent
            SELECT s.ord, s.fid,
                   nullif(wtrim(s.response_id), '') AS rid,
                   nullif(wtrim(s.respondent_key), '') AS rkey,
                   nullif(wtrim(s.submitted_at), '') AS sub,
                   nullif(wtrim(s.survey_year), '') AS yr,
                   nullif(wtrim(s.institution_code), '') AS inst_text,
                   nullif(wtrim(s.work_district_code), '') AS dist_text,
                   nullif(wtrim(s.work_province_code), '') AS prov,
                   nullif(wtrim(s.duration_seconds), '') AS dur,
                   nullif(wtrim(s.current_culture), '') AS culture,
                   {any_quote} AS broken_quote,
                   {", ".join(f"s.{c} AS s_{c}" for c in FIELDS)}
            FROM stage s
        ), p AS (                         -- parsed values
            SELECT t.*,
                   regexp_extract(sub, {q(ts_re)}, ['d', 'hh', 'mi', 'ss', 'frac', 'tz']) AS ts,
                   CASE WHEN regexp_full_match(yr, '[+-]?[0-9]+') THEN TRY_CAST(yr AS BIGINT) END
                       AS year_num,
                   CASE WHEN regexp_full_match(dist_text, '[0-9]{{4}}|[0-9]{{2}}\.[0-9]{{2}}')
                        THEN replace(dist_text, '.', '') END AS dist,
                   CASE WHEN regexp_full_match(dur, '[+-]?[0-9]+') THEN TRY_CAST(dur AS BIGINT) END
                       AS dur_num,
                   -- picks: split on '|', each trimmed and upper-cased
                   upper(CASE WHEN regexp_matches(culture, {q(WS_CLASS)})
                              THEN regexp_replace(culture, {q(around_bar)},
                                                  '|', 'g')
                              ELSE culture END) AS norm,
                   upper(inst_text) AS inst
            FROM t
        ), p2 AS (
            SELECT p.*, string_split(norm, '|') AS picks,
                   {catmask} AS catmask,
                   TRY_CAST(ts.d AS DATE) AS ts_date,
                   CASE WHEN ts.tz = '' THEN
                            CASE WHEN substr(sub, 11, 1) = ' ' AND length(sub) = 19
                                 THEN {off} END
                        WHEN ts.tz IN ('Z', 'z') THEN 0
                        WHEN TRY_CAST(substr(ts.tz, 2, 2) AS INTEGER) <= 23
                             AND TRY_CAST(substr(ts.tz, 5, 2) AS INTEGER) <= 59
                        THEN (TRY_CAST(substr(ts.tz, 2, 2) AS INTEGER) * 3600
                              + TRY_CAST(substr(ts.tz, 5, 2) AS INTEGER) * 60)
                             * CASE WHEN ts.tz[1] = '-' THEN -1 ELSE 1 END
                   END AS tz_secs
            FROM p
        ), v AS (
            SELECT p2.*, m.institution_code AS m_code, dd.district_code AS d_code,
                   dd.province_code AS d_prov,
                   ts.d <> '' AND ts_date IS NOT NULL AND tz_secs IS NOT NULL
                       AND TRY_CAST(ts.hh AS INTEGER) <= 23 AND TRY_CAST(ts.mi AS INTEGER) <= 59
                       AND TRY_CAST(ts.ss AS INTEGER) <= 59 AS ts_ok
            FROM p2
            LEFT JOIN master m ON m.institution_code = p2.inst
            LEFT JOIN districts dd ON dd.district_code = p2.dist
        ), r AS (
            SELECT v.*,
                   CASE                    -- SPEC 3, in order of precedence
                     WHEN broken_quote THEN 'malformed_row'
                     WHEN rid IS NULL OR rkey IS NULL OR sub IS NULL OR yr IS NULL
                          OR inst_text IS NULL OR dist_text IS NULL OR culture IS NULL
                          THEN 'missing_field'
                     WHEN length(rid) > 64 OR length(rkey) > 128 OR NOT ts_ok
                          OR year_num IS NULL OR dist IS NULL
                          OR (prov IS NOT NULL AND NOT regexp_full_match(prov, '[0-9]{{2}}'))
                          OR (dur IS NOT NULL AND (dur_num IS NULL OR dur_num < 0))
                          THEN 'invalid_value'
                     WHEN year_num <> {year} THEN 'year_mismatch'
                     WHEN m_code IS NULL THEN 'unknown_institution'
                     WHEN d_code IS NULL THEN 'unknown_region'
                     WHEN prov IS NOT NULL AND prov <> d_prov THEN 'region_mismatch'
                     WHEN len(picks) > {max_picks} OR bit_count(catmask) <> len(picks)
                          THEN 'invalid_picks'
                     WHEN dur_num < {min_dur} THEN 'speeder'
                   END AS reason
            FROM v
        )
        SELECT ord, fid, rid,
               CASE WHEN reason IS NULL THEN rkey END AS rkey,
               CASE WHEN reason IS NULL THEN inst END AS inst,
               CASE WHEN reason IS NULL THEN dist END AS dist,
               CASE WHEN reason IS NULL THEN (ts_date - DATE '1970-01-01') * 86400
                    + TRY_CAST(ts.hh AS BIGINT) * 3600 + TRY_CAST(ts.mi AS BIGINT) * 60
                    + TRY_CAST(ts.ss AS BIGINT) - tz_secs END AS secs,
               CASE WHEN reason IS NULL THEN
                    CASE WHEN ts.frac = '' THEN 0
                         ELSE TRY_CAST(rpad(substr(ts.frac, 2, 9), 9, '0') AS INTEGER) END
               END AS nanos,
               CASE WHEN reason IS NULL THEN catmask & {(1 << 21) - 1} END AS mask,
               reason,
               CASE WHEN reason IS NULL THEN NULL ELSE CASE   -- detail, naming the field
                 WHEN broken_quote THEN 'broken quoting: a quote inside a value'
                 WHEN rid IS NULL THEN 'response_id is empty or absent'
                 WHEN rkey IS NULL THEN 'respondent_key is empty or absent'
                 WHEN sub IS NULL THEN 'submitted_at is empty or absent'
                 WHEN yr IS NULL THEN 'survey_year is empty or absent'
                 WHEN inst_text IS NULL THEN 'institution_code is empty or absent'
                 WHEN dist_text IS NULL THEN 'work_district_code is empty or absent'
                 WHEN culture IS NULL THEN 'current_culture is empty or absent'
                 WHEN length(rid) > 64
                      THEN 'response_id: ' || length(rid) || ' characters, at most 64 allowed'
                 WHEN length(rkey) > 128
                      THEN 'respondent_key: ' || length(rkey) || ' characters, at most 128 allowed'
                 WHEN NOT ts_ok THEN 'submitted_at: "' || sub
                      || '" is neither RFC 3339 nor YYYY-MM-DD HH:MM:SS'
                 WHEN year_num IS NULL THEN 'survey_year: "' || yr || '" is not an integer'
                 WHEN dist IS NULL THEN 'work_district_code: "' || dist_text
                      || '" is not a district code like 3319 or 33.19'
                 WHEN prov IS NOT NULL AND NOT regexp_full_match(prov, '[0-9]{{2}}')
                      THEN 'work_province_code: "' || prov || '" is not a two-digit province code'
                 WHEN dur IS NOT NULL AND dur_num IS NULL
                      THEN 'duration_seconds: "' || dur || '" is not an integer'
                 WHEN dur_num < 0 THEN 'duration_seconds: ' || dur || ' is negative'
                 WHEN year_num <> {year} THEN 'survey_year ' || year_num || ', run year {year}'
                 WHEN m_code IS NULL THEN 'institution_code ' || inst
                      || ' is not in the {year} master'
                 WHEN d_code IS NULL THEN 'work_district_code ' || dist || ' is not a district'
                 WHEN prov IS NOT NULL AND prov <> d_prov THEN 'work_province_code ' || prov
                      || ', but district ' || dist || ' lies in province ' || d_prov
                 WHEN len(picks) > {max_picks} THEN 'current_culture: ' || len(picks)
                      || ' picks, at most {max_picks} allowed'
                 WHEN reason = 'invalid_picks' THEN 'current_culture: ' || list_filter(
                      list_transform(picks, (c, i) -> CASE
                          WHEN NOT list_contains({cat_list}, c) THEN
                              CASE WHEN c = '' THEN 'an empty code' ELSE 'unknown code ' || c END
                          WHEN list_position(picks, c) < i THEN c || ' picked twice' END),
                      x -> x IS NOT NULL)[1]
                 WHEN dur_num < {min_dur} THEN 'duration_seconds ' || dur_num
                      || ' < min_duration_seconds {min_dur}'
               END END AS detail,
               CASE WHEN reason IS NOT NULL THEN {raw_expr('s_')} END AS raw
        FROM r
    """)
    # Deduplication (SPEC 3), over the records that passed every check.
    con.execute("""
        CREATE TABLE winners AS
        SELECT ord, rid, rkey, inst, dist, mask,
               first_value(rid) OVER w AS kept_rid,
               row_number() OVER w AS pos
        FROM validated
        WHERE reason IS NULL
        WINDOW w AS (PARTITION BY rkey ORDER BY secs DESC, nanos DESC, rid DESC, ord ASC)
    """)
    con.execute("""
        CREATE TABLE kept AS
        SELECT ord, rid, inst, dist, mask,
               row_number() OVER (PARTITION BY rid ORDER BY ord) AS n_rid
        FROM winners WHERE pos = 1
    """)
    con.execute("CREATE VIEW accepted AS SELECT ord, inst, dist, mask FROM kept WHERE n_rid = 1")
    # The quarantine: reader rejects, validation rejects, then deduplication rejects.
    con.execute(f"""
        CREATE TABLE quarantine_rows AS
        SELECT fid, line AS line_number, NULL::VARCHAR AS response_id, reason, detail, raw
        FROM reader_rejects
        UNION ALL
        SELECT fid, {line_expr}, rid, reason, detail, raw
        FROM validated WHERE reason IS NOT NULL
        UNION ALL
        SELECT fid, {line_expr}, rid, reason, detail, {raw_expr('')}
        FROM (
            SELECT ord, rid, 'superseded' AS reason,
                   'superseded by response_id ' || kept_rid || ' of the same respondent_key'
                       AS detail
            FROM winners WHERE pos > 1
            UNION ALL
            SELECT ord, rid, 'duplicate_response_id',
                   'response_id ' || rid || ' already accepted'
            FROM kept WHERE n_rid > 1
        ) d
        JOIN stage s USING (ord)
    """)
    # Record-level tables are no longer needed: free their memory before estimating.
    con.execute("DROP VIEW stage; DROP TABLE validated; DROP TABLE winners")
    for f in files:
        con.execute(f"DROP TABLE stage_{f['fid']}")


def estimate(con, cfg) -> None:
    """Steps 4-5: scores summed per (institution, district), then every estimate."""
    vsum = ", ".join(
        f"sum((((mask >> {3 * i}) & 7) <> 0)::INTEGER)::BIGINT AS x_{v}" for i, v in enumerate(VALUES))
    ysum = ", ".join(f"sum((mask >> {b}) & 1)::BIGINT AS y_{b}" for b in range(21))
    kexpr = " + ".join(f"((((mask >> {3 * i}) & 7) <> 0)::INTEGER)" for i in range(7))
    con.execute(f"""
        CREATE TABLE cells AS
        SELECT inst, dist, count(*) AS m, sum(k)::BIGINT AS k1, sum(k * k)::BIGINT AS k2, {vsum}, {ysum}
        FROM (SELECT inst, dist, mask, ({kexpr})::BIGINT AS k FROM accepted)
        GROUP BY inst, dist
    """)
    sums_cols = ["m", "k1", "k2"] + [f"x_{v}" for v in VALUES] + [f"y_{b}" for b in range(21)]
    sum_all = ", ".join(f"sum({c})::BIGINT AS {c}" for c in sums_cols)
    e2 = dbl(cfg["moe"]) + " * " + dbl(cfg["moe"])

    def cat(x):
        r = f"(round({x} * 10.0) / 10.0)"
        return (f"CASE WHEN {x} IS NULL THEN NULL WHEN {r} >= 75.0 THEN 'A' WHEN {r} >= 50.0 "
                f"THEN 'B' WHEN {r} >= 25.0 THEN 'C' ELSE 'D' END")

    # ---- institutions (SPEC 5.1)
    idx_v = ", ".join(
        f"CASE WHEN pub THEN 100.0 * t.x_{v}::DOUBLE / (t.m::DOUBLE * 1.0) END AS index_{v}"
        for v in VALUES)
    con.execute(f"""
        CREATE TABLE inst_est AS
        WITH t AS (SELECT inst, {sum_all} FROM cells GROUP BY inst),
        b AS (
            SELECT ms.*, coalesce(t.m, 0) AS n, t.* EXCLUDE (inst, m), t.m,
                   least(ms.headcount, greatest({cfg['min_floor']},
                       ceil(ms.headcount::DOUBLE / (1.0 + ms.headcount::DOUBLE * ({e2})))::BIGINT))
                       AS min_required
            FROM master ms LEFT JOIN t ON t.inst = ms.institution_code
        ), c AS (
            SELECT b.*, n >= min_required AS eligible, n < {cfg['suppress']} AS suppressed,
                   n >= {cfg['suppress']} AND n > 0 AS pub
            FROM b
        ), d AS (
            SELECT t.*, {idx_v},
                   CASE WHEN pub THEN 100.0 * k1::DOUBLE / (m::DOUBLE * 7.0) END AS index_overall,
                   CASE WHEN pub AND m >= 2 THEN 100.0 * sqrt(
                       (1.0 - least(m::DOUBLE / headcount::DOUBLE, 1.0))
                       * (((m * k2 - k1 * k1)::DOUBLE / (m::DOUBLE * 49.0)) / (m::DOUBLE - 1.0))
                       / m::DOUBLE) END AS se_overall
            FROM c t
        )
        SELECT d.*,
               CASE WHEN eligible AND index_overall IS NOT NULL THEN
                   round(index_overall * 100.0) / 100.0 END AS r2
        FROM d
    """)
    idx_cols = ", ".join(f"index_{v}" for v in VALUES)
    cat_cols = ", ".join(f"{cat('index_' + v)} AS category_{v}" for v in VALUES)
    con.execute(f"""
        CREATE TABLE institution_index AS
        SELECT i.institution_code, i.institution_name, i.institution_type, i.province_code,
               pr.province_name, i.district_code, dd.district_name, i.headcount,
               i.n AS n_respondents, i.n::DOUBLE / i.headcount::DOUBLE AS response_rate,
               i.n > i.headcount AS headcount_exceeded, i.min_required, i.eligible, i.suppressed,
               {idx_cols}, index_overall, se_overall,
               -- greatest/least skip NULLs in DuckDB: keep the ci NULL when se is
               CASE WHEN se_overall IS NOT NULL
                    THEN greatest(index_overall - 1.96 * se_overall, 0.0) END AS ci95_low,
               CASE WHEN se_overall IS NOT NULL
                    THEN least(index_overall + 1.96 * se_overall, 100.0) END AS ci95_high,
               {cat('index_overall')} AS category, {cat_cols},
               CASE WHEN r2 IS NOT NULL THEN
                   rank() OVER (PARTITION BY r2 IS NULL ORDER BY r2 DESC) END AS rank_national,
               CASE WHEN r2 IS NOT NULL THEN rank() OVER (
                   PARTITION BY i.institution_type, r2 IS NULL ORDER BY r2 DESC) END
                   AS rank_in_type,
               NULL::DOUBLE AS prev_index_overall, NULL::DOUBLE AS delta_index_overall,
               {cfg['year']} AS year
        FROM inst_est i
        LEFT JOIN provinces pr ON pr.province_code = i.province_code
        LEFT JOIN districts dd ON dd.district_code = i.district_code
        ORDER BY i.institution_code
    """)

    # ---- domains (SPEC 5.2): parts = an eligible institution's respondents in a domain
    con.execute(f"""
        CREATE TABLE parts AS
        WITH e AS (SELECT institution_code AS inst, headcount::DOUBLE AS big_n, n AS n_h
                   FROM inst_est WHERE eligible AND n > 0),
        c AS (SELECT c.*, dd.province_code FROM cells c
              JOIN districts dd ON dd.district_code = c.dist)
        SELECT 'district' AS level, c.dist AS code, e.*, c.* EXCLUDE (inst, dist, province_code)
        FROM c JOIN e USING (inst)
        UNION ALL
        SELECT 'province', c.province_code, e.*, c.* EXCLUDE (inst, province_code)
        FROM (SELECT inst, province_code, {sum_all} FROM c GROUP BY inst, province_code) c
        JOIN e USING (inst)
        UNION ALL
        SELECT 'national', 'ID', e.*, c.* EXCLUDE (inst)
        FROM (SELECT inst, {sum_all} FROM c GROUP BY inst) c JOIN e USING (inst)
    """)
    wx = ", ".join(f"sum(w * x_{v}) AS wx_{v}" for v in VALUES)
    wy = ", ".join(f"sum(w * y_{b}) AS wy_{b}" for b in range(21))
    con.execute(f"""
        CREATE TABLE dom_agg AS
        WITH p AS (SELECT *, big_n / n_h::DOUBLE AS w FROM parts),
        a AS (
            SELECT level, code, sum(m)::BIGINT AS n_respondents,
                   count(*) FILTER (WHERE m > 0) AS n_institutions,
                   sum(w * m) AS wt, sum(w * k1) AS wk, {wx}, {wy}
            FROM p GROUP BY level, code
        ), r AS (SELECT level, code, wk / (wt * 7.0) AS ratio, wt FROM a),
        var AS (
            SELECT p.level, p.code, sum(
                CASE WHEN p.n_h >= 2 THEN
                    (1.0 - least(p.n_h::DOUBLE / p.big_n, 1.0)) * p.n_h::DOUBLE
                    / (p.n_h::DOUBLE - 1.0)
                    * ((p.big_n / p.n_h::DOUBLE) / r.wt) * ((p.big_n / p.n_h::DOUBLE) / r.wt)
                    * ((p.m * p.k2 - p.k1 * p.k1)::DOUBLE / (p.m::DOUBLE * 49.0)
                       + p.m::DOUBLE * (p.k1::DOUBLE / (p.m::DOUBLE * 7.0) - r.ratio)
                                     * (p.k1::DOUBLE / (p.m::DOUBLE * 7.0) - r.ratio)
                                     * (1.0 - p.m::DOUBLE / p.n_h::DOUBLE))
                ELSE 0.0 END) AS v
            FROM p JOIN r USING (level, code) GROUP BY p.level, p.code
        )
        SELECT a.*, r.ratio, var.v FROM a JOIN r USING (level, code) JOIN var USING (level, code)
    """)
    # headline means over seated institutions (eligible, not suppressed, with indices)
    im_v = ", ".join(f"avg(index_{v}) AS im_{v}" for v in VALUES)
    con.execute(f"""
        CREATE TABLE seated AS
        WITH s AS (SELECT * FROM inst_est WHERE eligible AND NOT suppressed
                   AND index_overall IS NOT NULL)
        SELECT 'district' AS level, district_code AS code, count(*) AS n_seated,
               {im_v}, avg(index_overall) AS im_overall
        FROM s WHERE district_code IS NOT NULL GROUP BY district_code
        UNION ALL
        SELECT 'province', province_code, count(*), {im_v}, avg(index_overall)
        FROM s GROUP BY province_code
        UNION ALL
        SELECT 'national', 'ID', count(*), {im_v}, avg(index_overall) FROM s
    """)
    supp = f"a.n_respondents < {cfg['suppress']}"
    d_idx = ", ".join(f"CASE WHEN NOT {supp} THEN 100.0 * a.wx_{v} / (a.wt * 1.0) END AS index_{v}"
                      for v in VALUES)
    d_im = ", ".join(f"CASE WHEN NOT {supp} THEN s.im_{v} END AS inst_mean_{v}" for v in VALUES)
    con.execute(f"""
        CREATE TABLE domains AS
        WITH d AS (
            SELECT a.level, a.code, a.n_respondents, a.n_institutions,
                   a.wt AS population_estimate, {supp} AS suppressed, {d_idx},
                   CASE WHEN NOT {supp} THEN 100.0 * a.ratio END AS index_overall,
                   CASE WHEN NOT {supp} THEN 100.0 * sqrt(a.v) END AS se_overall,
                   coalesce(s.n_seated, 0) AS n_institutions_seated, {d_im},
                   CASE WHEN NOT {supp} THEN s.im_overall END AS inst_mean_overall
            FROM dom_agg a LEFT JOIN seated s USING (level, code)
        )
        SELECT d.*, CASE WHEN index_overall IS NOT NULL
                         THEN round(index_overall * 100.0) / 100.0 END AS r2
        FROM d
    """)
    metrics = (
        "n_respondents, n_institutions, population_estimate, suppressed, "
        + ", ".join(f"index_{v}" for v in VALUES)
        + ", index_overall, se_overall, "
        "CASE WHEN se_overall IS NOT NULL "
        "THEN greatest(index_overall - 1.96 * se_overall, 0.0) END AS ci95_low, "
        "CASE WHEN se_overall IS NOT NULL "
        "THEN least(index_overall + 1.96 * se_overall, 100.0) END AS ci95_high, "
        f"{cat('index_overall')} AS category, "
        + ", ".join(f"{cat('index_' + v)} AS category_{v}" for v in VALUES)
        + ", n_institutions_seated, "
        + ", ".join(f"inst_mean_{v}" for v in VALUES)
        + f", inst_mean_overall, {cat('inst_mean_overall')} AS inst_mean_category"
    )
    rank = "CASE WHEN r2 IS NOT NULL THEN rank() OVER (PARTITION BY {p} r2 IS NULL ORDER BY r2 DESC) END"
    yoy = ("NULL::DOUBLE AS prev_index_overall, NULL::DOUBLE AS delta_index_overall, "
           "NULL::DOUBLE AS prev_inst_mean_overall, NULL::DOUBLE AS delta_inst_mean_overall")
    con.execute(f"""
        CREATE TABLE district_index AS
        SELECT d.code AS district_code, dd.district_name, pr.province_name, {metrics},
               {rank.format(p='')} AS rank_national,
               {rank.format(p='dd.province_code,')} AS rank_in_province, {yoy},
               {cfg['year']} AS year, dd.province_code
        FROM domains d JOIN districts dd ON dd.district_code = d.code
        LEFT JOIN provinces pr ON pr.province_code = dd.province_code
        WHERE d.level = 'district' ORDER BY d.code
    """)
    con.execute(f"""
        CREATE TABLE province_index AS
        SELECT d.code AS province_code, pr.province_name, {metrics},
               {rank.format(p='')} AS rank_national, {yoy}, {cfg['year']} AS year
        FROM domains d LEFT JOIN provinces pr ON pr.province_code = d.code
        WHERE d.level = 'province' ORDER BY d.code
    """)
    # The national row exists even when no institution is eligible.
    con.execute(f"""
        CREATE TABLE national_index AS
        SELECT 'ID' AS country_code, {metrics}, {yoy}, {cfg['year']} AS year
        FROM (SELECT 'national' AS level, 'ID' AS code) k
        LEFT JOIN domains d USING (level, code)
    """)
    con.execute(f"""
        UPDATE national_index SET n_respondents = coalesce(n_respondents, 0),
            n_institutions = coalesce(n_institutions, 0),
            population_estimate = coalesce(population_estimate, 0.0),
            suppressed = coalesce(suppressed, true),
            n_institutions_seated = coalesce(n_institutions_seated, 0)
    """)
    # behaviour scores: 21 rows per unit of each level's index table
    beh_vals = "[" + ", ".join(
        f"{{'b': {b}, 'code': {q(BEHAVIOURS[b])}, 'value': {q(VALUES[b // 3])}}}"
        for b in range(21)) + "]"
    inst_y = "[" + ", ".join(f"y_{b}" for b in range(21)) + "]"
    dom_y = "[" + ", ".join(f"wy_{b}" for b in range(21)) + "]"
    con.execute(f"""
        CREATE TABLE behaviour_scores AS
        WITH beh AS (SELECT unnest({beh_vals}, recursive := true))
        SELECT * FROM (
            SELECT 'institution' AS level, i.institution_code AS unit_code, beh.code AS behaviour_code,
                   beh.value AS value_code, i.n AS n_respondents,
                   CASE WHEN i.pub THEN 100.0 * ({inst_y})[beh.b + 1]::DOUBLE / (i.m::DOUBLE * 1.0)
                   END AS score, beh.b
            FROM inst_est i, beh
            UNION ALL
            SELECT d.level, d.code, beh.code, beh.value, d.n_respondents,
                   CASE WHEN d.n_respondents >= {cfg['suppress']}
                        THEN 100.0 * ({dom_y})[beh.b + 1] / (d.wt * 1.0) END, beh.b
            FROM dom_agg d, beh
        ) ORDER BY level, unit_code, b
    """)


def publish(con, args, cfg, files) -> dict:
    """Step 6: quality gate, then COPY the tables into staging directories and swap them in."""
    counts = dict(con.execute(
        "SELECT reason, count(*) FROM quarantine_rows GROUP BY reason").fetchall())
    accepted = con.execute("SELECT count(*) FROM accepted").fetchone()[0]
    quarantined = sum(counts.values())
    read = accepted + quarantined
    counted = quarantined - counts.get("superseded", 0)
    ratio = counted / read if read else 0.0
    run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    year = cfg["year"]
    comp = cfg["compression"]
    kv = f"KV_METADATA {{'berakhlak.run_id': {q(run_id)}, 'berakhlak.version': 'duckdb-peer'}}"
    file_names = ", ".join(f"({f['fid']}, {q(f['rel'])})" for f in files)
    qsql = f"""
        SELECT f.rel AS source_file, line_number::BIGINT AS line_number, response_id, reason,
               detail, raw, {year} AS year
        FROM quarantine_rows r JOIN (VALUES {file_names}) f(fid, rel) ON f.fid = r.fid
        ORDER BY f.rel, line_number
    """
    if ratio > cfg["max_ratio"]:
        target = os.path.join(cfg["quarantine"], "rejected-runs", f"run_id={run_id}")
        os.makedirs(target, mode=0o700, exist_ok=True)
        con.execute(f"COPY ({qsql.replace(f', {year} AS year', '')}) TO "
                    f"{q(os.path.join(target, 'part-00000.parquet'))} "
                    f"(FORMAT parquet, COMPRESSION {comp}, {kv})")
        print(f"duckdb_job: quality gate: {counted}/{read} = {ratio:.2%} rejected "
              f"> {cfg['max_ratio']:.2%}; nothing published", file=sys.stderr)
        sys.exit(3)

    wh, qdir = cfg["warehouse"], cfg["quarantine"]
    os.makedirs(wh, exist_ok=True)
    os.makedirs(qdir, mode=0o700, exist_ok=True)
    stage_dir = os.path.join(wh, f"_staging_duckdb_{run_id}")
    qstage = os.path.join(qdir, f"_staging_duckdb_{run_id}")
    os.makedirs(stage_dir)
    os.makedirs(qstage, mode=0o700)
    opts = f"FORMAT parquet, COMPRESSION {comp}, FILENAME_PATTERN 'part-0000{{i}}', {kv}"
    copies = [
        ("institution_index", "SELECT * FROM institution_index ORDER BY institution_code",
         "year", stage_dir),
        ("district_index", "SELECT * FROM district_index ORDER BY district_code",
         "year, province_code", stage_dir),
        ("province_index", "SELECT * FROM province_index ORDER BY province_code", "year",
         stage_dir),
        ("national_index", "SELECT * FROM national_index", "year", stage_dir),
        ("behaviour_scores", f"SELECT * EXCLUDE (b), {year} AS year FROM behaviour_scores "
                             "ORDER BY level, unit_code, b", "year, level", stage_dir),
        ("quarantine", qsql, "year", qstage),
    ]
    for name, sql, part, base in copies:
        con.execute(f"COPY ({sql}) TO {q(os.path.join(base, name))} "
                    f"(PARTITION_BY ({part}), {opts})")
    # Durability, then swap each table's year partition in (rename is atomic per table).
    for base in (stage_dir, qstage):
        for root, _d, fs in os.walk(base):
            for fn in fs:
                fd = os.open(os.path.join(root, fn), os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
    for name, _sql, _part, base in copies:
        src = os.path.join(base, name, f"year={year}")
        dst_table = qdir if name == "quarantine" else os.path.join(wh, name)
        os.makedirs(dst_table, exist_ok=True)
        dst = os.path.join(dst_table, f"year={year}")
        old = None
        if os.path.exists(dst):
            old = dst + f".old-{run_id}"
            os.rename(dst, old)
        os.rename(src, dst)
        if old:
            shutil.rmtree(old)
        dfd = os.open(dst_table, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
    shutil.rmtree(stage_dir, ignore_errors=True)
    shutil.rmtree(qstage, ignore_errors=True)
    return {"run_id": run_id, "read": read, "accepted": accepted, "by_reason": counts,
            "ratio": ratio}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--year", type=int, required=True)
    ap.add_argument("--config", default="config/berakhlak.toml")
    for flag in ("regions", "master", "input", "warehouse", "quarantine"):
        ap.add_argument(f"--{flag}")
    ap.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's own default)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--timings", help="write the phase timings (seconds) as JSON to this file")
    args = ap.parse_args()
    t0 = time.monotonic()
    try:
        cfg = load_config(args)
        cfg["year"] = args.year
        dumps = discover(cfg["input"])
    except (UsageError, OSError, tomllib.TOMLDecodeError) as e:
        print(f"duckdb_job: error: {e}", file=sys.stderr)
        return 2
    con = duckdb.connect()  # in memory; DuckDB's default threads and memory limit
    if args.threads:
        con.execute(f"SET threads = {int(args.threads)}")
    timings = {}
    try:
        t = time.monotonic()
        files = stage(con, args, cfg, dumps)
        timings["read"] = time.monotonic() - t
        t = time.monotonic()
        validate(con, cfg, files)
        timings["validate+dedupe"] = time.monotonic() - t
        t = time.monotonic()
        estimate(con, cfg)
        timings["estimate"] = time.monotonic() - t
        t = time.monotonic()
        summary = publish(con, args, cfg, files)
        timings["write"] = time.monotonic() - t
    except UsageError as e:
        print(f"duckdb_job: error: {e}", file=sys.stderr)
        return 2
    total = time.monotonic() - t0
    if args.timings:
        with open(args.timings, "w") as f:
            json.dump({**timings, "total": total, "records_read": summary["read"]}, f)
    national = con.execute(
        "SELECT inst_mean_overall, index_overall FROM national_index").fetchone()
    if not args.quiet:
        print(f"records read   {summary['read']}")
        print(f"accepted       {summary['accepted']}")
        for reason, n in sorted(summary["by_reason"].items()):
            print(f"  {reason:<24}{n:>8}")
        print(f"national index {national[0]!r} (weighted {national[1]!r})")
        print("time           " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items())
              + f", total {total:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
