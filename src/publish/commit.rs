//! Crash-safe publishing: staging, a swap journal, atomic directory exchange, recovery, and
//! the warehouse lock (SPEC 6.3).
//!
//! A run writes every table's new year partition under `_staging/<run_id>/` and fsyncs it.
//! It then writes a journal (state `swapping`) and exchanges each staged directory with the
//! live one using `renameat2(RENAME_EXCHANGE)`: one atomic step, so a reader sees the old
//! partition or the new one, never a mix or nothing. The manifest is renamed into place last,
//! then the journal and the staging directory (now holding the old data) are removed.
//!
//! If the process dies before the journal says `swapping`, recovery deletes the staging
//! directory (roll back). If it dies after, recovery finishes the swaps (roll forward); each
//! swap checks the live partition's `_SUCCESS` run id first, so recovery is idempotent.
//!
//! **Invariant:** nothing outside `_staging/` is modified before the journal says `swapping`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::testhooks;

/// Name of the staging directory under the warehouse root.
pub const STAGING_DIR: &str = "_staging";
/// Journal file name inside a run's staging directory.
const JOURNAL: &str = "JOURNAL.json";
/// Marker written into every published partition; its content is the run id.
pub const SUCCESS: &str = "_SUCCESS";
/// Lock file under the warehouse root.
pub const LOCK_FILE: &str = "_lock";

/// fsyncs a directory so that renames and creations inside it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, "syncing directory", e))
}

/// Creates `dir` and missing parents with `mode`, syncing each parent it created into.
pub fn create_dirs(dir: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() {
            create_dirs(parent, mode)?;
        }
    }
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(Error::io(dir, "creating directory", e)),
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Writes a small file durably: temporary file, fsync, rename, fsync of the directory.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tmp", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| Error::io(&tmp, "creating", e))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| Error::io(&tmp, "writing", e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path, "renaming into place", e))?;
    sync_dir(dir)
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io(path, "resolving", e))
}

/// The run id recorded in a partition's `_SUCCESS`, if any.
pub fn partition_run_id(partition: &Path) -> Option<String> {
    let mut s = String::new();
    File::open(partition.join(SUCCESS)).ok()?.read_to_string(&mut s).ok()?;
    Some(s.trim().to_string())
}

/// One directory to be swapped into place.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// What it is, e.g. `institution_index`.
    pub name: String,
    /// The live partition, e.g. `warehouse/institution_index/year=2024`.
    pub live: PathBuf,
    /// The staged partition.
    pub staged: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum State {
    Staging,
    Swapping,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journal {
    run_id: String,
    state: State,
    entries: Vec<Entry>,
    /// (staged, live) of the manifest.
    manifest: Option<(PathBuf, PathBuf)>,
    /// Staging directories outside this one (the quarantine's), removed at the end.
    extra_staging: Vec<PathBuf>,
}

/// A publish in progress.
pub struct Transaction {
    dir: PathBuf,
    journal: Journal,
}

impl Transaction {
    /// Creates `<warehouse>/_staging/<run_id>/`.
    pub fn begin(warehouse: &Path, run_id: &str) -> Result<Transaction> {
        // The journal holds absolute paths, so `recover` works from any directory.
        let warehouse = std::path::absolute(warehouse).map_err(|e| Error::io(warehouse, "resolving", e))?;
        let dir = warehouse.join(STAGING_DIR).join(run_id);
        create_dirs(&dir, 0o755)?;
        let t = Transaction {
            dir,
            journal: Journal {
                run_id: run_id.to_string(),
                state: State::Staging,
                entries: Vec::new(),
                manifest: None,
                extra_staging: Vec::new(),
            },
        };
        t.save()?;
        Ok(t)
    }

    /// The run's staging directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn save(&self) -> Result<()> {
        testhooks::step();
        let bytes = serde_json::to_vec_pretty(&self.journal)
            .map_err(|e| Error::Recovery { path: self.dir.clone(), problem: e.to_string() })?;
        write_atomically(&self.dir.join(JOURNAL), &bytes, 0o644)
    }

    /// Registers a staged partition (already written and synced, with its `_SUCCESS`).
    pub fn stage(&mut self, entry: Entry) -> Result<()> {
        let entry = Entry { name: entry.name, live: absolute(&entry.live)?, staged: absolute(&entry.staged)? };
        self.journal.entries.push(entry);
        self.save()
    }

    /// Registers a staging directory outside the warehouse to clean up (or roll back).
    pub fn stage_extra_dir(&mut self, dir: PathBuf) -> Result<()> {
        self.journal.extra_staging.push(absolute(&dir)?);
        self.save()
    }

    /// Registers the manifest, renamed into place after the swaps.
    pub fn stage_manifest(&mut self, staged: PathBuf, live: PathBuf) -> Result<()> {
        self.journal.manifest = Some((absolute(&staged)?, absolute(&live)?));
        self.save()
    }

    /// Gives up before any swap: removes everything staged (best effort; recovery removes
    /// what is left).
    pub fn abort(self) {
        cleanup(&self.dir, &self.journal);
    }

    /// Swaps every staged partition into place, then the manifest, then cleans up.
    pub fn commit(mut self) -> Result<()> {
        self.journal.state = State::Swapping;
        self.save()?;
        testhooks::point("after-journal");
        roll_forward(&self.dir, &self.journal)
    }
}

