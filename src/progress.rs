//! Progress: indicatif bars on a terminal, plain periodic log lines otherwise (nightly jobs
//! write to log files), nothing with `--quiet`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a log line is written when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Progress reporting for one run.
pub struct Progress {
    mode: Mode,
    bar: Option<ProgressBar>,
    phase: String,
    total: u64,
    last_log: Instant,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Quiet,
    Bars,
    Lines,
}

impl Progress {
    /// Bars when stderr is a terminal, log lines otherwise, nothing when `quiet`.
    pub fn new(quiet: bool) -> Progress {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        };
        Progress { mode, bar: None, phase: String::new(), total: 0, last_log: Instant::now() }
    }

    /// A log line (stderr), unless quiet.
    pub fn log(&self, message: &str) {
        if self.mode == Mode::Quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(format!("berakhlak: {message}")),
            None => eprintln!("berakhlak: {message}"),
        }
    }

    /// Starts a phase measured in `unit`s (bytes when `bytes`).
    pub fn phase(&mut self, name: &str, total: u64, bytes: bool) {
        self.finish();
        self.phase = name.to_string();
        self.total = total;
        self.last_log = Instant::now();
        match self.mode {
            Mode::Bars => {
                let bar = ProgressBar::new(total);
                let template = if bytes {
                    "{msg:>9} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
                } else {
                    "{msg:>9} [{bar:40}] {pos}/{len} eta {eta}"
                };
                if let Ok(style) = ProgressStyle::with_template(template) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_message(name.to_string());
                self.bar = Some(bar);
            }
            Mode::Lines => eprintln!("berakhlak: {name} ..."),
            Mode::Quiet => {}
        }
    }

    /// Sets the position within the phase.
    pub fn set(&mut self, position: u64) {
        match self.mode {
            Mode::Bars => {
                if let Some(bar) = &self.bar {
                    bar.set_position(position);
                }
            }
            Mode::Lines if self.last_log.elapsed() >= LOG_EVERY => {
                self.last_log = Instant::now();
                let pct = if self.total == 0 { 100.0 } else { 100.0 * position as f64 / self.total as f64 };
                eprintln!("berakhlak: {} {pct:.0}% ({position} of {})", self.phase, self.total);
            }
            _ => {}
        }
    }

    /// Ends the current phase.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
