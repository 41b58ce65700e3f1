"""Everything the Rust binary publishes must match the independent Python reference.

For both instruments (votes: 2023 then 2024; likert: 2025 then 2026) the binary runs on an
adversarial dataset from make_cases.py; every row and column of every table, every quarantine
row and the per-file counts of the manifest are compared with reference.compute().

Floats: rel/abs tolerance 1e-9. Nulls must match exactly. Categories and ranks are compared
exactly, except when the reference value sits within 1e-9 of a rounding boundary (then the
published category/rank must at least be consistent with the published index).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

import reference
from conftest import BIN, run_aggregate

TABLES = ["institution_index", "district_index", "province_index", "national_index",
          "behaviour_scores"]
KEYS = {
    "institution_index": ("institution_code",),
    "district_index": ("district_code",),
    "province_index": ("province_code",),
    "national_index": ("country_code",),
    "behaviour_scores": ("level", "unit_code", "behaviour_code"),
}
GLOBS = {
    "institution_index": "institution_index/*/*.parquet",
    "district_index": "district_index/*/*/*.parquet",
    "province_index": "province_index/*/*.parquet",
    "national_index": "national_index/*/*.parquet",
    "behaviour_scores": "behaviour_scores/*/*/*.parquet",
}
PARTITION_TYPES = {"year": "I", "province_code": "S", "level": "S"}
REL, ABS = 1e-9, 1e-9


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def read_table(warehouse: Path, table: str, year: int):
    con = duckdb.connect()
    hive_types = "{'province_code': VARCHAR}" if table == "district_index" else None
    opts = "hive_partitioning=true" + (f", hive_types={hive_types}" if hive_types else "")
    sql = (f"SELECT * FROM read_parquet('{warehouse}/{GLOBS[table]}', {opts}) "
           f"WHERE year = {int(year)}")
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    return cols, [dict(zip(cols, r)) for r in cur.fetchall()]


def read_quarantine(qdir: Path, year: int):
    path = qdir / f"year={year}" / "part-00000.parquet"
    assert path.exists(), f"quarantine file missing: {path}"
    con = duckdb.connect()
    cur = con.execute(f"SELECT * FROM read_parquet('{path}', hive_partitioning=false)")
    cols = [d[0] for d in cur.description]
    return cols, [dict(zip(cols, r)) for r in cur.fetchall()]


# --------------------------------------------------------------------------------------------
# comparison helpers
# --------------------------------------------------------------------------------------------


def col_type(col):
    return PARTITION_TYPES.get(col) or reference.COLUMN_TYPES[col]


def same_value(col, exp, act):
    if exp is None or act is None:
        return exp is None and act is None
    t = col_type(col)
    if t == "F":
        if isinstance(act, float) and math.isnan(act):
            return False
        return math.isclose(float(exp), float(act), rel_tol=REL, abs_tol=ABS)
    if t == "I":
        return not isinstance(act, bool) and int(act) == exp and float(act) == float(exp)
    if t == "B":
        return isinstance(act, bool) and act == exp
    return isinstance(act, str) and act == exp


CATEGORY_SOURCE = {"category": "index_overall", "inst_mean_category": "inst_mean_overall"}
CATEGORY_SOURCE.update({f"category_{v}": f"index_{v}" for v in reference.VALUES})
RANK_GROUPS = {  # table -> rank column -> grouping key (None = whole table)
    "institution_index": {"rank_national": None, "rank_in_type": "institution_type"},
    "district_index": {"rank_national": None, "rank_in_province": "province_code"},
    "province_index": {"rank_national": None},
}


def ranks_from(rows, key_col, col, group):
    """Competition ranks recomputed from the published index (fallback at boundaries)."""
    out = {}
    groups = {}
    for r in rows:
        groups.setdefault(r.get(group) if group else None, []).append(r)
    for rs in groups.values():
        items = [(r[key_col], r["index_overall"] if r.get("eligible", True) else None)
                 for r in rs]
        out.update(reference.competition_ranks(items))
    return out


def compare_table(table, expected_rows, actual_cols, actual_rows):
    errors = []
    exp_cols = list(expected_rows[0].keys()) if expected_rows else None
    if exp_cols is not None and set(actual_cols) != set(exp_cols):
        errors.append(f"{table}: columns differ: missing {sorted(set(exp_cols) - set(actual_cols))}"
                      f", unexpected {sorted(set(actual_cols) - set(exp_cols))}")
        return errors
    kc = KEYS[table]
    exp = {tuple(r[k] for k in kc): r for r in expected_rows}
    act = {}
    for r in actual_rows:
        k = tuple(r[c] for c in kc)
        if k in act:
            errors.append(f"{table}: duplicate row {k}")
        act[k] = r
    for k in sorted(set(exp) - set(act)):
        errors.append(f"{table}: missing row {k}")
    for k in sorted(set(act) - set(exp)):
        errors.append(f"{table}: unexpected row {k}")
    boundary_rank = any(reference.near_round_boundary(r.get("index_overall"), 2)
                        for r in expected_rows)
    rank_fallback = {}
    if boundary_rank and table in RANK_GROUPS:
        for col, grp in RANK_GROUPS[table].items():
            rank_fallback[col] = ranks_from(actual_rows, kc[0], col, grp)
    for k in sorted(set(exp) & set(act)):
        e, a = exp[k], act[k]
        for col in exp_cols:
            if same_value(col, e[col], a[col]):
                continue
            if col in CATEGORY_SOURCE:
                src = CATEGORY_SOURCE[col]
                if (reference.near_round_boundary(e[src], 1)
                        and a[col] == reference.category(a[src])):
                    continue
            if col in rank_fallback and a[col] == rank_fallback[col].get(k[0]):
                continue
            errors.append(f"{table} {k} {col}: expected {e[col]!r}, published {a[col]!r}")
    return errors


def assert_no_errors(errors, what):
    if errors:
        shown = "\n".join(errors[:60])
        more = f"\n... and {len(errors) - 60} more" if len(errors) > 60 else ""
        pytest.fail(f"{what}: {len(errors)} mismatches\n{shown}{more}")


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES)
def test_table_matches_reference(published, table):
    errors = []
    for year, exp in published["expected"].items():
        cols, rows = read_table(published["warehouse"], table, year)
        assert rows or not exp[table], f"{table} year={year}: no rows published"
        errors += [f"[year {year}] {e}" for e in compare_table(table, exp[table], cols, rows)]
    assert_no_errors(errors, f"{published['instrument']} {table}")


def test_dataset_exercises_the_design(published):
    """Guards the generator: the cases the comparison relies on are really present."""
    exp = published["expected"][published["year"]]
    inst = {r["institution_code"]: r for r in exp["institution_index"]}
    assert inst["ANRI"]["n_respondents"] == 0
    assert inst["LAN"]["eligible"] and inst["LAN"]["suppressed"]
    assert inst["BSSN"]["n_respondents"] == 1 and inst["BSSN"]["eligible"]
    assert inst["KEMENAG"]["headcount_exceeded"]
    assert not inst["KAB3318"]["eligible"]
    assert inst["KAB3319"]["n_respondents"] == inst["KAB3319"]["min_required"]
    assert inst["KAB1101"]["rank_national"] == inst["KOTA7571"]["rank_national"]
    assert inst["KOTA6471"]["index_overall"] != inst["KOTA6472"]["index_overall"]
    assert inst["KOTA6471"]["rank_national"] == inst["KOTA6472"]["rank_national"]
    assert inst["NEW2024"]["prev_index_overall"] is None
    assert inst["KEMENKEU"]["district_code"] is None
    prov = {r["province_code"]: r for r in exp["province_index"]}
    # central institution respondents working far from the seat: a province with respondents
    # but no institution seated there
    assert prov["91"]["n_respondents"] > 0 and prov["91"]["n_institutions_seated"] == 0
    reasons = {q["reason"] for q in exp["quarantine"]}
    wanted = set(reference.REASONS)
    # straightliners exist only for likert, picks only for votes
    wanted.discard("straightliner" if published["instrument"] == "votes" else "invalid_picks")
    assert wanted <= reasons, f"reason codes not exercised: {wanted - reasons}"
    assert any(r["suppressed"] for r in exp["district_index"])
    assert exp["gate_ratio"] < published["config"]["publish"]["max_quarantine_ratio"]


# --------------------------------------------------------------------------------------------
# quarantine
# --------------------------------------------------------------------------------------------


def test_quarantine_matches_reference(published):
    errors = []
    for year, exp in published["expected"].items():
        cols, rows = read_quarantine(published["quarantine"], year)
        missing = set(reference.QUARANTINE_COLUMNS) - set(cols)
        assert not missing, f"quarantine columns missing: {missing} (has {cols})"
        e_rows = exp["quarantine"]
        if len(rows) != len(e_rows):
            errors.append(f"[{year}] quarantine has {len(rows)} rows, expected {len(e_rows)}")
        e_by = {(q["source_file"], q["line_number"]): q for q in e_rows}
        a_keys = [(r["source_file"], r["line_number"]) for r in rows]
        for k in sorted(set(e_by) - set(a_keys)):
            errors.append(f"[{year}] missing quarantine row {k} ({e_by[k]['reason']}: "
                          f"{e_by[k]['raw'][:80]!r})")
        for k in sorted(set(a_keys) - set(e_by)):
            errors.append(f"[{year}] unexpected quarantine row {k}")
        expected_order = [k for k in a_keys if k in e_by]
        srt = sorted(expected_order, key=lambda k: (k[0].encode("utf-8"), k[1]))
        if expected_order != srt:
            errors.append(f"[{year}] quarantine not sorted by (source_file bytewise, line)")
        for r in rows:
            k = (r["source_file"], r["line_number"])
            e = e_by.get(k)
            if e is None:
                continue
            where = f"[{year}] {k[0]}:{k[1]}"
            if r["reason"] != e["reason"]:
                errors.append(f"{where} reason: expected {e['reason']}, published {r['reason']}"
                              f" (detail {r['detail']!r}; reference: {e['detail']!r})")
                continue
            # response_id: the trimmed value when the record could be parsed into fields and
            # holds a string response_id; null for malformed_row / invalid_encoding records
            if r["response_id"] != e["response_id"]:
                errors.append(f"{where} response_id: expected {e['response_id']!r}, "
                              f"published {r['response_id']!r}")
            detail = r["detail"] or ""
            if e.get("field") and e["field"].lower() not in detail.lower():
                errors.append(f"{where} detail should name field {e['field']}: {detail!r}")
            if e["reason"] == "superseded" and e["kept_response_id"] not in detail:
                errors.append(f"{where} superseded detail should name kept response_id "
                              f"{e['kept_response_id']!r}: {detail!r}")
            if r["raw"] != e["raw"]:
                errors.append(f"{where} raw differs:\n   expected {e['raw'][:200]!r}"
                              f"\n   published {str(r['raw'])[:200]!r}")
    assert_no_errors(errors, f"{published['instrument']} quarantine")


# --------------------------------------------------------------------------------------------
# manifest (tolerant accessor; assumptions documented in the functions)
# --------------------------------------------------------------------------------------------

PATH_KEYS = ("path", "relative_path", "file", "source_file", "name")
READ_KEYS = ("records_read", "read", "records")
ACCEPTED_KEYS = ("accepted", "records_accepted")
BYTES_KEYS = ("bytes", "size", "size_bytes")


def _path_of(entry):
    for k in PATH_KEYS:
        if isinstance(entry.get(k), str):
            return entry[k]
    return None


def manifest_file_entries(man):
    """Assumed shapes: a list of objects each naming its path under one of PATH_KEYS, anywhere
    in the document; or an object keyed by path whose values hold records_read."""
    found = {}

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if isinstance(v, dict) and any(rk in v for rk in READ_KEYS) and \
                        k.endswith(reference.INPUT_SUFFIXES):
                    found.setdefault(k, v)
                walk(v)
        elif isinstance(o, list):
            for x in o:
                if isinstance(x, dict) and _path_of(x) and any(rk in x for rk in READ_KEYS):
                    found.setdefault(_path_of(x), x)
                walk(x)

    walk(man)
    return found


def _first(entry, keys):
    for k in keys:
        if k in entry and isinstance(entry[k], int) and not isinstance(entry[k], bool):
            return entry[k]
    return None


def by_reason(entry):
    """The per-reason counts: the first dict (entry itself excluded) whose keys are reason
    codes, searched in the entry and one level below; missing reasons count as zero."""
    reasons = set(reference.REASONS)
    cands = [entry.get("quarantined"), entry.get("quarantined_by_reason"),
             entry.get("by_reason"), entry.get("reasons")]
    for v in entry.values():
        if isinstance(v, dict):
            cands.append(v)
            cands += [x for x in v.values() if isinstance(x, dict)]
    for c in cands:
        if isinstance(c, dict) and c and set(c) <= reasons:
            return {k: v for k, v in c.items() if v}
        if isinstance(c, dict) and isinstance(c.get("by_reason"), dict):
            return {k: v for k, v in c["by_reason"].items() if v}
    if isinstance(entry.get("quarantined"), dict) and not entry["quarantined"]:
        return {}
    if entry.get("quarantined") == 0:
        return {}
    return None


def match_entry(entries, rel):
    for p, e in entries.items():
        pp = p.replace("\\", "/")
        if pp == rel or pp.endswith("/" + rel):
            return e
    return None


def test_manifest_counts(published):
    wh = published["warehouse"]
    errors = []
    for year, exp in published["expected"].items():
        path = wh / "_manifests" / f"year={year}.json"
        assert path.exists(), f"manifest missing: {path}"
        man = json.loads(path.read_text(encoding="utf-8"))
        text = json.dumps(man)
        entries = manifest_file_entries(man)
        input_dir = Path(published["info"]["input"][year])
        for rel, fc in exp["file_counts"].items():
            e = match_entry(entries, rel)
            if e is None:
                errors.append(f"[{year}] manifest has no entry with records read for {rel}")
                continue
            got_read, got_acc = _first(e, READ_KEYS), _first(e, ACCEPTED_KEYS)
            if got_read != fc["records_read"]:
                errors.append(f"[{year}] {rel} records_read {got_read}, "
                              f"expected {fc['records_read']}")
            if got_acc != fc["accepted"]:
                errors.append(f"[{year}] {rel} accepted {got_acc}, expected {fc['accepted']}")
            br = by_reason(e)
            if br is None:
                errors.append(f"[{year}] {rel}: no quarantined-by-reason object in {e}")
            elif br != fc["quarantined"]:
                errors.append(f"[{year}] {rel} quarantined by reason {br}, "
                              f"expected {fc['quarantined']}")
            data = (input_dir / rel).read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            if sha not in json.dumps(e):
                errors.append(f"[{year}] {rel}: sha256 {sha} not in manifest entry")
            size = _first(e, BYTES_KEYS)
            if size is not None and size != len(data):
                errors.append(f"[{year}] {rel}: bytes {size}, file has {len(data)}")
        for rel in exp["ignored_files"]:
            if rel not in text:
                errors.append(f"[{year}] ignored file {rel} not listed in the manifest")
            if match_entry(entries, rel) is not None:
                errors.append(f"[{year}] ignored file {rel} has record counts")
        tot = exp["totals"]
        if tot["records_read"] != tot["accepted"] + tot["quarantined"]:
            errors.append("reference totals inconsistent")  # sanity of the reference itself
    assert_no_errors(errors, f"{published['instrument']} manifest")


# --------------------------------------------------------------------------------------------
# re-run determinism and the quality gate (SPEC 6.3, 3)
# --------------------------------------------------------------------------------------------


def _snapshot(warehouse, year):
    return {t: sorted(map(repr, read_table(warehouse, t, year)[1])) for t in TABLES}


def test_rerun_gives_same_rows(published, tmp_path):
    wh = tmp_path / "warehouse"
    shutil.copytree(published["warehouse"], wh)
    q = tmp_path / "quarantine"
    info, year = published["info"], published["year"]
    before = _snapshot(wh, year)
    run_aggregate(year, info["config"], info["input"][year], info["master"][year],
                  info["regions"], wh, q, cwd=tmp_path)
    after = _snapshot(wh, year)
    for t in TABLES:
        assert before[t] == after[t], f"{t}: re-run on the same inputs changed the data"


def test_quality_gate_keeps_previous_outputs(published, tmp_path):
    info, year = published["info"], published["year"]
    exp = published["expected"][year]
    wh = tmp_path / "warehouse"
    shutil.copytree(published["warehouse"], wh)
    q = tmp_path / "quarantine"
    shutil.copytree(published["quarantine"], q)
    cfg_text = Path(info["config"]).read_text(encoding="utf-8")
    strict = exp["gate_ratio"] / 2
    lines = [(f"max_quarantine_ratio = {strict!r}" if ln.startswith("max_quarantine_ratio")
              else ln) for ln in cfg_text.splitlines()]
    cfg = tmp_path / "strict.toml"
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = _snapshot(wh, year)
    qfile = q / f"year={year}" / "part-00000.parquet"
    qbytes = qfile.read_bytes()
    run_aggregate(year, cfg, info["input"][year], info["master"][year], info["regions"], wh, q,
                  cwd=tmp_path, expect_rc=3)
    assert _snapshot(wh, year) == before, "a run stopped by the quality gate changed the tables"
    assert qfile.read_bytes() == qbytes, "a run stopped by the quality gate changed the quarantine"
    rejected = list((q / "rejected-runs").glob("run_id=*/part-00000.parquet"))
    assert rejected, "no quarantine/rejected-runs/run_id=<id>/part-00000.parquet written"
    con = duckdb.connect()
    n = con.execute(f"SELECT count(*) FROM read_parquet('{rejected[0]}', "
                    f"hive_partitioning=false)").fetchone()[0]
    assert n == len(exp["quarantine"])


def test_config_paths_and_instrument_by_year(published, tmp_path):
    """No path flags: [paths] from the config, relative to the working directory, with {year}
    substituted; for likert the instrument comes from instrument_by_year (instrument = "votes").
    The published rows must equal those of the flag-driven runs."""
    info, root = published["info"], Path(published["root"])
    text = Path(info["config"]).read_text(encoding="utf-8")
    out, section = [], None
    for ln in text.splitlines():
        if ln.startswith("["):
            section = ln
        if section == "[paths]" and "=" in ln:
            key = ln.split("=")[0].strip()
            ln = {"regions": 'regions = "data/regions.csv"',
                  "master": 'master = "data/{year}/institutions.csv"',
                  "input": 'input = "data/{year}/raw"',
                  "warehouse": 'warehouse = "wh-config-paths"',
                  "quarantine": 'quarantine = "q-config-paths"'}[key]
        if published["instrument"] == "likert" and ln.startswith("instrument ="):
            y0, y1 = info["years"]
            ln = (f'instrument = "votes"\n'
                  f'instrument_by_year = {{ "{y0}" = "likert", "{y1}" = "likert" }}')
        out.append(ln)
    cfg = tmp_path / "paths.toml"
    cfg.write_text("\n".join(out) + "\n", encoding="utf-8")
    for year in info["years"]:
        cmd = [BIN, "aggregate", "--year", str(year), "--config", str(cfg), "--quiet"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=str(root))
        assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    wh = root / "wh-config-paths"
    for year in info["years"]:
        assert _snapshot(wh, year) == _snapshot(published["warehouse"], year), year
        assert (root / "q-config-paths" / f"year={year}" / "part-00000.parquet").exists()