fn roll_forward(dir: &Path, journal: &Journal) -> Result<()> {
    for entry in &journal.entries {
        testhooks::step();
        swap_in(entry, &journal.run_id)?;
        testhooks::point(&format!("after-swap-{}", entry.name));
    }
    if let Some((staged, live)) = &journal.manifest {
        testhooks::step();
        if staged.exists() {
            if let Some(parent) = live.parent() {
                create_dirs(parent, 0o755)?;
            }
            fs::rename(staged, live).map_err(|e| Error::io(live, "renaming manifest into place", e))?;
            if let Some(parent) = live.parent() {
                sync_dir(parent)?;
            }
        }
    }
    // Staging directories outside this one go while the journal still names them (a crash
    // here repeats the idempotent roll forward); then the journal, then this directory.
    remove_extra(journal);
    let journal_path = dir.join(JOURNAL);
    fs::remove_file(&journal_path).map_err(|e| Error::io(&journal_path, "removing journal", e))?;
    sync_dir(dir)?;
    let _ = fs::remove_dir_all(dir);
    Ok(())
}

fn remove_extra(journal: &Journal) {
    for extra in &journal.extra_staging {
        let _ = fs::remove_dir_all(extra);
    }
}

fn cleanup(dir: &Path, journal: &Journal) {
    remove_extra(journal);
    let _ = fs::remove_dir_all(dir);
}

/// Removes every run directory under `root/_staging` (for a root outside the warehouse, such
/// as the quarantine). Only safe with the warehouse lock held and after [`recover`].
pub fn sweep_staging(root: &Path) {
    if let Ok(entries) = fs::read_dir(root.join(STAGING_DIR)) {
        for entry in entries.flatten() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn swap_in(entry: &Entry, run_id: &str) -> Result<()> {
    if partition_run_id(&entry.live).as_deref() == Some(run_id) {
        return Ok(()); // already swapped (recovery after a crash mid-swap)
    }
    if partition_run_id(&entry.staged).as_deref() != Some(run_id) {
        return Err(Error::Recovery {
            path: entry.staged.clone(),
            problem: format!("staged partition of {} is missing or not from run {run_id}", entry.name),
        });
    }
    let live_parent = entry.live.parent().unwrap_or(Path::new("."));
    create_dirs(live_parent, 0o755)?;
    if entry.live.exists() {
        exchange(&entry.staged, &entry.live)?;
    } else {
        fs::rename(&entry.staged, &entry.live).map_err(|e| Error::io(&entry.live, "renaming into place", e))?;
    }
    sync_dir(live_parent)?;
    if let Some(p) = entry.staged.parent() {
        sync_dir(p)?;
    }
    Ok(())
}

/// Atomically exchanges two directories.
fn exchange(a: &Path, b: &Path) -> Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            // A filesystem without RENAME_EXCHANGE: two renames. For an instant the partition
            // is absent (never mixed); a crash in between is finished by recovery, which sees
            // the live partition missing and the staged one still there.
            let aside = a.with_extension("previous");
            fs::rename(b, &aside).map_err(|e| Error::io(b, "moving the previous partition aside", e))?;
            fs::rename(a, b).map_err(|e| Error::io(b, "renaming into place", e))?;
            fs::rename(&aside, a).map_err(|e| Error::io(a, "moving the previous partition to staging", e))
        }
        Err(e) => Err(Error::io(b, "exchanging with the staged partition", e.into())),
    }
}

/// What recovery did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Recovered {
    /// Runs whose interrupted swap was completed.
    pub rolled_forward: Vec<String>,
    /// Runs that died before publishing anything; their staging was discarded.
    pub rolled_back: Vec<String>,
    /// Runs that had published (or died creating their staging); leftovers removed.
    pub cleaned: Vec<String>,
}

/// Completes or rolls back every interrupted publish under `warehouse`.
/// Must be called with the warehouse lock held.
pub fn recover(warehouse: &Path) -> Result<Recovered> {
    let staging = warehouse.join(STAGING_DIR);
    let mut out = Recovered::default();
    let entries = match fs::read_dir(&staging) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(&staging, "listing", e)),
    };
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs {
        let run = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let journal: Option<Journal> = fs::read(dir.join(JOURNAL)).ok().and_then(|b| serde_json::from_slice(&b).ok());
        match journal {
            Some(j) if j.state == State::Swapping => {
                roll_forward(&dir, &j)?;
                out.rolled_forward.push(run);
            }
            Some(j) => {
                cleanup(&dir, &j);
                out.rolled_back.push(run);
            }
            None => {
                // No journal: the run died after publishing (the journal goes before the
                // staging directory) or while creating its staging directory. Either way
                // nothing here is live.
                let _ = fs::remove_dir_all(&dir);
                out.cleaned.push(run);
            }
        }
    }
    Ok(out)
}

