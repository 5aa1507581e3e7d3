//! What the proxmox-lxc backend needs from the host, found as `create` finds it:
//! nexcage-init, the template directory and its cache, and which template a record's
//! container was made from. `doctor`, `template` and `gc` ask this module (not create.rs
//! or the record's data), so they and `create` never disagree.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::data::LxcData;
use super::template::TemplateCache;
use super::{run_dir, storage};
use crate::config::LxcBackendConfig;
use crate::state::Record;

pub use super::run_dir::check_reachable;

/// The nexcage-init binary: the configured one; else `nexcage-init` next to the nexcage
/// executable; else, in a cargo target directory (`target/<profile>/nexcage`), the static
/// build hack/build-init makes (`target/<arch>-unknown-linux-gnu/<profile>/nexcage-init`),
/// since `cargo build` puts a dynamically linked one next to nexcage.
pub fn find_init(cfg: &LxcBackendConfig) -> Result<PathBuf> {
    if let Some(p) = &cfg.init {
        if !p.is_file() {
            bail!(
                "nexcage-init not found at {} (the proxmox-lxc backend's `init`): build it with hack/build-init",
                p.display()
            );
        }
        run_dir::check_static(p)?;
        return Ok(p.clone());
    }
    let exe = std::env::current_exe().context("cannot find the nexcage executable")?;
    let beside = exe.with_file_name("nexcage-init");
    let mut candidates = vec![beside.clone()];
    if let (Some(profile_dir), Some(profile)) = (exe.parent(), exe.parent().and_then(|p| p.file_name())) {
        if let Some(target) = profile_dir.parent() {
            let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
            candidates.push(target.join(&triple).join(profile).join("nexcage-init"));
            candidates.push(target.join(&triple).join("release").join("nexcage-init"));
        }
    }
    let mut first_error = None;
    for c in &candidates {
        if !c.is_file() {
            continue;
        }
        match run_dir::check_static(c) {
            Ok(()) => return Ok(c.clone()),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    Err(first_error.unwrap_or_else(|| {
        anyhow!(
            "nexcage-init not found next to {}: install the static build of hack/build-init there, or set `init` in the proxmox-lxc backend's configuration",
            exe.display()
        )
    }))
}

/// Where templates of `storage` live on this host: `template/cache` of a `dir` storage
/// (`local` is /var/lib/vz unless storage.cfg says otherwise, see `storage::parse`).
pub fn template_dir(cfg: &LxcBackendConfig) -> Result<PathBuf> {
    let id = &cfg.template_storage;
    let storages = storage::load(&cfg.pve_root)?;
    match storages.get(id).ok().filter(|s| s.kind == "dir").and_then(|s| s.path.as_deref()) {
        Some(p) => Ok(cfg.pve_root.join(p.strip_prefix("/").unwrap_or(p)).join("template/cache")),
        None => bail!(
            "template_storage {id:?} is not a directory storage in {}: use a `dir` storage with vztmpl content (e.g. local)",
            storages.path.display()
        ),
    }
}

/// The template cache over `dir` (this backend's [`template_dir`]): its index and locks
/// live under the PVE root.
pub fn template_cache(cfg: &LxcBackendConfig, dir: &Path) -> TemplateCache {
    TemplateCache::new(dir, cfg.pve_root.join("var/lib/nexcage/template-index"))
}

/// The template file a proxmox-lxc record's container was created from; `None` when the
/// record has no placed container or does not know (rebuilt from Proxmox).
pub fn template_of(record: &Record) -> Option<String> {
    LxcData::of(record).ok().map(|d| d.template.clone()).filter(|t| !t.is_empty())
}
