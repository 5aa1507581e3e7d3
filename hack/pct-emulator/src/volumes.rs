//! Storages and volumes: only directory storages. Without `/etc/pve/storage.cfg`,
//! storage `local` is the directory `/var/lib/vz` (under an emulator root, paths in
//! storage.cfg are taken relative to the root as well).

use std::path::PathBuf;

use anyhow::Result;

use crate::output::die;
use crate::paths::Paths;

/// The directory of a storage.
pub fn storage_path(paths: &Paths, storage: &str) -> Result<PathBuf> {
    let cfg = std::fs::read_to_string(paths.storage_cfg()).ok();
    let Some(cfg) = cfg else {
        return if storage == "local" {
            Ok(paths.vz.clone())
        } else {
            Err(die(format!("storage '{storage}' does not exist")))
        };
    };
    let mut current: Option<(String, String)> = None;
    for line in cfg.lines() {
        if !line.starts_with(char::is_whitespace) && line.contains(':') {
            let (t, id) = line.split_once(':').expect("checked");
            current = Some((t.trim().to_string(), id.trim().to_string()));
            continue;
        }
        if let Some((t, id)) = &current {
            if id == storage {
                let l = line.trim();
                if let Some(p) = l.strip_prefix("path ") {
                    if t != "dir" {
                        return Err(die(format!("storage '{storage}': type '{t}' is not emulated (only dir)")));
                    }
                    let p = p.trim();
                    return Ok(match &paths.root {
                        Some(r) => r.join(p.trim_start_matches('/')),
                        None => PathBuf::from(p),
                    });
                }
            }
        }
    }
    if storage == "local" {
        Ok(paths.vz.clone())
    } else {
        Err(die(format!("storage '{storage}' does not exist")))
    }
}

/// The content types of a (dir) storage: its `content` line, else the dir default
/// (images, rootdir); without storage.cfg, `local` has every type.
pub fn storage_content(paths: &Paths, storage: &str) -> Vec<String> {
    let Ok(cfg) = std::fs::read_to_string(paths.storage_cfg()) else {
        return ["images", "rootdir", "vztmpl", "iso", "backup", "snippets"].map(String::from).to_vec();
    };
    let mut current = false;
    let mut found = false;
    for line in cfg.lines() {
        if !line.starts_with(char::is_whitespace) && line.contains(':') {
            if current {
                break;
            }
            current = line.split_once(':').is_some_and(|(_, id)| id.trim() == storage);
            found |= current;
            continue;
        }
        if current {
            if let Some(c) = line.trim().strip_prefix("content ") {
                return c.split(',').map(|c| c.trim().to_string()).collect();
            }
        }
    }
    if found || storage == "local" {
        vec!["images".into(), "rootdir".into()]
    } else {
        Vec::new()
    }
}

/// Resolve an `ostemplate` argument to a file: `<storage>:vztmpl/<file>` or an absolute path.
pub fn template_path(paths: &Paths, volid: &str) -> Result<PathBuf> {
    if volid.starts_with('/') {
        return Ok(PathBuf::from(volid));
    }
    let Some((storage, volname)) = volid.split_once(':') else {
        return Err(die(format!("unable to parse volume ID '{volid}'")));
    };
    let name = volname.strip_prefix("vztmpl/").filter(|n| !n.contains('/') && template_name_ok(n));
    let Some(name) = name else {
        return Err(die(format!("unable to parse directory volume name '{volname}'")));
    };
    Ok(storage_path(paths, storage)?.join("template/cache").join(name))
}

/// `\.(tar|tar\.(gz|xz|zst|bz2))$`, case-insensitive.
pub fn template_name_ok(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    [".tar", ".tar.gz", ".tar.xz", ".tar.zst", ".tar.bz2"].iter().any(|s| l.ends_with(s) && l.len() > s.len())
}

/// Name of a root or mount point subvolume.
pub fn subvol_name(vmid: u32, disk: u32) -> String {
    format!("subvol-{vmid}-disk-{disk}")
}

/// Host directory of a volume `<storage>:subvol-<vmid>-disk-<n>`.
pub fn volume_path(paths: &Paths, volid: &str) -> Option<PathBuf> {
    let (storage, name) = volid.split_once(':')?;
    let rest = name.strip_prefix("subvol-")?;
    let vmid = rest.split('-').next()?;
    let base = storage_path(paths, storage).ok()?;
    Some(base.join("images").join(vmid).join(name))
}

/// What an `mpN` volume mounts: a host path as is, a storage volume's directory.
pub fn mount_source(paths: &Paths, volume: &str) -> String {
    if volume.starts_with('/') {
        return volume.to_string();
    }
    volume_path(paths, volume).map(|p| p.display().to_string()).unwrap_or_else(|| volume.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_names() {
        assert!(template_name_ok("a.tar.zst"));
        assert!(template_name_ok("A.TAR.GZ"));
        assert!(!template_name_ok("a.zip"));
        assert!(!template_name_ok(".tar"));
    }
}
