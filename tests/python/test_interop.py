"""BI interoperability of the published warehouse (SPEC 6.1, 6.2, 6.3).

DuckDB (hive_partitioning) and pyarrow.dataset (partitioning="hive") read every table; column
names and order, physical Parquet types, partition layout, string-typed province_code, file
key-value metadata, row order, _SUCCESS markers and quarantine permissions are checked.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import reference

TABLES = ["institution_index", "district_index", "province_index", "national_index",
          "behaviour_scores"]
LEVELS = ["institution", "district", "province", "national"]
PARTITIONS = {
    "institution_index": ["year"],
    "district_index": ["year", "province_code"],
    "province_index": ["year"],
    "national_index": ["year"],
    "behaviour_scores": ["year", "level"],
}
UNIT_KEY = {
    "institution_index": "institution_code",
    "district_index": "district_code",
    "province_index": "province_code",
    "national_index": "country_code",
    "behaviour_scores": "unit_code",
}
META_KEYS = (b"berakhlak.run_id", b"berakhlak.version", b"berakhlak.config_sha256")


def table_files(wh: Path, table: str, year: int):
    base = wh / table / f"year={year}"
    if table in ("district_index", "behaviour_scores"):
        return sorted(base.glob("*/*.parquet"))
    return sorted(base.glob("*.parquet"))


def test_partition_layout(published):
    wh, year = published["warehouse"], published["year"]
    exp = published["expected"][year]
    for t in ("institution_index", "province_index", "national_index"):
        files = table_files(wh, t, year)
        assert [f.name for f in files] == ["part-00000.parquet"], f"{t}: {files}"
    provs = sorted({r["province_code"] for r in exp["district_index"]})
    files = table_files(wh, "district_index", year)
    assert [f.relative_to(wh / "district_index" / f"year={year}").as_posix() for f in files] == \
        [f"province_code={p}/part-00000.parquet" for p in provs]
    files = table_files(wh, "behaviour_scores", year)
    assert sorted(f.relative_to(wh / "behaviour_scores" / f"year={year}").as_posix()
                  for f in files) == sorted(f"level={lv}/part-00000.parquet" for lv in LEVELS)


@pytest.mark.parametrize("table", TABLES)
def test_file_schema_types_metadata_and_order(published, table):
    wh, year = published["warehouse"], published["year"]
    expected_cols = reference.TABLE_COLUMNS[table]
    files = table_files(wh, table, year)
    assert files, f"{table}: no files for year {year}"
    run_ids = set()
    for f in files:
        pf = pq.ParquetFile(f)
        names = pf.schema_arrow.names
        assert names == expected_cols, (
            f"{f}: columns/order differ\n expected {expected_cols}\n found    {names}")
        for p in PARTITIONS[table]:
            assert p not in names, f"{f}: partition column {p} stored inside the file"
        check_physical_types(f, pf, expected_cols)
        kv = pf.metadata.metadata or {}
        for k in META_KEYS:
            assert k in kv and kv[k], f"{f}: key-value metadata {k!r} missing"
        assert re.fullmatch(rb"[0-9a-f]{64}", kv[b"berakhlak.config_sha256"]), \
            f"{f}: config_sha256 is not a hex sha256: {kv[b'berakhlak.config_sha256']!r}"
        run_ids.add(kv[b"berakhlak.run_id"])
        compression = published["config"]["publish"]["compression"].upper()
        rg = pf.metadata.row_group(0) if pf.metadata.num_row_groups else None
        if rg is not None:
            for i in range(rg.num_columns):
                assert rg.column(i).compression == compression, \
                    f"{f}: column {i} compressed {rg.column(i).compression}, config {compression}"
        rows = pf.read().to_pylist()
        assert rows, f"{f}: empty file"
        key = UNIT_KEY[table]
        if table == "behaviour_scores":
            order = [(r[key].encode(), reference.BEHAVIOURS.index(r["behaviour_code"]))
                     for r in rows]
        else:
            order = [r[key].encode() for r in rows]
        assert order == sorted(order), f"{f}: rows not sorted by {key}"
    assert len(run_ids) == 1, f"{table}: files of one year from different runs {run_ids}"


def check_physical_types(path, pf, cols):
    schema = pf.schema  # parquet schema
    arrow = pf.schema_arrow
    for i, c in enumerate(cols):
        t = reference.COLUMN_TYPES[c]
        col = schema.column(i)
        at = arrow.field(c).type
        lt = col.logical_type
        if t == "S":
            assert col.physical_type == "BYTE_ARRAY" and lt.type == "STRING", \
                f"{path}: {c} should be a UTF-8 string, is {col.physical_type}/{lt}"
            assert pa.types.is_string(at) or pa.types.is_large_string(at) or (
                pa.types.is_dictionary(at) and pa.types.is_string(at.value_type)), \
                f"{path}: {c} arrow type {at}"
        elif t == "I":
            assert col.physical_type == "INT64", f"{path}: {c} is {col.physical_type}, not INT64"
            assert lt.type in ("NONE", "INT") and "isSigned=false" not in str(lt), \
                f"{path}: {c} logical type {lt} (unsigned?)"
            assert at == pa.int64(), f"{path}: {c} arrow type {at}"
        elif t == "F":
            assert col.physical_type == "DOUBLE", f"{path}: {c} is {col.physical_type}"
            assert at == pa.float64()
        elif t == "B":
            assert col.physical_type == "BOOLEAN", f"{path}: {c} is {col.physical_type}"
            assert at == pa.bool_()


def test_strings_are_dictionary_encoded(published):
    wh, year = published["warehouse"], published["year"]
    for table in TABLES:
        for f in table_files(wh, table, year):
            pf = pq.ParquetFile(f)
            md = pf.metadata
            for i, c in enumerate(pf.schema_arrow.names):
                if reference.COLUMN_TYPES[c] != "S":
                    continue
                for g in range(md.num_row_groups):
                    cc = md.row_group(g).column(i)
                    if cc.statistics is not None and cc.statistics.has_null_count and \
                            cc.statistics.null_count == md.row_group(g).num_rows:
                        continue  # an all-null chunk needs no dictionary
                    enc = set(cc.encodings)
                    assert enc & {"RLE_DICTIONARY", "PLAIN_DICTIONARY"}, \
                        f"{f}: string column {c} not dictionary-encoded ({enc})"


@pytest.mark.parametrize("table", TABLES)
def test_duckdb_and_pyarrow_read_every_table(published, table):
    wh = published["warehouse"]
    glob = {"district_index": "*/*/*.parquet", "behaviour_scores": "*/*/*.parquet"}.get(
        table, "*/*.parquet")
    con = duckdb.connect()
    cur = con.execute(f"SELECT * FROM read_parquet('{wh}/{table}/{glob}', "
                      f"hive_partitioning=true)")
    cols = [d[0] for d in cur.description]
    duck_rows = cur.fetchall()
    want = reference.TABLE_COLUMNS[table] + [p for p in PARTITIONS[table]
                                             if p not in reference.TABLE_COLUMNS[table]]
    assert set(cols) == set(want), f"duckdb columns {cols}"
    dataset = ds.dataset(str(wh / table), format="parquet", partitioning="hive")
    tbl = dataset.to_table()
    assert set(tbl.column_names) == set(want), f"pyarrow columns {tbl.column_names}"
    assert tbl.num_rows == len(duck_rows) > 0
    years = set(tbl.column("year").to_pylist())
    assert years == {published["prev_year"], published["year"]}, years
    for y in years:
        n = sum(1 for r in duck_rows if r[cols.index("year")] == y)
        assert n == len(published["expected"][y][table]), f"{table} year {y}: {n} rows"


def test_province_code_stays_a_string(published):
    wh, year = published["warehouse"], published["year"]
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT DISTINCT province_code, typeof(province_code) FROM read_parquet("
        f"'{wh}/district_index/*/*/*.parquet', hive_partitioning=true, "
        f"hive_types={{'province_code': VARCHAR}}) WHERE year={year}").fetchall()
    assert {r[1] for r in rows} == {"VARCHAR"}, rows
    vals = sorted(r[0] for r in rows)
    expected = sorted({r["province_code"] for r in published["expected"][year]["district_index"]})
    assert vals == expected and all(isinstance(v, str) and len(v) == 2 for v in vals), vals

    part = ds.partitioning(pa.schema([("year", pa.int32()), ("province_code", pa.string())]),
                           flavor="hive")
    tbl = ds.dataset(str(wh / "district_index"), format="parquet", partitioning=part).to_table()
    assert tbl.schema.field("province_code").type == pa.string()
    got = sorted({v for v, y in zip(tbl.column("province_code").to_pylist(),
                                    tbl.column("year").to_pylist()) if y == year})
    assert got == expected

    # province_index keeps province_code as a real string column inside the file
    t = pq.read_table(table_files(wh, "province_index", year)[0])
    assert t.schema.field("province_code").type in (pa.string(), pa.large_string()) or \
        pa.types.is_dictionary(t.schema.field("province_code").type)
    assert all(isinstance(v, str) for v in t.column("province_code").to_pylist())


def test_success_markers_and_manifest(published):
    wh = published["warehouse"]
    for year in (published["prev_year"], published["year"]):
        for t in TABLES:
            assert (wh / t / f"year={year}" / "_SUCCESS").exists(), f"{t}/year={year}/_SUCCESS"
        man = wh / "_manifests" / f"year={year}.json"
        assert man.exists()
        json.loads(man.read_text(encoding="utf-8"))


def test_all_tables_of_a_year_from_one_run_and_other_year_untouched(published):
    wh = published["warehouse"]
    ids = {}
    for year in (published["prev_year"], published["year"]):
        s = set()
        for t in TABLES:
            for f in table_files(wh, t, year):
                s.add(pq.ParquetFile(f).metadata.metadata[b"berakhlak.run_id"])
        assert len(s) == 1, f"year {year}: several run ids {s}"
        ids[year] = s.pop()
    assert ids[published["prev_year"]] != ids[published["year"]]


def test_quarantine_permissions_and_schema(published):
    q, year = published["quarantine"], published["year"]
    mode = stat.S_IMODE(os.stat(q).st_mode)
    assert mode == 0o700, f"quarantine dir mode {oct(mode)}, expected 0o700"
    for y in (published["prev_year"], year):
        d = q / f"year={y}"
        dmode = stat.S_IMODE(os.stat(d).st_mode)
        assert dmode & 0o077 == 0, f"{d} mode {oct(dmode)} gives group/other access"
        f = d / "part-00000.parquet"
        fmode = stat.S_IMODE(os.stat(f).st_mode)
        assert fmode == 0o600, f"{f} mode {oct(fmode)}, expected 0o600"
    pf = pq.ParquetFile(q / f"year={year}" / "part-00000.parquet")
    names = pf.schema_arrow.names
    assert names[:len(reference.QUARANTINE_COLUMNS)] == reference.QUARANTINE_COLUMNS, names
    check_physical_types(q, pf, reference.QUARANTINE_COLUMNS)
    # respondent-level data never in the warehouse
    wh = published["warehouse"]
    for f in wh.rglob("*.parquet"):
        cols = pq.ParquetFile(f).schema_arrow.names
        assert not {"respondent_key", "response_id", "raw"} & set(cols), f
