//! OCI hooks of proxmox-lxc containers, run at runc's lifecycle points with the state
//! JSON on stdin:
//! - `prestart` (deprecated), `createRuntime`, `createContainer`: by `create`, on the
//!   host, after the container started and the program is prepared (state `created`).
//!   createContainer runs in the runtime namespace too: runc runs it in the container's
//!   mount namespace before pivot_root, which LXC does not expose; the container's
//!   filesystem is reachable at `/proc/<state.pid>/root`.
//! - `startContainer`: by `start`, inside the container, in the prepared process right
//!   before it execs the program (as runc), so its path resolves in the container.
//! - `poststart`: by `start`, on the host, after the program runs; a failure is a warning.
//! - `poststop`: by `delete`, on the host, after the container is destroyed; a failure is
//!   a warning.
//!
//! In the state the hooks get, `pid` is the program's host pid (so that hooks can enter
//! the container's namespaces through /proc/<pid>/ns), not the supervisor's.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::wire::Hook;

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    #[serde(default)]
    pub prestart: Vec<Hook>,
    #[serde(default)]
    pub create_runtime: Vec<Hook>,
    #[serde(default)]
    pub create_container: Vec<Hook>,
    #[serde(default)]
    pub start_container: Vec<Hook>,
    #[serde(default)]
    pub poststart: Vec<Hook>,
    #[serde(default)]
    pub poststop: Vec<Hook>,
}

/// Parse `hooks` of config.json (absent or null: none).
pub fn parse(value: Option<&serde_json::Value>) -> Result<Hooks> {
    let Some(v) = value.filter(|v| !v.is_null()) else { return Ok(Hooks::default()) };
    let hooks: Hooks = serde_path_to_error::deserialize(v).map_err(|e| {
        let inner = e.path().to_string();
        anyhow::anyhow!("hooks.{inner}: {}", e.into_inner())
    })?;
    for (kind, list) in [
        ("prestart", &hooks.prestart),
        ("createRuntime", &hooks.create_runtime),
        ("createContainer", &hooks.create_container),
        ("startContainer", &hooks.start_container),
        ("poststart", &hooks.poststart),
        ("poststop", &hooks.poststop),
    ] {
        for (i, h) in list.iter().enumerate() {
            if !h.path.starts_with('/') {
                bail!("hooks.{kind}[{i}].path {:?} must be absolute", h.path);
            }
            if h.timeout == Some(0) {
                bail!("hooks.{kind}[{i}].timeout must be greater than zero");
            }
        }
    }
    Ok(hooks)
}

/// Run hooks in order; the first failure stops and is returned.
pub fn run(kind: &str, hooks: &[Hook], state: &str) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state).with_context(|| format!("{kind} hook #{i} ({})", h.path))?;
    }
    Ok(())
}

/// Run hooks whose failure is only a warning (poststart, poststop).
pub fn run_warn(kind: &str, hooks: &[Hook], state: &str) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(h, state) {
            log::warn!("{kind} hook #{i} ({}): {e:#}", h.path);
        }
    }
}

fn run_one(h: &Hook, state: &str) -> Result<()> {
    let mut cmd = Command::new(&h.path);
    if let Some((first, rest)) = h.args.split_first() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, first);
        cmd.args(rest);
    }
    cmd.env_clear();
    for e in &h.env {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().context("cannot execute")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state.as_bytes());
    }
    // Collect output on threads so a chatty hook cannot block on a full pipe.
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut s);
        }
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut s);
        }
        s
    });
    let deadline = h.timeout.map(|t| Instant::now() + Duration::from_secs(t));
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {} s", h.timeout.unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "{status}, stdout: {:?}, stderr: {:?}",
            String::from_utf8_lossy(&stdout).trim(),
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_and_validate() {
        assert_eq!(parse(None).unwrap(), Hooks::default());
        let h = parse(Some(&json!({"poststop": [{"path": "/bin/true", "args": ["true"], "timeout": 3}]}))).unwrap();
        assert_eq!(h.poststop[0].timeout, Some(3));
        let e = parse(Some(&json!({"prestart": [{"path": "rel"}]}))).unwrap_err().to_string();
        assert!(e.contains("hooks.prestart[0].path"), "{e}");
        let e = parse(Some(&json!({"prestart": [{"path": "/x", "timeout": 0}]}))).unwrap_err().to_string();
        assert!(e.contains("greater than zero"), "{e}");
    }

    #[test]
    fn hooks_get_state_on_stdin_and_failures_carry_output() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("state");
        let write = Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), format!("cat > {}", out.display())],
            env: vec![],
            timeout: Some(5),
        };
        run("createRuntime", &[write], "{\"id\":\"x\"}").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"x\"}");
        let fail = Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), "echo bad >&2; exit 4".into()],
            env: vec![],
            timeout: None,
        };
        let e = format!("{:#}", run("prestart", &[fail], "{}").unwrap_err());
        assert!(e.contains("prestart hook #0") && e.contains("bad") && e.contains("4"), "{e}");
        let slow =
            Hook { path: "/bin/sleep".into(), args: vec!["sleep".into(), "5".into()], env: vec![], timeout: Some(1) };
        let t0 = Instant::now();
        let e = format!("{:#}", run("poststart", &[slow], "{}").unwrap_err());
        assert!(e.contains("timed out") && t0.elapsed() < Duration::from_secs(3), "{e}");
    }
}
