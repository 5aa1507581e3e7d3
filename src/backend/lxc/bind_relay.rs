//! Bind sources an unprivileged container's root cannot reach, relayed through its run
//! directory.
//!
//! LXC makes an unprivileged container's `lxc.mount.entry` bind mounts from inside the
//! container's user namespace, as the container's root (host uid 100000 by default): it
//! must be able to search every directory above the source. Engines keep the files they
//! bind into every container (resolv.conf, hosts, hostname, `.containerenv`, the `/dev/shm`
//! directory, named volumes) below directories only root may search (Podman's run root,
//! `/var/lib/docker`, containerd's state). Before `pct start`, nexcage (host root)
//! bind-mounts each such source onto a mount point in `<run dir>.binds/` (a directory
//! that, like the run directory, belongs to the container's root) and the entry names
//! that instead. It is the
//! same file, not a copy: the engine's later edits in place are seen inside, as with runc
//! (a file the engine replaces by a rename is not, as with runc's bind mounts).
//! [`super::run_dir::remove`] unmounts them with the run directory.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};

use super::run_dir::{self, fstab_escape, fstab_unescape};

/// Rewrite the bind `lxc.mount.entry` lines of `lines` whose source the container's
/// root (`owner`) cannot reach to name a relay in `run_dir`, mounting each relay.
/// Returns how many were relayed.
pub fn relay(run_dir: &Path, lines: &mut [(String, String)], owner: (u32, u32)) -> Result<usize> {
    let dir = run_dir::binds_dir(run_dir);
    let mut n = 0;
    for (_, value) in lines.iter_mut().filter(|(k, _)| k == "lxc.mount.entry") {
        let mut fields: Vec<String> = value.split_whitespace().map(str::to_string).collect();
        if fields.len() < 4 || !fields[0].starts_with('/') {
            continue;
        }
        let opts: Vec<&str> = fields[3].split(',').collect();
        let recursive = opts.contains(&"rbind");
        if !recursive && !opts.contains(&"bind") {
            continue;
        }
        let source = PathBuf::from(fstab_unescape(&fields[0]));
        if run_dir::unsearchable_ancestor(&source)?.is_none() {
            continue;
        }
        if n == 0 {
            // Root's until every relay is mounted; then the container root's, so that it
            // can search it.
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let target = dir.join(n.to_string());
        let meta = std::fs::metadata(&source).with_context(|| format!("bind source {}", source.display()))?;
        if meta.is_dir() {
            std::fs::DirBuilder::new().mode(0o700).create(&target)
        } else {
            std::fs::File::options().write(true).create_new(true).open(&target).map(drop)
        }
        .with_context(|| format!("cannot create {}", target.display()))?;
        let flags = if recursive { MsFlags::MS_BIND | MsFlags::MS_REC } else { MsFlags::MS_BIND };
        mount(Some(&source), &target, None::<&str>, flags, None::<&str>)
            .with_context(|| format!("cannot relay bind source {} through {}", source.display(), target.display()))?;
        log::debug!("bind source {} relayed through {}", source.display(), target.display());
        fields[0] = fstab_escape(&target);
        *value = fields.join(" ");
        n += 1;
    }
    if n > 0 {
        std::os::unix::fs::chown(&dir, Some(owner.0), Some(owner.1))
            .with_context(|| format!("cannot chown {} to {}:{}", dir.display(), owner.0, owner.1))?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Needs root (mount); skipped otherwise.
    #[test]
    fn unreachable_sources_are_relayed_and_released_with_the_run_dir() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let closed = t.path().join("closed");
        std::fs::create_dir(&closed).unwrap();
        std::fs::write(closed.join("resolv.conf"), "nameserver 10.0.0.1\n").unwrap();
        std::fs::create_dir(closed.join("shm")).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        let open = t.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let run = t.path().join("9000");
        std::fs::create_dir(&run).unwrap();
        let entry = |src: &Path, rest: &str| ("lxc.mount.entry".to_string(), format!("{} {rest}", fstab_escape(src)));
        let mut lines = vec![
            entry(&closed.join("resolv.conf"), "etc/resolv.conf none bind,ro,create=file 0 0"),
            entry(&open, "data none bind,create=dir 0 0"),
            entry(&closed.join("shm"), "dev/shm none rbind,create=dir 0 0"),
            ("lxc.mount.entry".to_string(), "tmpfs tmp tmpfs rw,create=dir 0 0".to_string()),
        ];
        let before = lines.clone();
        assert_eq!(relay(&run, &mut lines, (100000, 100000)).unwrap(), 2);
        let binds = run_dir::binds_dir(&run);
        assert_eq!(lines[0].1, format!("{} etc/resolv.conf none bind,ro,create=file 0 0", binds.join("0").display()));
        assert_eq!(lines[1..2], before[1..2], "a reachable source stays");
        assert_eq!(lines[2].1, format!("{} dev/shm none rbind,create=dir 0 0", binds.join("1").display()));
        assert_eq!(lines[3], before[3]);
        // The same file: an edit in place is seen through the relay.
        std::fs::write(closed.join("resolv.conf"), "nameserver 10.0.0.2\n").unwrap();
        assert_eq!(std::fs::read_to_string(binds.join("0")).unwrap(), "nameserver 10.0.0.2\n");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&binds).unwrap().uid(), 100000);
        run_dir::remove(&run).unwrap();
        assert!(!run.exists());
        assert_eq!(std::fs::read_to_string(closed.join("resolv.conf")).unwrap(), "nameserver 10.0.0.2\n");
    }
}
