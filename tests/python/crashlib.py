"""Helpers for the crash-safety tests (test_crash.py): run the real binary as a child process
and watch its stderr, snapshot directories byte for byte, read the run id of every published
partition, check that DuckDB and pyarrow can read the warehouse, and mount a throw-away tmpfs.

Nothing here knows how the binary works inside; it only looks at what SPEC 6.3 promises:
`_SUCCESS` holding the run id in each partition, `berakhlak.run_id` in each Parquet file's
key-value metadata, the manifest's `run_id`, `_staging/` directories, exit codes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BIN = os.environ.get("BERAKHLAK_BIN") or str(REPO / "target" / "debug" / "berakhlak")

# Swap order is irrelevant to the tests; this is simply every table of SPEC 6.1.
TABLES = ["institution_index", "district_index", "province_index", "national_index",
          "behaviour_scores"]
RUN_ID_KEY = b"berakhlak.run_id"


def require_binary():
    if not os.path.isfile(BIN):
        pytest.skip(f"berakhlak binary not found at {BIN} (build it, or set BERAKHLAK_BIN)")


def clean_env(**extra) -> dict:
    """The inherited environment without any BERAKHLAK_* test switch, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERAKHLAK_")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def aggregate_cmd(cfg, year, warehouse, quarantine, input_dir=None, quiet=False):
    cmd = [BIN, "aggregate", "--year", str(year), "--config", str(cfg),
           "--warehouse", str(warehouse), "--quarantine", str(quarantine)]
    if input_dir is not None:
        cmd += ["--input", str(input_dir)]
    if quiet:
        cmd.append("--quiet")
    return cmd


def recover_cmd(cfg, warehouse):
    return [BIN, "recover", "--config", str(cfg), "--warehouse", str(warehouse)]


def run(cmd, env=None, timeout=300, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else clean_env(), cwd=cwd)


def describe(cmd, proc_or_rc, stdout="", stderr="") -> str:
    if isinstance(proc_or_rc, subprocess.CompletedProcess):
        rc, stdout, stderr = proc_or_rc.returncode, proc_or_rc.stdout, proc_or_rc.stderr
    else:
        rc = proc_or_rc
    return (f"command: {' '.join(map(str, cmd))}\nexit code: {rc}\n"
            f"--- stdout ---\n{stdout[-3000:]}\n--- stderr ---\n{stderr[-3000:]}")


