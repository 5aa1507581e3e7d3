//! Passthrough to an OCI runtime (crun, runc, ...). nexcage adds nothing visible: the
//! runtime gets the caller's words with `--root <root>/@<backend>` substituted, and the
//! caller's stdio, so pid file, console socket, exit status and process parentage are the
//! runtime's own. nexcage execs the runtime when nothing is left to do afterwards, and
//! forks and waits only where it must act on the outcome (drop the record of a failed
//! create or of a successful delete).

use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use super::{Backend, ContainerState, CreateRequest, Creator};
use crate::cli::{ExecArgs, KillArgs, PsArgs, UpdateArgs};
use crate::context::Ctx;
use crate::state::Record;

pub struct OciBackend {
    pub name: String,
    pub runtime: PathBuf,
}

/// Exit status as a shell reports it: the code, or 128+N for death by signal N.
pub fn exit_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

impl OciBackend {
    pub fn from_record(record: &Record) -> Result<OciBackend> {
        let runtime =
            record.runtime.clone().ok_or_else(|| anyhow!("corrupt record of {}: no runtime path", record.id))?;
        Ok(OciBackend { name: record.backend.clone(), runtime })
    }

    /// Resolve a configured runtime binary.
    pub fn resolve(name: &str, path: &str) -> Result<OciBackend> {
        let runtime = super::find_binary(path).ok_or_else(|| {
            anyhow!("backend {name}: runtime binary {path:?} not found in PATH (install it, or set backends.{name}.path in the nexcage configuration)")
        })?;
        Ok(OciBackend { name: name.to_string(), runtime })
    }

    /// The runtime invocation for the caller's words.
    fn command(&self, ctx: &Ctx, words: &[OsString]) -> Command {
        let mut cmd = Command::new(&self.runtime);
        cmd.args(&ctx.globals.forward).arg("--root").arg(ctx.store.runtime_root(&self.name)).args(words);
        cmd
    }

    /// Replace nexcage with the runtime. Returns only on failure, or when the command
    /// runs once per container (`--regex`): then the runtime runs as a child.
    fn exec(&self, ctx: &Ctx) -> Result<i32> {
        if ctx.many {
            return self.run(ctx);
        }
        let err = self.command(ctx, &ctx.words).exec();
        Err(anyhow!(err).context(format!("cannot execute {}", self.runtime.display())))
    }

    /// Run the runtime as a child with the caller's stdio and wait for it.
    fn run(&self, ctx: &Ctx) -> Result<i32> {
        let status = self
            .command(ctx, &ctx.words)
            .status()
            .with_context(|| format!("cannot execute {}", self.runtime.display()))?;
        Ok(exit_code(status))
    }

    /// `<runtime> --root R delete --force ID` (for gc: a create that died after the runtime
    /// made the container). Returns the exit status.
    pub fn force_delete(&self, ctx: &Ctx, id: &str) -> Result<i32> {
        if !self.has_container(ctx, id) {
            return Ok(0);
        }
        let status = Command::new(&self.runtime)
            .arg("--root")
            .arg(self.root_arg(ctx))
            .args(["delete", "--force", id])
            .stdin(Stdio::null())
            .status()
            .with_context(|| format!("cannot execute {}", self.runtime.display()))?;
        Ok(exit_code(status))
    }

    /// Does the runtime still hold state for `id`? (Both crun and runc keep a directory
    /// per container under their root.)
    pub fn has_container(&self, ctx: &Ctx, id: &str) -> bool {
        ctx.store.runtime_root(&self.name).join(id).exists()
    }

    fn root_arg(&self, ctx: &Ctx) -> PathBuf {
        ctx.store.runtime_root(&self.name)
    }

    /// Ask the runtime for `list --format json`.
    fn list_json(&self, ctx: &Ctx) -> Result<Vec<ContainerState>> {
        let out = Command::new(&self.runtime)
            .arg("--root")
            .arg(self.root_arg(ctx))
            .args(["list", "--format", "json"])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("cannot execute {}", self.runtime.display()))?;
        if !out.status.success() {
            bail!("{} list failed: {}", self.runtime.display(), String::from_utf8_lossy(&out.stderr).trim());
        }
        parse_list(&out.stdout).with_context(|| format!("unexpected output of {} list", self.runtime.display()))
    }
}

