//! OS and architecture detection in an extracted rootfs (paths resolved inside it).

use std::path::{Component, Path, PathBuf};

/// Resolve `path` inside `root`, following symlinks as if `root` were `/`.
pub fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let mut cur = PathBuf::new();
    let mut todo: Vec<String> = path.split('/').filter(|c| !c.is_empty()).rev().map(str::to_string).collect();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        let cand = cur.join(&c);
        let full = root.join(&cand);
        match std::fs::symlink_metadata(&full) {
            Ok(md) if md.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                let target = std::fs::read_link(&full).ok()?;
                if target.is_absolute() {
                    cur = PathBuf::new();
                }
                for comp in target.components().rev() {
                    if let Component::Normal(n) = comp {
                        todo.push(n.to_string_lossy().into_owned());
                    } else if comp == Component::ParentDir {
                        todo.push("..".into());
                    }
                }
            }
            Ok(_) => cur = cand,
            Err(_) => return None,
        }
    }
    Some(root.join(cur))
}

pub enum Detected {
    Os(&'static str),
    /// No os-release and no marker file.
    Unknown,
    /// An os-release with an unsupported ID.
    Unsupported(String),
}

pub fn detect(root: &Path) -> Detected {
    if let Some(text) = resolve_in_root(root, "/etc/os-release").and_then(|p| std::fs::read_to_string(p).ok()) {
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("ID="))
            .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
            .unwrap_or_default();
        return match id.as_str() {
            "debian" => Detected::Os("debian"),
            "devuan" => Detected::Os("devuan"),
            "ubuntu" => Detected::Os("ubuntu"),
            "centos" | "rhel" | "rocky" | "almalinux" | "ol" => Detected::Os("centos"),
            "fedora" => Detected::Os("fedora"),
            "opensuse" | "opensuse-leap" | "opensuse-tumbleweed" | "sles" => Detected::Os("opensuse"),
            "arch" | "archarm" => Detected::Os("archlinux"),
            "alpine" => Detected::Os("alpine"),
            "gentoo" => Detected::Os("gentoo"),
            "nixos" => Detected::Os("nixos"),
            _ => Detected::Unsupported(id),
        };
    }
    for (file, os) in [
        ("/etc/devuan_version", "devuan"),
        ("/etc/debian_version", "debian"),
        ("/etc/alpine-release", "alpine"),
        ("/etc/arch-release", "archlinux"),
        ("/etc/gentoo-release", "gentoo"),
        ("/etc/fedora-release", "fedora"),
        ("/etc/centos-release", "centos"),
        ("/etc/redhat-release", "centos"),
        ("/etc/SuSE-release", "opensuse"),
    ] {
        if resolve_in_root(root, file).is_some() {
            return Detected::Os(os);
        }
    }
    Detected::Unknown
}

/// Architecture from the ELF header of the rootfs' /bin/sh (as PVE does).
pub fn detect_arch(root: &Path) -> Option<&'static str> {
    let p = resolve_in_root(root, "/bin/sh")?;
    let data = std::fs::read(p).ok()?;
    if data.len() < 20 || &data[..4] != b"\x7fELF" {
        return None;
    }
    let class = data[4];
    let little = data[5] == 1;
    let machine =
        if little { u16::from_le_bytes([data[18], data[19]]) } else { u16::from_be_bytes([data[18], data[19]]) };
    Some(match (machine, class) {
        (62, _) => "amd64",
        (3, _) => "i386",
        (183, _) => "arm64",
        (40, _) => "armhf",
        (243, 1) => "riscv32",
        (243, 2) => "riscv64",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_symlink_inside_root() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::create_dir_all(d.path().join("usr/lib")).unwrap();
        std::fs::write(d.path().join("usr/lib/os-release"), "NAME=x\nID=\"alpine\"\n").unwrap();
        std::os::unix::fs::symlink("/usr/lib/os-release", d.path().join("etc/os-release")).unwrap();
        assert!(matches!(detect(d.path()), Detected::Os("alpine")));
        std::fs::write(d.path().join("usr/lib/os-release"), "ID=plan9\n").unwrap();
        assert!(matches!(detect(d.path()), Detected::Unsupported(_)));
    }
}
