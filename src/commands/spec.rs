//! `spec`: write a default config.json, as the default (or first) oci backend does.

use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::{anyhow, Result};

use super::Ctx;
use crate::backend::oci::OciBackend;
use crate::config::{BackendConfig, Config};

pub fn spec(ctx: &Ctx) -> Result<i32> {
    let config = Config::load()?;
    let oci = |name: &str| match config.backend(name) {
        Some(BackendConfig::Oci(o)) => Some((name.to_string(), o.path.clone())),
        _ => None,
    };
    let (name, path) = oci(&config.default_backend)
        .or_else(|| config.backends.keys().find_map(|n| oci(n)))
        .ok_or_else(|| anyhow!("spec needs an oci backend (crun or runc) in the configuration"))?;
    let b = OciBackend::resolve(&name, &path)?;
    let err = Command::new(&b.runtime).args(&ctx.globals.forward).args(&ctx.words).exec();
    Err(anyhow!(err).context(format!("cannot execute {}", b.runtime.display())))
}
