"""Crash safety and operational failures of the real binary (SPEC 3, 6.3, 7).

The binary is attacked from outside: SIGKILL at random instants of a stretched publish,
aborts at named points, a full disk (injected and real), a read-only warehouse, an unwritable
quarantine, inputs that change or break while they are read, and a second run on a locked
warehouse. After each attack the tests look only at what SPEC 6.3 promises: every table's year
partition is wholly one run (its `_SUCCESS` and every file's `berakhlak.run_id` agree), other
years are byte-identical, DuckDB and pyarrow read the warehouse, recovery leaves all tables of
the year, the quarantine and the manifest on one run id and no staging behind.

The test-only switches of src/testhooks.rs stretch or break the run (BERAKHLAK_TEST_STEP_MS,
BERAKHLAK_TEST_PAUSE, BERAKHLAK_FAULT, BERAKHLAK_TEST_FAIL_WRITE); BERAKHLAK_RUN_ID names runs so
that "old" and "new" are known exactly. Tests that need a tmpfs mount one under tmp_path and
skip only when mounting is not permitted. All randomness is seeded.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
import re
import shutil
import signal
import statistics
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

import crashlib as cl
import make_cases

YEAR, PREV_YEAR = 2024, 2023
WRITING = "berakhlak: writing"
STEP_MS = 10           # per publishing step in the SIGKILL test: a publish lasts 0.6-1.2 s
KILLS = 50             # SIGKILLs that must land in the SIGKILL test
SEED = 20240917


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The votes dataset with 2023 and 2024 published once (run ids base2023, base2024)."""
    cl.require_binary()
    root = tmp_path_factory.mktemp("crash")
    info = make_cases.build_dataset(str(root / "data"), "votes")
    wh, q = root / "warehouse", root / "quarantine"
    for year in info["years"]:
        cmd = cl.aggregate_cmd(info["config"], year, wh, q, quiet=True)
        r = cl.run(cmd, env=cl.clean_env(BERAKHLAK_RUN_ID=f"base{year}"))
        assert r.returncode == 0, cl.describe(cmd, r)
    assert info["years"] == [PREV_YEAR, YEAR]
    return SimpleNamespace(info=info, cfg=info["config"], wh=wh, q=q, root=root,
                           input=Path(info["input"][YEAR]),
                           prev_input=Path(info["input"][PREV_YEAR]))


def fresh(base, tmp_path):
    """A private copy of the published warehouse and quarantine."""
    wh, q = tmp_path / "warehouse", tmp_path / "quarantine"
    cl.copy_tree(base.wh, wh)
    cl.copy_tree(base.q, q)
    return wh, q


def copy_input(base, tmp_path, year=YEAR):
    dst = tmp_path / f"input-{year}"
    shutil.copytree(base.input if year == YEAR else base.prev_input, dst)
    return dst


def keep(wh, q, skip=cl.skip_runtime):
    return cl.snapshot(wh, skip), cl.snapshot(q, skip)


def assert_kept(before, wh, q, skip=cl.skip_runtime, what=""):
    wh_before, q_before = before
    wh_now, q_now = cl.snapshot(wh, skip), cl.snapshot(q, skip)
    assert wh_now == wh_before, f"{what}warehouse changed:\n{cl.diff(wh_before, wh_now)}"
    assert q_now == q_before, f"{what}quarantine changed:\n{cl.diff(q_before, q_now)}"


def assert_one_run(wh, q, run_id, what=""):
    state = cl.year_state(wh, q, YEAR)
    assert set(state.values()) == {run_id}, f"{what}expected every table on {run_id}: {state}"
    assert cl.manifest_run_id(wh, YEAR) == run_id, \
        f"{what}manifest run_id {cl.manifest_run_id(wh, YEAR)!r}, tables on {run_id}"
    left = cl.staging_left(wh, q)
    assert not left, f"{what}staging left behind: {left}"