/// The warehouse lock, held for the life of a run (an OS `flock`: released when the process
/// dies, so a crashed run never blocks the next one).
pub struct WarehouseLock {
    _file: File,
}

impl WarehouseLock {
    /// Takes the lock or fails at once naming the holder.
    pub fn acquire(warehouse: &Path, holder: &str) -> Result<WarehouseLock> {
        let path = warehouse.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, "opening the lock file", e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut who = String::new();
                let _ = file.read_to_string(&mut who);
                let who = who.trim();
                return Err(Error::Locked {
                    path: warehouse.to_path_buf(),
                    holder: if who.is_empty() { "holder unknown".into() } else { who.to_string() },
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(&path, "locking", e)),
        }
        file.set_len(0).map_err(|e| Error::io(&path, "writing the lock holder", e))?;
        use std::io::{Seek, SeekFrom};
        file.seek(SeekFrom::Start(0)).map_err(|e| Error::io(&path, "writing the lock holder", e))?;
        file.write_all(holder.as_bytes()).map_err(|e| Error::io(&path, "writing the lock holder", e))?;
        Ok(WarehouseLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(dir: &Path, run: &str, body: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("part-00000.parquet"), body).unwrap();
        fs::write(dir.join(SUCCESS), run).unwrap();
    }

    fn stage_two(wh: &Path, run: &str) -> Transaction {
        let mut t = Transaction::begin(wh, run).unwrap();
        for table in ["a", "b"] {
            let staged = t.dir().join(table).join("year=2024");
            partition(&staged, run, &format!("{table}-{run}"));
            t.stage(Entry { name: table.into(), live: wh.join(table).join("year=2024"), staged }).unwrap();
        }
        t
    }

    fn body(wh: &Path, table: &str) -> String {
        fs::read_to_string(wh.join(table).join("year=2024/part-00000.parquet")).unwrap()
    }

    #[test]
    fn commit_replaces_every_partition_and_cleans_up() {
        let wh = tempfile::tempdir().unwrap();
        stage_two(wh.path(), "r1").commit().unwrap();
        assert_eq!(body(wh.path(), "a"), "a-r1");
        stage_two(wh.path(), "r2").commit().unwrap();
        assert_eq!(body(wh.path(), "a"), "a-r2");
        assert_eq!(body(wh.path(), "b"), "b-r2");
        assert_eq!(fs::read_dir(wh.path().join(STAGING_DIR)).unwrap().count(), 0);
    }

    #[test]
    fn recovery_rolls_back_unjournaled_staging() {
        let wh = tempfile::tempdir().unwrap();
        stage_two(wh.path(), "r1").commit().unwrap();
        drop(stage_two(wh.path(), "r2")); // died before commit
        let r = recover(wh.path()).unwrap();
        assert_eq!(r.rolled_back, ["r2"]);
        assert_eq!(body(wh.path(), "a"), "a-r1");
        assert!(!wh.path().join(STAGING_DIR).join("r2").exists());
    }

    #[test]
    fn recovery_rolls_forward_a_half_done_swap() {
        let wh = tempfile::tempdir().unwrap();
        stage_two(wh.path(), "r1").commit().unwrap();
        let mut t = stage_two(wh.path(), "r2");
        // Simulate a crash after the first swap: journal says swapping, only "a" exchanged.
        t.journal.state = State::Swapping;
        t.save().unwrap();
        swap_in(&t.journal.entries[0], "r2").unwrap();
        assert_eq!(body(wh.path(), "a"), "a-r2");
        assert_eq!(body(wh.path(), "b"), "b-r1");
        let r = recover(wh.path()).unwrap();
        assert_eq!(r.rolled_forward, ["r2"]);
        assert_eq!(body(wh.path(), "a"), "a-r2");
        assert_eq!(body(wh.path(), "b"), "b-r2");
        // Idempotent.
        assert_eq!(recover(wh.path()).unwrap(), Recovered::default());
    }

    #[test]
    fn second_lock_is_refused_naming_the_holder() {
        let wh = tempfile::tempdir().unwrap();
        let held = WarehouseLock::acquire(wh.path(), "pid 42 started 2024-01-01T00:00:00Z").unwrap();
        match WarehouseLock::acquire(wh.path(), "pid 43") {
            Err(Error::Locked { holder, .. }) => assert!(holder.contains("pid 42"), "{holder}"),
            other => panic!("expected Locked, got {:?}", other.err()),
        }
        drop(held);
        assert!(WarehouseLock::acquire(wh.path(), "pid 44").is_ok());
    }
}
