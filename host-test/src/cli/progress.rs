//! A single updating progress line on stderr: records, records per second, share of input bytes.
//! Shown on a terminal once a run takes more than half a second; when stderr is not a terminal,
//! a plain line every ten seconds for large inputs only; otherwise nothing.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Inputs at least this large get periodic lines even when stderr is not a terminal.
const LARGE_INPUT: u64 = 64 * 1024 * 1024;

enum Mode {
    Off,
    Terminal,
    Periodic,
}

pub struct Progress {
    label: &'static str,
    mode: Mode,
    total_bytes: u64,
    started: Instant,
    last: Option<Instant>,
    shown: bool,
}

impl Progress {
    pub fn new(label: &'static str, total_bytes: u64, quiet: bool) -> Progress {
        let mode = if quiet {
            Mode::Off
        } else if std::io::stderr().is_terminal() {
            Mode::Terminal
        } else if total_bytes >= LARGE_INPUT {
            Mode::Periodic
        } else {
            Mode::Off
        };
        Progress { label, mode, total_bytes, started: Instant::now(), last: None, shown: false }
    }

    /// Called once per record; cheap when nothing is due.
    pub fn update(&mut self, records: u64, bytes_done: u64) {
        let (delay, every) = match self.mode {
            Mode::Off => return,
            Mode::Terminal => (Duration::from_millis(500), Duration::from_millis(200)),
            Mode::Periodic => (Duration::from_secs(10), Duration::from_secs(10)),
        };
        if !records.is_multiple_of(256) {
            return;
        }
        let now = Instant::now();
        let due = match self.last {
            None => now.duration_since(self.started) >= delay,
            Some(last) => now.duration_since(last) >= every,
        };
        if !due {
            return;
        }
        self.last = Some(now);
        let line = self.line(records, bytes_done, now);
        let mut err = std::io::stderr().lock();
        match self.mode {
            Mode::Terminal => {
                let _ = write!(err, "\r\x1b[2K{line}");
                self.shown = true;
            }
            _ => {
                let _ = writeln!(err, "{line}");
            }
        }
        let _ = err.flush();
    }

    /// Clears the updating line.
    pub fn finish(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            self.shown = false;
        }
    }

    fn line(&self, records: u64, bytes_done: u64, now: Instant) -> String {
        let seconds = now.duration_since(self.started).as_secs_f64().max(1e-9);
        let rate = records as f64 / seconds;
        let percent =
            if self.total_bytes > 0 { (bytes_done as f64 * 100.0 / self.total_bytes as f64).min(100.0) } else { 0.0 };
        format!(
            "{}: {} records  {} records/s  {percent:.0}% of input",
            self.label,
            thousands(records),
            thousands(rate as u64)
        )
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
