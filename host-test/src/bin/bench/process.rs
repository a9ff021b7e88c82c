//! One measured Fluent Bit run: the process's CPU time (user + system, every thread) from the
//! kernel's rusage for the child (`wait4`; std's `Child::wait` drops it), and its peak memory from
//! `/proc/<pid>/status` (VmHWM) just before it is stopped. Not rusage's `ru_maxrss`: Linux carries
//! the spawning process's peak across `exec` into it, so every row read the bench's own size.
//!
//! The run ends when Fluent Bit's own metrics (`/api/v1/metrics`) show every expected record
//! delivered to the output; the bench then stops it with SIGTERM. tail's `Exit_On_Eof` would stop
//! it unaided, but within a second of the last flush while those metrics refresh once a second,
//! so the final count could be missed; the `counter` output would add its own msgpack walk to
//! every row's CPU time. A run that stops making progress, or exits by itself, is an error: a
//! figure over records that never went through is worse than none.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tripline_host_test::real_fluentbit;

/// How often the metrics are read: often enough to stop soon after the last record, rarely
/// enough that serving them costs nothing measurable.
const POLL: Duration = Duration::from_millis(250);
/// No new record delivered for this long means the pipeline is stuck.
const STALL: Duration = Duration::from_secs(30);

pub struct Usage {
    pub cpu: Duration,
    pub max_rss_bytes: u64,
    /// Records that reached the output: fewer than expected when the run was cut off.
    pub delivered: u64,
    /// (records delivered, resident memory in bytes from `/proc/<pid>/status` VmRSS), one per
    /// poll while the run made progress.
    pub rss_samples: Vec<(u64, u64)>,
}

/// Runs `command` (a Fluent Bit serving metrics on `port`) until `expected` records have reached
/// its outputs, then stops it and returns its resource usage. A run past `cpu_limit` is cut off:
/// its usage says how many records it delivered.
pub fn measure(command: &mut Command, port: u16, expected: u64, cpu_limit: Duration) -> anyhow::Result<Usage> {
    let mut child = Child::spawn(command)?;
    let mut samples = Vec::new();
    let delivered = child.wait_for_records(port, expected, cpu_limit, &mut samples)?;
    let peak = child.status_bytes("VmHWM")?;
    Ok(Usage { max_rss_bytes: peak, delivered, rss_samples: samples, ..child.terminate()? })
}

/// The running process; killed and reaped on drop unless already reaped.
struct Child {
    pid: libc::pid_t,
    reaped: bool,
}

impl Child {
    fn spawn(command: &mut Command) -> anyhow::Result<Child> {
        let child = command.spawn().with_context(|| format!("starting {:?}", command.get_program()))?;
        Ok(Child { pid: child.id() as libc::pid_t, reaped: false })
    }

    /// Polls the metrics until `expected` records are delivered or the CPU limit is reached,
    /// sampling the resident memory at each new count; returns the count seen.
    fn wait_for_records(&mut self, port: u16, expected: u64, cpu_limit: Duration, samples: &mut Vec<(u64, u64)>) -> anyhow::Result<u64> {
        let (mut delivered, mut progress) = (0, Instant::now());
        while delivered < expected && self.cpu_so_far()? < cpu_limit {
            std::thread::sleep(POLL);
            if self.reap(libc::WNOHANG)?.is_some() {
                bail!("fluent-bit exited by itself after {delivered} of {expected} records");
            }
            // The server is not up for the first moments: no answer is no progress.
            let now = delivered_records(port).unwrap_or(delivered);
            if now != delivered {
                (delivered, progress) = (now, Instant::now());
                samples.push((delivered, self.status_bytes("VmRSS")?));
            } else if progress.elapsed() > STALL {
                bail!("no progress for {} s at {delivered} of {expected} records", STALL.as_secs());
            }
        }
        Ok(delivered)
    }

    /// CPU time used so far, from `/proc/<pid>/stat` (rusage only comes once the child is reaped).
    fn cpu_so_far(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let fields: Vec<&str> = stat.rsplit_once(')').context("malformed /proc stat")?.1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Ok(Duration::from_millis(ticks * 1000 / per_second))
    }

    /// A memory figure from `/proc/<pid>/status` (`VmRSS`: resident now, `VmHWM`: the peak), in
    /// KiB there.
    fn status_bytes(&self, field: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(field).and_then(|rest| rest.strip_prefix(':')))
            .with_context(|| format!("no {field} in /proc status"))?;
        let kib: u64 = line.trim().trim_end_matches("kB").trim().parse()?;
        Ok(kib * 1024)
    }

    /// Stops the process as a service manager would, and reaps it.
    fn terminate(mut self) -> anyhow::Result<Usage> {
        // SAFETY: signals our own child, not yet reaped, so the pid is still ours.
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
        Ok(self.reap(0)?.expect("a blocking wait4 returns only once the child is reaped"))
    }

    /// `wait4` with `flags`: the child's usage once it has exited, `None` while it runs.
    fn reap(&mut self, flags: libc::c_int) -> anyhow::Result<Option<Usage>> {
        let mut status = 0;
        // SAFETY: rusage is plain data; wait4 only writes through the two valid pointers.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let pid = unsafe { libc::wait4(self.pid, &mut status, flags, &mut usage) };
        match pid {
            0 => Ok(None),
            p if p == self.pid => {
                self.reaped = true;
                Ok(Some(Usage {
                    cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
                    // Filled in by `measure` from VmHWM (see the module's comment).
                    max_rss_bytes: 0,
                    delivered: 0,
                    rss_samples: Vec::new(),
                }))
            }
            _ => bail!("wait4: {}", std::io::Error::last_os_error()),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: as in `terminate`; the usage of a failed run is not wanted.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = self.reap(0);
        }
    }
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// Records the outputs have processed, summed over outputs, from Fluent Bit's JSON metrics.
fn delivered_records(port: u16) -> anyhow::Result<u64> {
    let reply = real_fluentbit::http(port, "GET", "/api/v1/metrics")?;
    let (_, body) = reply.split_once("\r\n\r\n").context("no HTTP body")?;
    let metrics: serde_json::Value = serde_json::from_str(body)?;
    let outputs = metrics["output"].as_object().context("no output metrics")?;
    Ok(outputs.values().filter_map(|o| o["proc_records"].as_u64()).sum())
}
