//! The real Fluent Bit, run as a child process over the example pipelines as shipped.
//!
//! The harness in [`crate::fluentbit`] checks the `filter_wasm` contract call by call; this module
//! checks that the contract is the real one: it starts the `fluent-bit` binary built from
//! `../shared/fluent-bit/` by `scripts/fluent-bit.sh`, with `examples/fluent-bit/`'s configuration
//! files where only the absolute paths are moved into a scratch directory.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::artifacts::project_root;

/// The `fluent-bit` binary: `$FLUENT_BIT`, else whatever `scripts/fluent-bit.sh` builds (once,
/// cached outside the checkout) and prints. Looked up once per process.
pub fn binary() -> Result<PathBuf> {
    static BINARY: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    let found = BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("FLUENT_BIT") {
            return Ok(PathBuf::from(path));
        }
        let script = project_root().join("scripts/fluent-bit.sh");
        let output = Command::new(&script)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        if !output.status.success() {
            return Err(format!("{} failed ({})", script.display(), output.status));
        }
        Ok(PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
    });
    found.clone().map_err(anyhow::Error::msg)
}

/// One of the shipped example pipelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Example {
    Classic,
    Yaml,
    /// Another configuration in `examples/fluent-bit/`, by file name (the alert routes).
    Other(&'static str),
}

impl Example {
    fn file_name(self) -> &'static str {
        match self {
            Example::Classic => "fluent-bit.conf",
            Example::Yaml => "fluent-bit.yaml",
            Example::Other(name) => name,
        }
    }
}

/// The example pipelines' absolute paths, each moved under one scratch root: the input files,
/// the installed module, the `Accessible_Paths` directory, the output directory and the `tail`
/// offset database.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
    /// `/var/log/cloudtrail`: where `tail` reads `*.ndjson`.
    pub input: PathBuf,
    /// `/opt/tripline`: where the module is installed.
    pub module_dir: PathBuf,
    /// `/etc/tripline`: `Accessible_Paths` (configuration, models, state).
    pub etc: PathBuf,
    /// `/var/log/tripline`: the `file` output's directory.
    pub output: PathBuf,
    /// `/var/lib/tripline`: `tail`'s offset database.
    pub lib: PathBuf,
}

