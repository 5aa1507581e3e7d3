//! Template extraction with tar, as pct does it: `--skip-old-files`, `./dev/*` excluded,
//! numeric owners; for unprivileged containers tar runs under `lxc-usernsexec` with the
//! container's id map, so ownership is shifted by 100000. Argument vectors only.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

fn decompress_flag(archive: &Path) -> Option<&'static str> {
    let n = archive.to_string_lossy().to_ascii_lowercase();
    if n.ends_with(".tar.gz") || n.ends_with(".tgz") {
        Some("-z")
    } else if n.ends_with(".tar.xz") {
        Some("-J")
    } else if n.ends_with(".tar.zst") {
        Some("--zstd")
    } else if n.ends_with(".tar.bz2") {
        Some("-j")
    } else {
        None
    }
}

pub fn extract(archive: &Path, rootdir: &Path, unprivileged: bool, ignore_errors: bool) -> Result<()> {
    let input = File::open(archive).with_context(|| format!("unable to open {}", archive.display()))?;
    let mut cmd = if unprivileged {
        let mut c = Command::new("lxc-usernsexec");
        c.args(["-m", "u:0:100000:65536", "-m", "g:0:100000:65536", "--", "tar"]);
        c
    } else {
        Command::new("tar")
    };
    cmd.args(["xpf", "-"]);
    if let Some(f) = decompress_flag(archive) {
        cmd.arg(f);
    }
    cmd.args([
        "--totals",
        "--one-file-system",
        "-p",
        "--sparse",
        "--numeric-owner",
        "--acls",
        "--xattrs",
        "--xattrs-include=user.*",
        "--xattrs-include=security.capability",
        "--warning=no-file-ignored",
        "--warning=no-xattr-write",
        "-C",
    ]);
    cmd.arg(rootdir);
    cmd.args(["--skip-old-files", "--anchored", "--exclude", "./dev/*"]);
    // tar's totals and messages belong to the task log (stdout).
    let out = std::io::stdout();
    use std::os::fd::AsFd;
    let stdout_fd = out.as_fd().try_clone_to_owned()?;
    let stderr_fd = out.as_fd().try_clone_to_owned()?;
    let st = cmd
        .stdin(input)
        .stdout(Stdio::from(stdout_fd))
        .stderr(Stdio::from(stderr_fd))
        .status()
        .context("unable to run tar")?;
    if !st.success() {
        if ignore_errors {
            crate::output::warn("tar reported errors; ignored (--ignore-unpack-errors)");
            return Ok(());
        }
        bail!("command 'tar xpf - ...' failed: exit code {}", st.code().unwrap_or(-1));
    }
    Ok(())
}
