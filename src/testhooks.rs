//! Test-only switches, read from the environment, that let the crash-safety tests attack the
//! real binary: slow the publish down so that kills land anywhere in it, pause at named points,
//! abort at named points, and fail a write as a full disk would. None is set in production;
//! each costs one environment lookup (cached) when unset.
//!
//! - `BERAKHLAK_TEST_STEP_MS=<ms>`: sleep before every publishing step (file, marker, journal,
//!   swap, manifest).
//! - `BERAKHLAK_TEST_PAUSE=<point>:<ms>`: sleep every time the run passes a named point:
//!   `after-batch` (after every 8 chunks of up to 1 MiB are validated, and at the end of each
//!   file), `before-reread` (after the first read of every file, before the records that
//!   deduplication rejected are read again), `before-publish` (after reading and estimating,
//!   before the input check and publishing).
//! - `BERAKHLAK_FAULT=<point>`: abort the process at a named point (a crash, no cleanup).
//! - `BERAKHLAK_TEST_FAIL_WRITE=<text>`: creating a file whose path contains `<text>` fails
//!   with ENOSPC.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

struct Hooks {
    step: Option<Duration>,
    pause: Option<(String, Duration)>,
    fault: Option<String>,
    fail_write: Option<String>,
}

fn hooks() -> &'static Hooks {
    static HOOKS: OnceLock<Hooks> = OnceLock::new();
    HOOKS.get_or_init(|| {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Hooks {
            step: var("BERAKHLAK_TEST_STEP_MS").and_then(|v| v.parse().ok()).map(Duration::from_millis),
            pause: var("BERAKHLAK_TEST_PAUSE").and_then(|v| {
                let (point, ms) = v.rsplit_once(':')?;
                Some((point.to_string(), Duration::from_millis(ms.parse().ok()?)))
            }),
            fault: var("BERAKHLAK_FAULT"),
            fail_write: var("BERAKHLAK_TEST_FAIL_WRITE"),
        }
    })
}

/// A publishing step is about to happen.
pub fn step() {
    if let Some(d) = hooks().step {
        std::thread::sleep(d);
    }
}

/// Named point in the run: pause or abort here if a test asks for it.
pub fn point(name: &str) {
    let h = hooks();
    if let Some((p, d)) = &h.pause {
        if p == name {
            eprintln!("berakhlak: test pause at {name}");
            std::thread::sleep(*d);
        }
    }
    if h.fault.as_deref() == Some(name) {
        eprintln!("berakhlak: injected fault at {name}");
        std::process::abort();
    }
}

/// An injected "disk full" for files whose path contains the configured text.
pub fn write_error(path: &Path) -> Option<std::io::Error> {
    let needle = hooks().fail_write.as_deref()?;
    path.to_string_lossy().contains(needle).then(|| std::io::Error::from_raw_os_error(28 /* ENOSPC */))
}
