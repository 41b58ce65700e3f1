"""Checks that two warehouses (and their quarantines) publish identical data, row for row.

Used when optimising: run the previous version and the new one on the same inputs, then
    python bench/identical.py OLD_WAREHOUSE NEW_WAREHOUSE [OLD_QUARANTINE NEW_QUARANTINE]
Every table is read whole, sorted on all columns, and compared value for value (floats
exactly, not to a tolerance). File metadata (run_id) may differ. Exit 0 when identical.
"""

import sys
from pathlib import Path

import pyarrow.dataset as ds

TABLES = ["institution_index", "district_index", "province_index", "national_index", "behaviour_scores"]


def load(root: Path):
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    columns = sorted(table.column_names)
    table = table.select(columns)
    return table.sort_by([(c, "ascending") for c in columns])


def compare(name: str, old: Path, new: Path) -> bool:
    a, b = load(old), load(new)
    if a.schema != b.schema:
        print(f"{name}: schemas differ\n  old {a.schema}\n  new {b.schema}")
        return False
    if a.num_rows != b.num_rows:
        print(f"{name}: {a.num_rows} rows before, {b.num_rows} now")
        return False
    for column in a.column_names:
        if not a[column].equals(b[column]):
            print(f"{name}: column {column} differs")
            return False
    print(f"{name}: {a.num_rows} rows identical")
    return True


def main() -> int:
    args = [Path(a) for a in sys.argv[1:]]
    if len(args) not in (2, 4):
        print(__doc__)
        return 2
    same = all([compare(t, args[0] / t, args[1] / t) for t in TABLES])
    if len(args) == 4:
        same = compare("quarantine", args[2], args[3]) and same
    print("IDENTICAL" if same else "DIFFERENT")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