/// Where in a [`Layout`] one of the example configurations' paths goes.
type Moved = (&'static str, fn(&Layout) -> &PathBuf);

/// The example configurations' paths and what they become.
const MOVED: [Moved; 5] = [
    ("/var/log/cloudtrail", |l| &l.input),
    ("/opt/tripline", |l| &l.module_dir),
    ("/etc/tripline", |l| &l.etc),
    ("/var/log/tripline", |l| &l.output),
    ("/var/lib/tripline", |l| &l.lib),
];

impl Layout {
    /// Creates the directories under `root` (emptied first).
    pub fn new(root: impl Into<PathBuf>) -> Result<Layout> {
        let root = root.into();
        let _ = std::fs::remove_dir_all(&root);
        let layout = Layout {
            input: root.join("var-log-cloudtrail"),
            module_dir: root.join("opt-tripline"),
            etc: root.join("etc-tripline"),
            output: root.join("var-log-tripline"),
            lib: root.join("var-lib-tripline"),
            root,
        };
        for dir in [&layout.input, &layout.module_dir, &layout.etc, &layout.output, &layout.lib] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(layout)
    }

    /// Installs `wasm` where the examples load it (`tripline-fluentbit.wasm`), replacing any
    /// earlier copy atomically, as an operator swapping the module would.
    pub fn install_module(&self, wasm: &Path) -> Result<()> {
        let target = self.module_dir.join("tripline-fluentbit.wasm");
        let tmp = self.module_dir.join(".tripline-fluentbit.wasm.tmp");
        std::fs::copy(wasm, &tmp).with_context(|| format!("copying {}", wasm.display()))?;
        std::fs::rename(&tmp, &target)?;
        Ok(())
    }

    /// The example's configuration with its paths moved here, written under the root beside a
    /// copy of `parsers.conf`; returns its path.
    pub fn write_config(&self, example: Example) -> Result<PathBuf> {
        let examples = project_root().join("examples/fluent-bit");
        let mut text = std::fs::read_to_string(examples.join(example.file_name()))?;
        for (from, to) in MOVED {
            text = text.replace(from, &to(self).to_string_lossy());
        }
        std::fs::copy(examples.join("parsers.conf"), self.root.join("parsers.conf"))?;
        let path = self.root.join(example.file_name());
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// The main output's records (`file` output, `tagged.ndjson`), one line each.
    pub fn tagged_lines(&self) -> Vec<Vec<u8>> {
        let bytes = std::fs::read(self.output.join("tagged.ndjson")).unwrap_or_default();
        bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
    }

    /// Appends `lines` to the input file `name` (creating it), each followed by a newline, in
    /// one write so that `tail` never reads half a line.
    pub fn append_input(&self, name: &str, lines: &[&[u8]]) -> Result<()> {
        let mut bytes = Vec::new();
        for line in lines {
            bytes.extend_from_slice(line);
            bytes.push(b'\n');
        }
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(self.input.join(name))?;
        file.write_all(&bytes)?;
        Ok(())
    }
}

/// The alerts Fluent Bit printed: the examples' alert route (`stdout`, JSON lines) writes one
/// `{"date":..,"alerts":[..]}` line per record carrying alerts. Only whole lines are read: a
/// large one may still be on its way.
pub fn printed_alerts(stdout: &str) -> Vec<serde_json::Value> {
    let whole = stdout.rfind('\n').map_or("", |end| &stdout[..end]);
    whole
        .lines()
        .filter(|l| l.starts_with('{'))
        .flat_map(|l| {
            let line: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("alert output line is not JSON ({e}): {l}"));
            line["alerts"].as_array().cloned().unwrap_or_else(|| panic!("alert output line without alerts: {l}"))
        })
        .collect()
}

/// A running `fluent-bit` whose stdout and stderr are collected as they arrive.
pub struct Running {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

/// What a stopped `fluent-bit` printed, and how it ended.
#[derive(Debug)]
pub struct Finished {
    pub stdout: String,
    pub stderr: String,
    pub status: std::process::ExitStatus,
}

impl Running {
    /// Starts `fluent-bit -c config` with `args` added (for example `-Y` for hot reload), in the
    /// configuration's directory: a hot reload resolves a relative `Parsers_File` against the
    /// working directory, not the configuration's (5.1.1).
    pub fn start(config: &Path, args: &[&str]) -> Result<Running> {
        let mut child = Command::new(binary()?)
            .arg("-c")
            .arg(config)
            .current_dir(config.parent().unwrap_or(Path::new(".")))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting fluent-bit")?;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().expect("piped"), Arc::clone(&stdout)),
            collect(child.stderr.take().expect("piped"), Arc::clone(&stderr)),
        ];
        Ok(Running { child, stdout, stderr, readers })
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Polls `done` until it holds; fails after `timeout`, or at once if the process exited.
    pub fn wait_until(&mut self, what: &str, timeout: Duration, mut done: impl FnMut(&Running) -> bool) -> Result<()> {
        let start = Instant::now();
        loop {
            if done(self) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("fluent-bit exited ({status}) while waiting for {what}; its log:\n{}", self.stderr());
            }
            if start.elapsed() > timeout {
                bail!("timed out after {timeout:?} waiting for {what}; fluent-bit's log:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `signal` (for example `libc::SIGHUP`) to the process.
    pub fn signal(&self, signal: i32) -> Result<()> {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        if unsafe { libc::kill(self.child.id() as libc::pid_t, signal) } != 0 {
            bail!("kill({}, {signal}): {}", self.child.id(), std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// SIGTERM, then waits for the exit (Fluent Bit flushes what it holds first).
    pub fn stop(mut self) -> Result<Finished> {
        self.signal(libc::SIGTERM)?;
        let status = self.child.wait()?;
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Ok(Finished { stdout: self.stdout(), stderr: self.stderr(), status })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    })
}

/// One request to Fluent Bit's HTTP server on `port` (`GET /api/v1/metrics`, `POST
/// /api/v2/reload`); returns the whole response, status line first. HTTP/1.0: the server closes
/// the connection after the reply and never chunks it.
pub fn http(port: u16, method: &str, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).context("connecting to Fluent Bit's HTTP server")?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// A free loopback TCP port (for `-P`).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