class Child:
    """A running binary whose stderr lines are collected (with arrival times) by a thread, so
    a test can wait for a phase line and then act at a chosen instant."""

    def __init__(self, cmd, env, cwd=None):
        self.cmd = cmd
        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, cwd=cwd, text=True, bufsize=1)
        self.pid = self.proc.pid
        self._out: list[str] = []
        self._t_err = threading.Thread(target=self._read_err, daemon=True)
        self._t_out = threading.Thread(target=self._read_out, daemon=True)
        self._t_err.start()
        self._t_out.start()
        self.ended: float | None = None

    def _read_err(self):
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _read_out(self):
        for line in self.proc.stdout:
            self._out.append(line)

    def wait_for(self, needle: str, timeout: float = 60.0) -> float:
        """Monotonic time at which a stderr line containing `needle` arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for t, line in self.lines:
                    if needle in line:
                        return t
                if self.proc.poll() is not None and not self._t_err.is_alive():
                    raise AssertionError(
                        f"process exited before printing {needle!r}\n"
                        + describe(self.cmd, self.proc.returncode, self.stdout, self.stderr))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no stderr line with {needle!r} within {timeout}s\n"
                                         + describe(self.cmd, None, self.stdout, self.stderr))
                self._cond.wait(min(left, 0.05))

    def poll(self):
        return self.proc.poll()

    def kill(self, sig=signal.SIGKILL):
        os.kill(self.pid, sig)

    def wait(self, timeout: float = 300) -> int:
        rc = self.proc.wait(timeout)
        self.ended = self.ended or time.monotonic()
        self._t_err.join(10)
        self._t_out.join(10)
        return rc

    @property
    def stderr(self) -> str:
        return "\n".join(line for _, line in list(self.lines))

    @property
    def stdout(self) -> str:
        return "".join(self._out)

    def describe(self) -> str:
        return describe(self.cmd, self.proc.returncode, self.stdout, self.stderr)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)


@contextlib.contextmanager
def child(cmd, env, cwd=None):
    c = Child(cmd, env, cwd)
    try:
        yield c
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# Snapshots and run ids
# ---------------------------------------------------------------------------------------------

def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def snapshot(root: Path, skip=lambda rel: False) -> dict[str, str]:
    """rel path -> sha256 of every file under root ('<dir>/' entries for directories), minus
    what `skip(rel)` excludes (a skipped directory is not descended into)."""
    out: dict[str, str] = {}
    root = Path(root)
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        keep = []
        for d in sorted(dirnames):
            if not skip(rel_dir + d):
                keep.append(d)
                out[rel_dir + d + "/"] = "dir"
        dirnames[:] = keep
        for f in filenames:
            rel = rel_dir + f
            if not skip(rel):
                out[rel] = _sha(Path(dirpath) / f)
    return out


def skip_runtime(rel: str) -> bool:
    """Runtime files that any run may touch: the lock file and staging directories."""
    first = rel.split("/", 1)[0]
    return first in ("_lock", "_staging")


def skip_year(year: int):
    """Skips the runtime files and everything belonging to `year`."""
    def skip(rel: str) -> bool:
        parts = rel.split("/")
        return (skip_runtime(rel) or f"year={year}" in parts
                or rel == f"_manifests/year={year}.json")
    return skip


def diff(before: dict, after: dict) -> str:
    lines = []
    for k in sorted(set(before) | set(after)):
        if before.get(k) != after.get(k):
            lines.append(f"  {k}: {'absent' if k not in before else 'present'} -> "
                         f"{'absent' if k not in after else ('changed' if k in before else 'new')}")
    return "\n".join(lines[:40]) + ("\n  ..." if len(lines) > 40 else "")


def success_id(partition: Path) -> str | None:
    p = Path(partition) / "_SUCCESS"
    return p.read_text().strip() if p.is_file() else None


def file_run_id(path: Path) -> str | None:
    md = pq.read_metadata(path).metadata or {}
    v = md.get(RUN_ID_KEY)
    return v.decode() if v is not None else None


def partition_state(partition: Path) -> tuple[str | None, dict[str, str | None], list[str]]:
    """(_SUCCESS run id, {parquet file: its run id}, unexpected entries)."""
    partition = Path(partition)
    files, odd = {}, []
    if not partition.is_dir():
        return None, files, [f"{partition} is missing"]
    for dirpath, _dirs, names in os.walk(partition):
        for n in names:
            p = Path(dirpath) / n
            rel = p.relative_to(partition).as_posix()
            if n.endswith(".parquet") and not n.startswith((".", "_")):
                files[rel] = file_run_id(p)
            elif rel != "_SUCCESS":
                odd.append(rel)
    return success_id(partition), files, odd


def partition_run_id(partition: Path) -> str:
    """The one run id of a partition; AssertionError naming every disagreement otherwise."""
    succ, files, odd = partition_state(partition)
    problems = []
    if succ is None:
        problems.append("no _SUCCESS")
    if not files:
        problems.append("no parquet file")
    ids = {succ} | set(files.values())
    if len(ids) != 1:
        problems.append(f"mixed run ids: _SUCCESS={succ!r}, files={files}")
    if odd:
        problems.append(f"unexpected entries {odd}")
    if problems:
        raise AssertionError(f"{partition}: " + "; ".join(problems))
    return succ


def year_state(warehouse: Path, quarantine: Path, year: int) -> dict[str, str]:
    """{table or 'quarantine': run id} for one year (each partition checked for one run id)."""
    out = {t: partition_run_id(Path(warehouse) / t / f"year={year}") for t in TABLES}
    out["quarantine"] = partition_run_id(Path(quarantine) / f"year={year}")
    return out


def manifest_run_id(warehouse: Path, year: int) -> str | None:
    p = Path(warehouse) / "_manifests" / f"year={year}.json"
    return json.loads(p.read_text())["run_id"] if p.is_file() else None


def staging_left(warehouse: Path, quarantine: Path) -> list[str]:
    out = []
    for root in (warehouse, quarantine):
        st = Path(root) / "_staging"
        if st.is_dir():
            out += [str(p) for p in sorted(st.iterdir())]
    return out


def check_readable(warehouse: Path, quarantine: Path, year: int):
    """Every table's year partition (and the quarantine's) reads in DuckDB with
    hive_partitioning and in pyarrow.dataset with hive partitioning, with as many rows as the
    files' footers announce."""
    con = duckdb.connect()
    try:
        for t in TABLES:
            part = Path(warehouse) / t / f"year={year}"
            files = sorted(p for p in part.rglob("*.parquet"))
            assert files, f"{part}: no parquet file"
            footer_rows = sum(pq.read_metadata(f).num_rows for f in files)
            assert footer_rows > 0, f"{part}: no rows"
            glob = str(Path(warehouse) / t / "**" / "*.parquet")
            n_duck = con.execute(
                "SELECT count(*) FROM read_parquet(?, hive_partitioning = true) WHERE year = ?",
                [glob, year]).fetchone()[0]
            assert n_duck == footer_rows, \
                f"{t}: DuckDB reads {n_duck} rows, the footers say {footer_rows}"
            dset = ds.dataset(str(Path(warehouse) / t), format="parquet", partitioning="hive")
            n_pa = dset.count_rows(filter=ds.field("year") == year)
            assert n_pa == footer_rows, f"{t}: pyarrow reads {n_pa} rows, footers say {footer_rows}"
        qfile = Path(quarantine) / f"year={year}" / "part-00000.parquet"
        n_duck = con.execute("SELECT count(*) FROM read_parquet(?)", [str(qfile)]).fetchone()[0]
        assert n_duck == pq.read_metadata(qfile).num_rows
    finally:
        con.close()


