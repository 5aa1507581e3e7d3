//! Running the runtime under test: global arguments, stdio to files, timeouts.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long any single runtime command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

static TIMEOUT_SCALE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// Multiply every timeout of the run by `n` (`--timeout-scale`).
pub fn set_timeout_scale(n: u32) {
    TIMEOUT_SCALE.store(n.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// A timeout as this run scales it.
pub fn scaled(d: Duration) -> Duration {
    d * TIMEOUT_SCALE.load(std::sync::atomic::Ordering::Relaxed)
}

/// The runtime binary and the global arguments that go before every subcommand.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub path: PathBuf,
    pub global_args: Vec<String>,
}

/// What a finished runtime command left behind.
#[derive(Debug, Clone)]
pub struct Output {
    pub cmdline: String,
    /// Exit code, None when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// A one-paragraph description for failure messages.
    pub fn describe(&self) -> String {
        let status = match self.code {
            Some(c) => format!("exit {c}"),
            None => "killed by a signal".to_string(),
        };
        let mut s = format!("`{}`: {status}", self.cmdline);
        for (name, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let t = text.trim();
            if !t.is_empty() {
                let t: String = t.chars().take(1500).collect();
                s.push_str(&format!("\n{name}: {t}"));
            }
        }
        s
    }

    /// Err with the description unless the command succeeded.
    pub fn check(self) -> Result<Output> {
        if self.success() {
            Ok(self)
        } else {
            bail!("{}", self.describe())
        }
    }
}

/// Where the command's stdio goes.
pub struct Stdio3 {
    pub stdin: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Runtime {
    pub fn cmdline(&self, args: &[&str]) -> String {
        let mut v = vec![self.path.display().to_string()];
        v.extend(self.global_args.iter().cloned());
        v.extend(args.iter().map(|s| s.to_string()));
        v.join(" ")
    }

    /// Run `runtime GLOBAL... args...` in `cwd` with stdio from/to the given files,
    /// calling `poll` while waiting (the harness reaps container processes there).
    pub fn run(
        &self,
        args: &[&str],
        cwd: &Path,
        io: &Stdio3,
        timeout: Duration,
        poll: &mut dyn FnMut(),
    ) -> Result<Output> {
        let open_out = |p: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("open {}", p.display()))
        };
        let stdout_len = std::fs::metadata(&io.stdout).map(|m| m.len()).unwrap_or(0);
        let stderr_len = std::fs::metadata(&io.stderr).map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(&self.path);
        cmd.args(&self.global_args)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::from(std::fs::File::open(&io.stdin).with_context(|| format!("open {}", io.stdin.display()))?))
            .stdout(Stdio::from(open_out(&io.stdout)?))
            .stderr(Stdio::from(open_out(&io.stderr)?));
        let cmdline = self.cmdline(args);
        let mut child = cmd.spawn().with_context(|| format!("spawn {cmdline}"))?;
        let deadline = Instant::now() + timeout;
        let mut nap = Duration::from_millis(1);
        let status = loop {
            if let Some(st) = child.try_wait().with_context(|| format!("wait for {cmdline}"))? {
                break st;
            }
            poll();
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("`{cmdline}` did not finish within {timeout:?}");
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(10));
        };
        let read_from = |p: &Path, from: u64| -> String {
            let b = std::fs::read(p).unwrap_or_default();
            String::from_utf8_lossy(b.get(from as usize..).unwrap_or_default()).into_owned()
        };
        Ok(Output {
            cmdline,
            code: status.code(),
            stdout: read_from(&io.stdout, stdout_len),
            stderr: read_from(&io.stderr, stderr_len),
        })
    }
}
