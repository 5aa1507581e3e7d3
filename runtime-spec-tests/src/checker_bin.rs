//! Finding (or building) the static in-container checker, and busybox.
//!
//! Lookup order for the checker:
//! 1. `--checker PATH` or the `RST_CHECKER` environment variable;
//! 2. `rst-checker` next to the harness binary, if it is statically linked;
//! 3. `<target>/x86_64-unknown-linux-gnu/{debug,release}/rst-checker` of the cargo
//!    target dir the harness was built in (where
//!    `RUSTFLAGS='-C target-feature=+crt-static' cargo build --target x86_64-unknown-linux-gnu`
//!    puts it), and `<target>/rst-checker-static/...` (where step 4 builds it);
//! 4. otherwise build it with cargo from this crate's source directory into
//!    `<target>/rst-checker-static` (a separate target dir, so it works while an outer
//!    cargo holds the lock of the main one, e.g. under `cargo test`).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// True when `path` is an ELF executable without a PT_INTERP program header, i.e. it
/// needs no dynamic loader and runs in an empty rootfs.
pub fn is_static_elf(path: &Path) -> bool {
    let Ok(b) = std::fs::read(path) else {
        return false;
    };
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return false; // only ELF64 little endian is handled
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]));
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8])) as usize;
    let (phoff, phentsize, phnum) = (u64_at(32), u16_at(54), u16_at(56));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > b.len() {
            return false;
        }
        if u32_at(o) == 3 {
            return false; // PT_INTERP
        }
    }
    true
}

/// The cargo target dir the running harness lives in, if it looks like one.
fn target_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(d));
    }
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/runtime-spec-tests or target/<profile>/deps/<test>-hash
    for anc in exe.ancestors().skip(1) {
        if anc.join(".rustc_info.json").exists() || anc.join("CACHEDIR.TAG").exists() {
            return Some(anc.to_path_buf());
        }
    }
    None
}

fn candidates() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(d) = exe.parent() {
            v.push(d.join("rst-checker"));
        }
    }
    if let Some(t) = target_dir() {
        for base in [t.clone(), t.join("rst-checker-static")] {
            for profile in ["release", "debug"] {
                v.push(base.join(TRIPLE).join(profile).join("rst-checker"));
            }
        }
    }
    v
}

/// Source dir of this crate, when the harness runs from a checkout.
fn crate_dir() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    d.join("src/bin/rst-checker.rs").exists().then_some(d)
}

fn newest_source(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for f in ["src/bin/rst-checker.rs", "Cargo.toml"] {
        if let Ok(m) = std::fs::metadata(dir.join(f)).and_then(|m| m.modified()) {
            newest = newest.max(Some(m));
        }
    }
    newest
}

/// Find the static checker, building it when none is found (or the found one is
/// older than its source in this checkout).
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit.map(Path::to_path_buf).or_else(|| std::env::var_os("RST_CHECKER").map(PathBuf::from)) {
        if !is_static_elf(&p) {
            bail!("checker {} is missing or not a statically linked ELF executable", p.display());
        }
        return Ok(p);
    }
    let src_time = crate_dir().as_deref().and_then(newest_source);
    for c in candidates() {
        if is_static_elf(&c) {
            let fresh = match (src_time, std::fs::metadata(&c).and_then(|m| m.modified()).ok()) {
                (Some(s), Some(b)) => b >= s,
                _ => true,
            };
            if fresh {
                return Ok(c);
            }
        }
    }
    build()
}

fn build() -> Result<PathBuf> {
    let Some(src) = crate_dir() else {
        bail!("no static rst-checker found; build it with RUSTFLAGS='-C target-feature=+crt-static' cargo build -p runtime-spec-tests --bin rst-checker --target {TRIPLE} and pass --checker PATH");
    };
    let target = target_dir().unwrap_or_else(|| src.join("../target")).join("rst-checker-static");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("# building the static checker into {}", target.display());
    let st = std::process::Command::new(&cargo)
        .current_dir(&src)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_TARGET_DIR")
        .args([
            "build",
            "--quiet",
            "-p",
            "runtime-spec-tests",
            "--bin",
            "rst-checker",
            "--target",
            TRIPLE,
            "--target-dir",
        ])
        .arg(&target)
        .stdout(std::process::Stdio::null())
        .status()
        .context("run cargo to build rst-checker")?;
    if !st.success() {
        bail!("building rst-checker failed ({st})");
    }
    let p = target.join(TRIPLE).join("debug").join("rst-checker");
    if !is_static_elf(&p) {
        bail!("{} was built but is not static", p.display());
    }
    Ok(p)
}

/// busybox-static for the test rootfs: `RST_BUSYBOX` or /bin/busybox.
pub fn busybox() -> Result<PathBuf> {
    let p = std::env::var_os("RST_BUSYBOX").map(PathBuf::from).unwrap_or_else(|| "/bin/busybox".into());
    if !is_static_elf(&p) {
        bail!("{} is missing or dynamically linked: apt-get install busybox-static (or set RST_BUSYBOX)", p.display());
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_dynamic_and_non_elf() {
        // The test binary itself is dynamically linked.
        let me = std::env::current_exe().unwrap();
        assert!(!is_static_elf(&me));
        assert!(!is_static_elf(Path::new("/etc/passwd")));
        assert!(!is_static_elf(Path::new("/nonexistent")));
    }
}