def copy_tree(src: Path, dst: Path):
    shutil.copytree(src, dst, symlinks=True)


# ---------------------------------------------------------------------------------------------
# tmpfs
# ---------------------------------------------------------------------------------------------

_NOT_PERMITTED = ("permission denied", "not permitted", "only root", "must be superuser",
                  "are you root")


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """Mounts a tmpfs of `size` at `path` (created) and always unmounts it. Skips the test when
    mounting is not permitted here (not root, no mount(8), EPERM); fails on any other error."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                            str(path)], capture_output=True, text=True, timeout=30)
        msg = (r.stderr + r.stdout).strip()
    except FileNotFoundError:
        r, msg = None, "no mount(8) on this system"
    if r is None or r.returncode != 0:
        refused = os.geteuid() != 0 or any(s in msg.lower() for s in _NOT_PERMITTED)
        if r is not None and not refused:
            pytest.fail(f"mount -t tmpfs {path} failed: {msg}")
        pytest.skip(f"mounting a tmpfs is not permitted here: {msg or 'mount failed'}")
    try:
        yield path
    finally:
        r = subprocess.run(["umount", str(path)], capture_output=True, text=True)
        if r.returncode != 0:
            time.sleep(0.5)
            r = subprocess.run(["umount", str(path)], capture_output=True, text=True)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", str(path)], capture_output=True, text=True)


def remount_ro(path: Path):
    r = subprocess.run(["mount", "-o", "remount,ro", str(path)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, f"remount,ro {path} failed: {r.stderr}"
