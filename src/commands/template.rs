//! `template list` / `template prune`: the proxmox-lxc template cache
//! (`nexcage-<digest>.tar.zst` in each proxmox-lxc backend's template storage).
//!
//! A template is needed only until `pct create` has extracted it; afterwards it is a
//! cache that makes the next create of the same rootfs cheap. `prune` removes templates
//! that no record under this `--root` was created from and that are older than
//! `--min-age` (default 10 minutes), so a create running concurrently (between building
//! its template and `pct create`) never loses its template.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::time::{Duration, SystemTime};

use anyhow::Result;

use super::Ctx;
use crate::backend::lxc::host::{template_cache, template_dir, template_of};
use crate::cli::{TemplateArgs, TemplateCommand};
use crate::config::{BackendConfig, Config};
use crate::state::BackendKind;

pub fn template(ctx: &Ctx, args: &TemplateArgs) -> Result<i32> {
    let config = Config::load()?;
    // Which records (ids) were created from which template.
    let mut used_by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in ctx.store.ids()? {
        let Ok(record) = ctx.store.load(&id) else { continue };
        if record.kind != BackendKind::ProxmoxLxc {
            continue;
        }
        if let Some(template) = template_of(&record) {
            used_by.entry(template).or_default().push(id);
        }
    }
    let mut out = std::io::stdout().lock();
    let mut dirs = HashSet::new();
    for (name, backend) in &config.backends {
        let BackendConfig::ProxmoxLxc(cfg) = backend else { continue };
        let dir = template_dir(cfg)?;
        if !dirs.insert(dir.clone()) {
            continue; // two backends sharing one storage
        }
        let cache = template_cache(cfg, &dir);
        match &args.command {
            TemplateCommand::List => {
                writeln!(out, "# backend {name}: {}", dir.display())?;
                writeln!(out, "{:<48} {:>10} {:>8}  USED BY", "TEMPLATE", "SIZE", "AGE")?;
                for t in cache.list()? {
                    let users = used_by.get(&t.file_name).map(|v| v.join(",")).unwrap_or_else(|| "-".into());
                    writeln!(out, "{:<48} {:>10} {:>8}  {users}", t.file_name, human_bytes(t.bytes), age(t.modified))?;
                }
            }
            TemplateCommand::Prune { min_age, dry_run } => {
                let min_age = Duration::from_secs(*min_age);
                let mut keep: HashSet<String> = used_by.keys().cloned().collect();
                for t in cache.list()? {
                    let young = SystemTime::now().duration_since(t.modified).unwrap_or_default() < min_age;
                    if young || *dry_run {
                        if young {
                            keep.insert(t.file_name.clone());
                        } else if !keep.contains(&t.file_name) {
                            writeln!(out, "would remove {}", t.path.display())?;
                        }
                    }
                }
                if !*dry_run {
                    for removed in cache.prune(&keep)? {
                        writeln!(out, "removed {}", dir.join(removed).display())?;
                    }
                }
            }
        }
    }
    Ok(0)
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn age(t: SystemTime) -> String {
    let s = SystemTime::now().duration_since(t).unwrap_or_default().as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(200 * 1024 * 1024), "200.0 MiB");
    }
}