/// Parse `list --format json` of runc (`null` when empty) or crun (`[]`).
pub fn parse_list(bytes: &[u8]) -> Result<Vec<ContainerState>> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Entry {
        #[serde(default)]
        oci_version: String,
        id: String,
        #[serde(default)]
        pid: i32,
        status: String,
        #[serde(default)]
        bundle: PathBuf,
        #[serde(default)]
        rootfs: PathBuf,
        #[serde(default)]
        created: String,
        #[serde(default)]
        owner: String,
        #[serde(default)]
        annotations: Option<std::collections::BTreeMap<String, String>>,
    }
    let entries: Option<Vec<Entry>> = serde_json::from_slice(bytes)?;
    Ok(entries
        .unwrap_or_default()
        .into_iter()
        .map(|e| ContainerState {
            oci_version: e.oci_version,
            id: e.id,
            pid: e.pid,
            status: e.status,
            bundle: e.bundle,
            rootfs: e.rootfs,
            created: e.created,
            owner: e.owner,
            annotations: e.annotations.unwrap_or_default(),
        })
        .collect())
}

impl Creator for OciBackend {
    fn create(&self, ctx: &Ctx, _req: &CreateRequest, _record: &mut Record) -> Result<i32> {
        self.run(ctx)
    }
}

impl Backend for OciBackend {
    fn start(&self, ctx: &Ctx, _record: &Record) -> Result<i32> {
        self.exec(ctx)
    }
    fn state(&self, ctx: &Ctx, _record: &Record) -> Result<i32> {
        self.exec(ctx)
    }
    fn kill(&self, ctx: &Ctx, _record: &Record, _args: &KillArgs) -> Result<i32> {
        // The caller's words: the runtime's own signal spellings, answers and errors.
        self.exec(ctx)
    }
    fn delete(&self, ctx: &Ctx, record: &Record, _force: bool) -> Result<i32> {
        if !self.has_container(ctx, &record.id) {
            // The runtime no longer knows it (crashed create, runtime state lost):
            // only the record is left, and removing it is the whole delete.
            log::warn!("container {} was already gone from backend {}; removing its record", record.id, self.name);
            return Ok(0);
        }
        self.run(ctx)
    }
    fn exec(&self, ctx: &Ctx, _record: &Record, _args: &ExecArgs) -> Result<i32> {
        self.exec(ctx)
    }
    fn ps(&self, ctx: &Ctx, _record: &Record, _args: &PsArgs) -> Result<i32> {
        self.exec(ctx)
    }
    fn pause(&self, ctx: &Ctx, _record: &Record) -> Result<i32> {
        self.exec(ctx)
    }
    fn resume(&self, ctx: &Ctx, _record: &Record) -> Result<i32> {
        self.exec(ctx)
    }
    fn update(&self, ctx: &Ctx, _record: &Record, _args: &UpdateArgs) -> Result<i32> {
        self.exec(ctx)
    }
    fn events(&self, ctx: &Ctx, _record: &Record) -> Result<i32> {
        self.exec(ctx)
    }
    fn checkpoint(&self, ctx: &Ctx, _record: &Record) -> Result<i32> {
        self.exec(ctx)
    }
    fn stale_reason(&self, ctx: &Ctx, record: &Record, _root: &Path) -> Option<String> {
        (!self.has_container(ctx, &record.id)).then(|| format!("{} no longer has it", self.name))
    }
    fn remove_stale(&self, ctx: &Ctx, record: &Record, _root: &Path) -> Result<i32> {
        self.force_delete(ctx, &record.id)
    }
    fn states(&self, ctx: &Ctx, records: &[Record]) -> Result<Vec<ContainerState>> {
        let known = self.list_json(ctx)?;
        Ok(records
            .iter()
            .map(|r| {
                known.iter().find(|s| s.id == r.id).cloned().unwrap_or_else(|| ContainerState {
                    // A record the runtime does not know: its container is gone.
                    oci_version: String::new(),
                    id: r.id.clone(),
                    pid: 0,
                    status: "stopped".into(),
                    bundle: r.bundle.clone(),
                    rootfs: PathBuf::new(),
                    created: r.created.clone(),
                    owner: String::new(),
                    annotations: Default::default(),
                })
            })
            .collect())
    }
}

/// Run `<runtime> <args>` and capture stdout (for `features`, `--version`).
pub fn capture(runtime: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new(runtime)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot execute {}", runtime.display()))?;
    if !out.status.success() {
        bail!("{} {} failed: {}", runtime.display(), args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_list_handles_runc_null_and_crun_array() {
        assert!(parse_list(b"null").unwrap().is_empty());
        assert!(parse_list(b"[\n\n]").unwrap().is_empty());
        let l = parse_list(
            br#"[{"ociVersion":"1.0.2","id":"a","pid":42,"status":"running","bundle":"/b","rootfs":"/b/rootfs","created":"2026-01-01T00:00:00Z","owner":""}]"#,
        )
        .unwrap();
        assert_eq!(l[0].id, "a");
        assert_eq!(l[0].pid, 42);
        assert_eq!(l[0].status, "running");
    }

    #[test]
    fn exit_code_of_signal_is_128_plus() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }
}
