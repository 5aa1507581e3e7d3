//! `version` / `--version`: nexcage's version and each configured backend's.

use std::io::Write;

use anyhow::Result;

use crate::backend::find_binary;
use crate::backend::oci::capture;
use crate::config::{BackendConfig, Config};

use crate::OCI_VERSION;

pub fn version() -> Result<i32> {
    let mut out = std::io::stdout().lock();
    match write_versions(&mut out) {
        // A reader that stops early (`nexcage --version | head -1`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        other => other.map(|()| 0).map_err(Into::into),
    }
}

fn write_versions(out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "nexcage version {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(out, "spec: {OCI_VERSION}")?;
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => return writeln!(out, "configuration: {e}"),
    };
    for (name, backend) in &config.backends {
        let detail = match backend {
            BackendConfig::Oci(oci) => match find_binary(&oci.path) {
                Some(p) => {
                    let v = capture(&p, &["--version"])
                        .ok()
                        .map(|o| String::from_utf8_lossy(&o).lines().next().unwrap_or("").to_string());
                    format!("{} ({})", p.display(), v.unwrap_or_else(|| "version unknown".into()))
                }
                None => format!("{} not found", oci.path),
            },
            BackendConfig::ProxmoxLxc(lxc) => match find_binary(&lxc.pct) {
                Some(p) => format!("pct {}", p.display()),
                None => format!("{} not found", lxc.pct),
            },
        };
        writeln!(out, "backend {name} ({}): {detail}", backend.kind())?;
    }
    Ok(())
}