def accepted_rows(base, year, name="a_main.csv"):
    """(header, rows) of the records of a dump that the base run accepted: single-line, UTF-8,
    well-formed CSV lines not listed in that year's quarantine (by line number)."""
    src = (base.input if year == YEAR else base.prev_input) / name
    rejected = {r["line_number"] for r in
                pq.read_table(base.q / f"year={year}" / "part-00000.parquet").to_pylist()
                if r["source_file"] == name}
    lines = src.read_bytes().split(b"\n")
    header = next(csv.reader([lines[0].decode("utf-8-sig").strip()]))
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if number in rejected or not line.strip() or b"\r" in line or line.count(b'"') % 2:
            continue                            # rejected, blank, or part of a multi-line record
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            continue
        parsed = list(csv.reader([text]))
        if len(parsed) == 1 and len(parsed[0]) == len(header):
            rows.append(parsed[0])
    assert len(rows) > 100, f"only {len(rows)} usable rows in {src}"
    return header, rows


def write_csv(path, header, rows, n=None, tag="X", note=0):
    """Writes header + n rows cycling over `rows`, each with a fresh response_id and
    respondent_key (so nothing is deduplicated away); with note > 0, an extra free-text column
    `catatan` of that many characters (ignored by the reader) makes the file bigger."""
    n = len(rows) if n is None else n
    ri, ki = header.index("response_id"), header.index("respondent_key")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header + (["catatan"] if note else []))
    extra = ["catatan " + "x" * note] if note else []
    for i in range(n):
        r = list(rows[i % len(rows)])
        r[ri], r[ki] = f"{tag}-{i:07d}", f"{tag.lower()}key{i:07d}"
        w.writerow(r + extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# 1. SIGKILL anywhere in a publish
# ---------------------------------------------------------------------------------------------

def measure_publish(cmd, wh, q, run_id):
    """Runs one stretched publish to the end, watching the live partitions: returns (window
    from the "writing" line to exit, fraction of it at which the first table showed the new
    run, fraction at which the manifest did)."""
    marks = {}
    with cl.child(cmd, cl.clean_env(BERAKHLAK_TEST_STEP_MS=STEP_MS, BERAKHLAK_RUN_ID=run_id)) as c:
        t0 = c.wait_for(WRITING)
        while c.poll() is None:
            now = time.monotonic()
            if "swap" not in marks and any(cl.success_id(wh / t / f"year={YEAR}") == run_id
                                           for t in cl.TABLES):
                marks["swap"] = now - t0
            if "manifest" not in marks and cl.manifest_run_id(wh, YEAR) == run_id:
                marks["manifest"] = now - t0
            time.sleep(0.002)
        rc = c.wait()
        assert rc == 0, c.describe()
    window = c.ended - t0
    assert_one_run(wh, q, run_id)
    swap = marks.get("swap", 0.8 * window)
    manifest = marks.get("manifest", 0.9 * window)
    return window, swap / window, manifest / window


def test_sigkill_during_publish(base, tmp_path):
    # On tmp_path's own (disk) filesystem on purpose: its fsyncs widen the gaps between a run's
    # steps as they are in production (on a tmpfs some windows shrink to nothing).
    wh, q = fresh(base, tmp_path)
    cmd = cl.aggregate_cmd(base.cfg, YEAR, wh, q)
    other_year = keep(wh, q, cl.skip_year(YEAR))

    # How long does a stretched publish take from the "writing" line to exit, and when do the
    # swaps happen? (two runs; later runs that end before their kill refine the window)
    runs = [measure_publish(cmd, wh, q, f"measure{i}") for i in range(2)]
    windows = [r[0] for r in runs]
    swap_at = statistics.median(r[1] for r in runs)
    manifest_at = statistics.median(r[2] for r in runs)
    assert min(windows) > 0.2, f"publish windows {windows}: BERAKHLAK_TEST_STEP_MS has no effect?"
    prev = "measure1"

    rng = random.Random(SEED)
    # The kill plan, in random order: 60% at a fraction of the window, stratified over all of
    # it (early and late kills guaranteed); 16% at a delay after the first partition swap
    # (spread over the swaps); 12% just after the manifest is renamed into place, 12% just
    # after the journal is removed (the clean-up: staging directories being deleted). The
    # anchored kills watch the live directory's or the manifest's inode (a rename changes it)
    # and the journal file (ARCHITECTURE "Publishing and recovery").
    n_swap, n_tail = KILLS * 4 // 25, KILLS * 3 // 25
    swap_span = max(0.01, (manifest_at - swap_at) * statistics.median(windows))

    def stratified(lo, hi, n):
        return [lo + (hi - lo) * (i + rng.random()) / n for i in range(n)]

    plan = [("window", f) for f in stratified(0.0, 1.0, KILLS - n_swap - 2 * n_tail)]
    plan += [("swap", d) for d in stratified(0.0, swap_span, n_swap)]
    plan += [("manifest", d) for d in stratified(0.0, 0.02, n_tail)]
    plan += [("journal", d) for d in stratified(0.0, 0.002, n_tail)]
    rng.shuffle(plan)
    anchors = {"swap": wh / "institution_index" / f"year={YEAR}",
               "manifest": wh / "_manifests" / f"year={YEAR}.json",
               "journal": wh / "_manifests" / f"year={YEAR}.json"}
    stats = {"old": 0, "mixed": 0, "all_new": 0, "finished": 0}
    kills = attempt = 0
    while kills < KILLS:
        assert attempt < KILLS + 25, f"only {kills} kills landed in {attempt} attempts: {stats}"
        kind, x = plan[attempt] if attempt < len(plan) else ("window", rng.uniform(0.0, 0.95))
        window = statistics.median(windows)
        kill_id = f"kill{attempt:03d}"
        aim = f"{x:.3f} of {window:.3f}s" if kind == "window" else \
            f"{x * 1000:.1f} ms after the {kind} {'was removed' if kind == 'journal' else 'moved'}"
        what = f"attempt {attempt} (kill at {aim}, run {kill_id}): "
        env = cl.clean_env(BERAKHLAK_TEST_STEP_MS=STEP_MS, BERAKHLAK_RUN_ID=kill_id)
        inode = os.stat(anchors[kind]).st_ino if kind != "window" else None
        with cl.child(cmd, env) as c:
            t0 = c.wait_for(WRITING)
            if kind == "window":
                at = t0 + x * window
            else:
                while c.poll() is None and os.stat(anchors[kind]).st_ino == inode:
                    time.sleep(0.0003)
                if kind == "journal":  # the manifest is in place: now wait for the journal to go
                    journal = wh / "_staging" / kill_id / "JOURNAL.json"
                    while c.poll() is None and journal.exists():
                        time.sleep(0.0002)
                at = time.monotonic() + x
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if c.poll() is None:
                c.kill()
            rc = c.wait()
            assert rc in (0, -signal.SIGKILL), what + c.describe()
            if rc == 0 and kind == "window":
                windows.append(c.ended - t0)
        attempt += 1

        # Before any recovery: each partition wholly old or wholly new and readable, the other
        # year untouched, the new manifest only over wholly new tables.
        try:
            state = cl.year_state(wh, q, YEAR)
        except AssertionError as e:
            raise AssertionError(what + str(e)) from None
        strangers = {k: v for k, v in state.items() if v not in (prev, kill_id)}
        assert not strangers, what + f"partitions from neither {prev} nor {kill_id}: {strangers}"
        cl.check_readable(wh, q, YEAR)
        assert_kept(other_year, wh, q, cl.skip_year(YEAR), what)
        manifest = cl.manifest_run_id(wh, YEAR)
        assert manifest in (prev, kill_id), what + f"manifest run_id {manifest!r}"
        if manifest == kill_id:
            assert set(state.values()) == {kill_id}, what + f"new manifest over old tables {state}"
        new = [k for k, v in state.items() if v == kill_id]
        if rc == 0:
            stats["finished"] += 1
            assert set(state.values()) == {kill_id} and manifest == kill_id, what + str(state)
        else:
            kills += 1
            stats["old" if not new else "mixed" if len(new) < len(state) else "all_new"] += 1
        left_behind = (wh / "_staging" / kill_id).exists()
        # What recovery must do (ARCHITECTURE "Publishing and recovery"): roll forward once the
        # journal says swapping (or the swap is over), roll back before.
        journal = wh / "_staging" / kill_id / "JOURNAL.json"
        journal_was = json.loads(journal.read_text()).get("state") if journal.is_file() else "gone"
        swapping = journal_was == "swapping"
        expected = kill_id if (swapping or new or manifest == kill_id) else prev

        # The next normal run recovers first, then publishes: one run id everywhere. It is
        # paused after reading (recovery done, nothing of its own staged yet) to check what
        # recovery left.
        next_id = f"next{attempt - 1:03d}"
        env = cl.clean_env(BERAKHLAK_RUN_ID=next_id, BERAKHLAK_TEST_PAUSE="before-publish:100")
        with cl.child(cmd, env) as c:
            c.wait_for("before-publish")
            left = cl.staging_left(wh, q)
            recovered = cl.year_state(wh, q, YEAR)
            recovered_manifest = cl.manifest_run_id(wh, YEAR)
            rc_next = c.wait()
        assert rc_next == 0, what + "the next run failed\n" + c.describe()
        assert not left, what + f"staging left after recovery: {left} (after the kill: journal " \
            f"{journal_was}, warehouse staging {'present' if left_behind else 'absent'}, " \
            f"tables {state})"
        assert set(recovered.values()) == {expected} and recovered_manifest == expected, \
            what + f"recovery should leave every table on {expected} (journal {journal_was}): " \
            f"{recovered}, manifest {recovered_manifest}"
        if left_behind:
            assert kill_id in c.stderr, what + f"the staging of {kill_id} was left, but the " \
                "next run does not report recovering it\n" + c.stderr[-2000:]
        assert_one_run(wh, q, next_id, what + "after the next run: ")
        assert_kept(other_year, wh, q, cl.skip_year(YEAR), what + "after the next run: ")
        prev = next_id

    print(f"\nSIGKILL test: window "
          f"{statistics.median(windows):.3f}s (swaps from {swap_at:.2f}, manifest at "
          f"{manifest_at:.2f}), {attempt} attempts: {stats}")
    assert stats["old"] > 0, f"no kill landed before the swap began: {stats}"
    assert stats["mixed"] + stats["all_new"] > 0, f"no kill landed after the swap began: {stats}"


# ---------------------------------------------------------------------------------------------
# 2. Aborts at named points, then `recover`
# ---------------------------------------------------------------------------------------------

FAULT_POINTS = ["after-journal", "after-swap-institution_index", "after-swap-district_index",
                "after-swap-quarantine", "before-commit"]


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_recover_command_after_fault_points(base, tmp_path, point):
    wh, q = fresh(base, tmp_path)
    cfg = base.cfg
    other_year = keep(wh, q, cl.skip_year(YEAR))
    crash_id = f"crash-{point}"
    cmd = cl.aggregate_cmd(cfg, YEAR, wh, q, quiet=True)
    r = cl.run(cmd, env=cl.clean_env(BERAKHLAK_FAULT=point, BERAKHLAK_RUN_ID=crash_id))
    assert r.returncode == -signal.SIGABRT, "expected a crash (SIGABRT)\n" + cl.describe(cmd, r)

    # The crash itself leaves every partition wholly one run and readable.
    state = cl.year_state(wh, q, YEAR)
    assert set(state.values()) <= {"base2024", crash_id}, state
    if point.startswith("after-swap-"):
        swapped = point[len("after-swap-"):]
        assert state[swapped] == crash_id, f"{swapped} not swapped at {point}: {state}"
    else:
        assert set(state.values()) == {"base2024"}, f"live data modified before {point}: {state}"
    cl.check_readable(wh, q, YEAR)
    assert (wh / "_staging" / crash_id).is_dir(), "the crashed run left no staging to recover"

    rec = cl.recover_cmd(cfg, wh)
    r = cl.run(rec)
    assert r.returncode == 0, cl.describe(rec, r)
    assert crash_id in r.stdout + r.stderr, "recover does not say which run it handled\n" + \
        cl.describe(rec, r)
    expected = "base2024" if point == "before-commit" else crash_id
    assert_one_run(wh, q, expected, f"after recover ({point}): ")
    cl.check_readable(wh, q, YEAR)
    assert_kept(other_year, wh, q, cl.skip_year(YEAR), f"after recover ({point}): ")

    after = keep(wh, q)
    r = cl.run(rec)
    assert r.returncode == 0, cl.describe(rec, r)
    assert "nothing" in (r.stdout + r.stderr).lower(), \
        "a second recover should say there is nothing to do\n" + cl.describe(rec, r)
    assert_kept(after, wh, q, what="second recover: ")


# ---------------------------------------------------------------------------------------------
# 3. Disk full
# ---------------------------------------------------------------------------------------------

def test_disk_full_injected(base, tmp_path):
    wh, q = fresh(base, tmp_path)
    before = keep(wh, q)
    cmd = cl.aggregate_cmd(base.cfg, YEAR, wh, q, quiet=True)
    r = cl.run(cmd, env=cl.clean_env(BERAKHLAK_TEST_FAIL_WRITE="district_index",
                                      BERAKHLAK_RUN_ID="enospc"))
    assert r.returncode == 1, cl.describe(cmd, r)
    assert re.search(re.escape(str(wh)) + r"\S*district_index\S*\.parquet", r.stderr), \
        "the error should name the file that could not be written\n" + r.stderr
    assert "No space left" in r.stderr and "os error 28" in r.stderr, r.stderr
    assert_kept(before, wh, q, what="after ENOSPC: ")
    cl.check_readable(wh, q, YEAR)
    assert set(cl.year_state(wh, q, YEAR).values()) == {"base2024"}

    r = cl.run(cmd, env=cl.clean_env(BERAKHLAK_RUN_ID="after-enospc"))
    assert r.returncode == 0, cl.describe(cmd, r)
    assert_one_run(wh, q, "after-enospc", "next run after ENOSPC: ")


def test_disk_full_real(base, tmp_path):
    header, rows = accepted_rows(base, PREV_YEAR)
    tiny_in = tmp_path / "tiny-input"
    write_csv(tiny_in / "tiny.csv", header, rows[:40], tag="TINY")
    need = sum(p.stat().st_size for t in cl.TABLES
               for p in (base.wh / t / f"year={YEAR}").rglob("*.parquet"))
    mnt = tmp_path / "small-fs"
    with cl.tmpfs(mnt, "300k"):
        wh, q = mnt / "warehouse", tmp_path / "quarantine"
        cmd0 = cl.aggregate_cmd(base.cfg, PREV_YEAR, wh, q, input_dir=tiny_in, quiet=True)
        r = cl.run(cmd0, env=cl.clean_env(BERAKHLAK_RUN_ID="tiny2023"))
        assert r.returncode == 0, cl.describe(cmd0, r)
        before = keep(wh, q)
        st = os.statvfs(mnt)
        free = st.f_bavail * st.f_frsize
        assert need > free, f"test setup: 2024 needs {need} bytes, {free} free: not a full disk"

        cmd = cl.aggregate_cmd(base.cfg, YEAR, wh, q, quiet=True)
        r = cl.run(cmd, env=cl.clean_env(BERAKHLAK_RUN_ID="real-enospc"))
        assert r.returncode == 1, cl.describe(cmd, r)
        assert "No space left on device" in r.stderr, r.stderr
        assert str(wh) in r.stderr, "the error should name the path\n" + r.stderr
        assert_kept(before, wh, q, what="after a real ENOSPC: ")
        assert not (wh / "institution_index" / f"year={YEAR}").exists()

        # recover (or the next run) gives the space back.
        rec = cl.recover_cmd(base.cfg, wh)
        r = cl.run(rec)
        assert r.returncode == 0, cl.describe(rec, r)
        assert cl.staging_left(wh, q) == []
        assert_kept(before, wh, q, what="after recover: ")


# ---------------------------------------------------------------------------------------------
# 4. Read-only or missing output locations
# ---------------------------------------------------------------------------------------------

def test_read_only_warehouse(base, tmp_path):
    mnt = tmp_path / "ro-fs"
    with cl.tmpfs(mnt, "64m"):
        wh, q = mnt / "warehouse", tmp_path / "quarantine"
        cmd = cl.aggregate_cmd(base.cfg, YEAR, wh, q, quiet=True)
        r = cl.run(cmd, env=cl.clean_env(BERAKHLAK_RUN_ID="on-tmpfs"))
        assert r.returncode == 0, cl.describe(cmd, r)
        before = keep(wh, q, skip=lambda rel: False)
        cl.remount_ro(mnt)
        r = cl.run(cmd, env=cl.clean_env(BERAKHLAK_RUN_ID="read-only"))
        assert r.returncode in (1, 2), cl.describe(cmd, r)
        assert str(wh) in r.stderr, "the error should name the warehouse path\n" + r.stderr
        assert "Read-only file system" in r.stderr or "os error 30" in r.stderr, r.stderr
        assert r.stderr.count("\n") < 20, "expected one clear message\n" + r.stderr
        assert_kept(before, wh, q, skip=lambda rel: False, what="read-only warehouse: ")


def test_missing_warehouse_parent(base, tmp_path):
    wh = tmp_path / "nonexistent" / "x" / "wh"
    q = tmp_path / "quarantine"
    cmd = cl.aggregate_cmd(base.cfg, YEAR, wh, q, quiet=True)
    r = cl.run(cmd)
    assert r.returncode == 2, cl.describe(cmd, r)
    assert "does not exist" in r.stderr and str(wh.parent) in r.stderr, r.stderr
    assert not (tmp_path / "nonexistent").exists(), "something was created under the typo"
    assert not q.exists(), "the quarantine was created by a run that could not start"


def test_unwritable_quarantine(base, tmp_path):
    """--quarantine under a regular file: refused with a clear message, nothing published."""
    wh, q = fresh(base, tmp_path)
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory\n")
    bad_q = a_file / "q"
    before = keep(wh, q)
    cmd = cl.aggregate_cmd(base.cfg, YEAR, wh, bad_q, quiet=True)
    r = cl.run(cmd, env=cl.clean_env(BERAKHLAK_RUN_ID="bad-quarantine"))
    assert r.returncode in (1, 2), cl.describe(cmd, r)
    assert str(a_file) in r.stderr, "the error should name the quarantine path\n" + r.stderr
    assert a_file.read_text() == "not a directory\n"
    assert_kept(before, wh, q, what="unwritable quarantine: ")
    assert set(cl.year_state(wh, q, YEAR).values()) == {"base2024"}

    good = cl.aggregate_cmd(base.cfg, YEAR, wh, q, quiet=True)
    r = cl.run(good, env=cl.clean_env(BERAKHLAK_RUN_ID="good-quarantine"))
    assert r.returncode == 0, cl.describe(good, r)
    assert_one_run(wh, q, "good-quarantine", "next run: ")


def test_read_only_quarantine(base, tmp_path):
    """--quarantine on a read-only filesystem: refused naming the path, nothing published."""
    wh = tmp_path / "warehouse"
    cl.copy_tree(base.wh, wh)
    mnt = tmp_path / "ro-quarantine"
    with cl.tmpfs(mnt, "16m"):
        q = mnt / "quarantine"
        cmd = cl.aggregate_cmd(base.cfg, YEAR, wh, q, quiet=True)
        r = cl.run(cmd, env=cl.clean_env(BERAKHLAK_RUN_ID="q-on-tmpfs"))
        assert r.returncode == 0, cl.describe(cmd, r)
        before = keep(wh, q)
        cl.remount_ro(mnt)
        r = cl.run(cmd, env=cl.clean_env(BERAKHLAK_RUN_ID="q-read-only"))
        assert r.returncode in (1, 2), cl.describe(cmd, r)
        assert str(q) in r.stderr, "the error should name the quarantine path\n" + r.stderr
        assert "Read-only file system" in r.stderr or "os error 30" in r.stderr, r.stderr
        assert_kept(before, wh, q, what="read-only quarantine: ")
        assert set(cl.year_state(wh, q, YEAR).values()) == {"q-on-tmpfs"}


# ---------------------------------------------------------------------------------------------
# 5. Inputs that change or break during the run
# ---------------------------------------------------------------------------------------------

def run_changing_input(base, wh, q, input_dir, point, run_id, change):
    """Runs `aggregate`, pauses it at `point` and calls `change()` meanwhile; returns the exit
    code and the finished child."""
    cmd = cl.aggregate_cmd(base.cfg, YEAR, wh, q, input_dir=input_dir)
    env = cl.clean_env(BERAKHLAK_TEST_PAUSE=f"{point}:1500", BERAKHLAK_RUN_ID=run_id)
    with cl.child(cmd, env) as c:
        c.wait_for(point, timeout=120)
        assert c.poll() is None, "the run ended before the pause"
        change()
        rc = c.wait()
    return rc, c


def test_input_truncated_mid_run(base, tmp_path):
    wh, q = fresh(base, tmp_path)
    header, rows = accepted_rows(base, YEAR)
    # 40960 records of ~1.2 KB (~48 MB): far more than the reader holds ahead of the first
    # pause (a few batches of records, or of MiB chunks), so the truncation lands mid-read.
    big = write_csv(tmp_path / "big-input" / "big.csv", header, rows, n=40960, tag="BIG",
                    note=1000)
    before = keep(wh, q)
    # Paused after the first batch.
    rc, c = run_changing_input(base, wh, q, big.parent, "after-batch", "truncated",
                               lambda: os.truncate(big, big.stat().st_size // 2))
    assert rc == 1, c.describe()
    assert "big.csv" in c.stderr, "the error should name the file\n" + c.stderr
    assert WRITING not in c.stderr, "publishing started on a truncated input"
    assert_kept(before, wh, q, what="truncated input: ")


def test_input_rewritten_in_place_between_reads(base, tmp_path):
    """A dump rewritten in place after the first read, same size and modification time, is
    caught by the second read (for the records deduplication rejected) through its digest."""
    wh, q = fresh(base, tmp_path)
    in_dir = copy_input(base, tmp_path)
    quarantined = pq.read_table(base.q / f"year={YEAR}" / "part-00000.parquet").to_pylist()
    reread = sorted({r["source_file"] for r in quarantined
                     if r["reason"] == "superseded" and not r["source_file"].endswith(".gz")})
    assert reread, "the base input should hold resubmissions in a plain CSV dump"
    victim = in_dir / reread[0]
    before = keep(wh, q)

    def rewrite():
        st = victim.stat()
        data = bytearray(victim.read_bytes())
        at = max(i for i, b in enumerate(data) if chr(b).isalpha())   # a letter near the end
        data[at] ^= 0x20                                              # same size, case swapped
        victim.write_bytes(bytes(data))
        os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert victim.stat().st_size == st.st_size

    rc, c = run_changing_input(base, wh, q, in_dir, "before-reread", "rewritten", rewrite)
    assert rc == 1, c.describe()
    assert reread[0] in c.stderr and "differs between two reads" in c.stderr, c.stderr
    assert WRITING not in c.stderr, "publishing started on a rewritten input"
    assert_kept(before, wh, q, what="rewritten input: ")


def test_input_removed_mid_run(base, tmp_path):
    wh, q = fresh(base, tmp_path)
    in_dir = copy_input(base, tmp_path)
    victim = in_dir / "a_main.csv"
    before = keep(wh, q)
    rc, c = run_changing_input(base, wh, q, in_dir, "before-publish", "removed", victim.unlink)
    assert rc == 1, c.describe()
    assert "a_main.csv" in c.stderr, "the error should name the file\n" + c.stderr
    assert_kept(before, wh, q, what="removed input: ")


def test_corrupt_gzip(base, tmp_path):
    wh, q = fresh(base, tmp_path)
    in_dir = copy_input(base, tmp_path)
    gz = in_dir / "c_tab.csv.gz"
    data = bytearray(gz.read_bytes())
    rng = random.Random(SEED)
    mid = len(data) // 2
    data[mid - 128:mid + 128] = bytes(rng.getrandbits(8) for _ in range(256))
    gz.write_bytes(bytes(data))
    with pytest.raises((OSError, EOFError, zlib.error)):
        gzip.decompress(bytes(data))          # the file really is corrupt, not just odd
    before = keep(wh, q)
    cmd = cl.aggregate_cmd(base.cfg, YEAR, wh, q, input_dir=in_dir, quiet=True)
    r = cl.run(cmd, env=cl.clean_env(BERAKHLAK_RUN_ID="corrupt-gzip"))
    assert r.returncode == 1, cl.describe(cmd, r)
    assert "c_tab.csv.gz" in r.stderr, "the error should name the file\n" + r.stderr
    assert_kept(before, wh, q, what="corrupt gzip: ")


# ---------------------------------------------------------------------------------------------
# 6. The warehouse lock
# ---------------------------------------------------------------------------------------------

TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})")


def test_second_run_locked(base, tmp_path):
    wh, q = fresh(base, tmp_path)
    cmd = cl.aggregate_cmd(base.cfg, YEAR, wh, q)
    launched = datetime.now(timezone.utc)
    with cl.child(cmd, cl.clean_env(BERAKHLAK_TEST_STEP_MS=200, BERAKHLAK_RUN_ID="holder")) as a:
        a.wait_for(WRITING)
        t0 = time.monotonic()
        r = cl.run(cmd, env=cl.clean_env(BERAKHLAK_RUN_ID="second"), timeout=60)
        took = time.monotonic() - t0
        assert r.returncode == 4, cl.describe(cmd, r)
        assert a.poll() is None, "the first run ended before the second was refused"
        assert took < 1.0, f"the second run took {took:.2f}s to be refused"
        assert re.search(rf"\b{a.pid}\b", r.stderr), \
            f"the message should name the holder's pid {a.pid}\n" + r.stderr
        stamps = [datetime.fromisoformat(s.replace(" ", "T")) for s in TIMESTAMP.findall(r.stderr)]
        assert any(abs((s - launched).total_seconds()) < 30 for s in stamps if s.tzinfo), \
            f"the message should give the holder's start time (~{launched:%H:%M:%S}Z)\n" + r.stderr
        assert not (wh / "_staging" / "second").exists()
        rc = a.wait()
        assert rc == 0, a.describe()
    assert_one_run(wh, q, "holder")

    # A holder killed mid-publish does not block the next run.
    with cl.child(cmd, cl.clean_env(BERAKHLAK_TEST_STEP_MS=200, BERAKHLAK_RUN_ID="dead")) as d:
        d.wait_for(WRITING)
        time.sleep(0.5)
        assert d.poll() is None
        d.kill()
        assert d.wait() == -signal.SIGKILL
    r = cl.run(cmd, env=cl.clean_env(BERAKHLAK_RUN_ID="after-dead"), timeout=120)
    assert r.returncode == 0, "blocked by a dead run's lock?\n" + cl.describe(cmd, r)
    assert_one_run(wh, q, "after-dead")
