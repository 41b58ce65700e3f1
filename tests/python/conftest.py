"""Shared fixtures: build the adversarial datasets, run the real berakhlak binary on them
(previous year first, then the year under test) and compute the reference expectations.

The binary is taken from $BERAKHLAK_BIN, default <repo>/target/debug/berakhlak. Tests that need
it are skipped only when that file does not exist; any other failure (including a binary that
does not understand ``aggregate``) fails loudly.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

import make_cases  # noqa: E402
import reference  # noqa: E402

BIN = os.environ.get("BERAKHLAK_BIN") or str(REPO / "target" / "debug" / "berakhlak")
INSTRUMENTS = ["votes", "likert"]


def require_binary():
    if not os.path.isfile(BIN):
        pytest.skip(f"berakhlak binary not found at {BIN} (build it, or set BERAKHLAK_BIN)")


def run_aggregate(year, cfg, input_dir, master, regions, warehouse, quarantine, cwd,
                  expect_rc=0):
    cmd = [BIN, "aggregate", "--year", str(year), "--config", str(cfg), "--input",
           str(input_dir), "--master", str(master), "--regions", str(regions), "--warehouse",
           str(warehouse), "--quarantine", str(quarantine), "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=str(cwd))
    if expect_rc is not None:
        assert proc.returncode == expect_rc, (
            f"command: {' '.join(cmd)}\nexit code {proc.returncode}, expected {expect_rc}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="session", params=INSTRUMENTS)
def published(request, tmp_path_factory):
    """Dataset + warehouse after publishing both years, with the reference expectations."""
    require_binary()
    instrument = request.param
    root = tmp_path_factory.mktemp(f"berakhlak-{instrument}")
    info = make_cases.build_dataset(str(root / "data"), instrument)
    with open(info["config"], "rb") as fh:
        cfg = tomllib.load(fh)
    wh, q = root / "warehouse", root / "quarantine"
    expected, prev = {}, None
    for year in info["years"]:
        run_aggregate(year, info["config"], info["input"][year], info["master"][year],
                      info["regions"], wh, q, cwd=root)
        exp = reference.compute(year, info["master"][year], info["regions"],
                                info["input"][year], cfg, prev)
        prev = reference.prev_from(exp)
        expected[year] = exp
    return {"instrument": instrument, "info": info, "config": cfg, "root": root,
            "warehouse": wh, "quarantine": q, "expected": expected,
            "year": info["years"][-1], "prev_year": info["years"][0]}
