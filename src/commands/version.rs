//! `version` / `--version`: nexcage's version and each configured backend's.

use anyhow::Result;

use crate::backend::find_binary;
use crate::backend::oci::capture;
use crate::config::{BackendConfig, Config};

/// OCI runtime-spec version nexcage implements.
pub const OCI_VERSION: &str = "1.2.0";

pub fn version() -> Result<i32> {
    println!("nexcage version {}", env!("CARGO_PKG_VERSION"));
    println!("spec: {OCI_VERSION}");
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            println!("configuration: {e}");
            return Ok(0);
        }
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
        println!("backend {name} ({}): {detail}", backend.kind());
    }
    Ok(0)
}
