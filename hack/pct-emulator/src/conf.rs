//! The PVE container config `/etc/pve/lxc/<vmid>.conf`: parse and write in PVE's layout.
//!
//! Layout: `#` description lines (encoded like PVE's encode_text), `key: value` lines
//! sorted by key, `lxc.environment.runtime` lines, the other raw `lxc.*` lines in file
//! order (always written as `key: value`), then `[pve:pending]` and snapshot sections
//! (pending is parsed, snapshots are kept verbatim).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

#[derive(Debug, Default, Clone)]
pub struct Conf {
    pub description: String,
    pub keys: BTreeMap<String, String>,
    /// Raw `lxc.*` lines, in file order.
    pub lxc: Vec<(String, String)>,
    /// `[pve:pending]` keys (a `delete` key lists pending deletions).
    pub pending: BTreeMap<String, String>,
    /// Snapshot sections, verbatim.
    pub snapshots: String,
}

/// PVE's encode_text: escape everything outside 0x20..0x7e except ':' (UTF-8 bytes as %XX).
pub fn encode_text(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b':' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn decode_text(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Raw LXC keys Proxmox VE 9 keeps in a container config (pve-container 6.1's
/// `is_valid_lxc_conf_key`): these exact keys, plus every `lxc.cgroup2.*`,
/// `lxc.prlimit.*` and `lxc.net.*` key (and the deprecated `lxc.cgroup.*`). Any other
/// raw line is dropped with a warning when pct parses the file, so the next write loses
/// it: the emulator does the same.
const RAW_KEYS: &[&str] = &[
    "lxc.apparmor.profile",
    "lxc.apparmor.allow_incomplete",
    "lxc.apparmor.allow_nesting",
    "lxc.apparmor.raw",
    "lxc.selinux.context",
    "lxc.include",
    "lxc.arch",
    "lxc.uts.name",
    "lxc.signal.halt",
    "lxc.signal.reboot",
    "lxc.signal.stop",
    "lxc.init.cmd",
    "lxc.init.cwd",
    "lxc.init.uid",
    "lxc.init.gid",
    "lxc.init.groups",
    "lxc.pty.max",
    "lxc.console.logfile",
    "lxc.console.path",
    "lxc.tty.max",
    "lxc.devtty.dir",
    "lxc.hook.autodev",
    "lxc.autodev",
    "lxc.kmsg",
    "lxc.mount.fstab",
    "lxc.mount.entry",
    "lxc.mount.auto",
    "lxc.rootfs.mount",
    "lxc.cap.drop",
    "lxc.cap.keep",
    "lxc.seccomp.profile",
    "lxc.seccomp.notify.proxy",
    "lxc.seccomp.notify.cookie",
    "lxc.idmap",
    "lxc.hook.pre-start",
    "lxc.hook.pre-mount",
    "lxc.hook.mount",
    "lxc.hook.start",
    "lxc.hook.stop",
    "lxc.hook.post-stop",
    "lxc.hook.clone",
    "lxc.hook.destroy",
    "lxc.hook.version",
    "lxc.log.level",
    "lxc.log.file",
    "lxc.start.auto",
    "lxc.start.delay",
    "lxc.start.order",
    "lxc.group",
    "lxc.environment",
    "lxc.environment.runtime",
    "lxc.environment.hooks",
    "lxc.sysctl.fs.mqueue",
    "lxc.sysctl.kernel.msgmax",
    "lxc.sysctl.kernel.msgmnb",
    "lxc.sysctl.kernel.msgmni",
    "lxc.sysctl.kernel.sem",
    "lxc.sysctl.kernel.shmall",
    "lxc.sysctl.kernel.shmmax",
    "lxc.sysctl.kernel.shmmni",
    "lxc.sysctl.kernel.shm_rmid_forced",
];

/// Prefixes under which every key is kept.
const RAW_PREFIXES: &[&str] = &["lxc.cgroup2.", "lxc.prlimit.", "lxc.net.", "lxc.cgroup."];

/// Keys PVE refuses with their own message instead of "unable to parse config".
const RAW_REFUSED: &[(&str, &str)] = &[
    ("lxc.rootfs.path", "lxc.rootfs.path is auto generated from rootfs"),
    ("lxc.rootfs.options", "lxc.rootfs.options is not supported"),
];

/// `Ok` when PVE keeps this raw key; `Err(message)` with the reason it drops it.
pub fn raw_key_check(key: &str) -> Result<(), String> {
    if let Some((_, why)) = RAW_REFUSED.iter().find(|(k, _)| *k == key) {
        return Err(format!("{key}: {why}"));
    }
    if RAW_KEYS.contains(&key) || RAW_PREFIXES.iter().any(|p| key.starts_with(p)) {
        Ok(())
    } else {
        Err(String::new())
    }
}

#[cfg(test)]
fn raw_key_known(key: &str) -> bool {
    raw_key_check(key).is_ok()
}

fn split_raw(line: &str) -> Option<(String, String)> {
    if !line.starts_with("lxc.") {
        return None;
    }
    let end = line.find(|c: char| c == ':' || c == '=' || c.is_whitespace())?;
    let key = &line[..end];
    let rest = line[end..].trim_start();
    let rest = rest.strip_prefix(':').or_else(|| rest.strip_prefix('='))?;
    Some((key.to_string(), rest.trim().to_string()))
}

fn split_key(line: &str) -> Option<(String, String)> {
    let (k, v) = line.split_once(':')?;
    let ok = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| (k.to_string(), v.trim().to_string()))
}

impl Conf {
    /// Parse a config as pct does: raw lines PVE does not keep are dropped with its
    /// warning on stderr (`vmid` names the container in it).
    pub fn parse_for(vmid: &str, text: &str) -> Conf {
        let mut conf = Conf::parse(text);
        conf.lxc.retain(|(k, v)| match raw_key_check(k) {
            Ok(()) => true,
            Err(why) if why.is_empty() => {
                eprintln!("vm {vmid} - unable to parse config: {k}: {v}");
                false
            }
            Err(why) => {
                eprintln!("vm {vmid} - {why}");
                false
            }
        });
        conf
    }

    pub fn parse(text: &str) -> Conf {
        let mut conf = Conf::default();
        let mut descr: Vec<String> = Vec::new();
        let mut section = "main".to_string();
        for line in text.lines() {
            let trimmed = line.trim_end();
            if trimmed.starts_with('[') && trimmed.ends_with(']') {
                section = trimmed[1..trimmed.len() - 1].to_string();
                if section != "pve:pending" {
                    conf.snapshots.push_str(trimmed);
                    conf.snapshots.push('\n');
                }
                continue;
            }
            match section.as_str() {
                "main" => {
                    if let Some(c) = trimmed.strip_prefix('#') {
                        descr.push(decode_text(c));
                    } else if let Some((k, v)) = split_raw(trimmed) {
                        conf.lxc.push((k, v));
                    } else if let Some((k, v)) = split_key(trimmed) {
                        conf.keys.insert(k, v);
                    }
                }
                "pve:pending" => {
                    if let Some((k, v)) = split_key(trimmed) {
                        conf.pending.insert(k, v);
                    }
                }
                _ => {
                    conf.snapshots.push_str(line);
                    conf.snapshots.push('\n');
                }
            }
        }
        conf.description = descr.join("\n");
        conf
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        for l in self.description.lines() {
            s.push('#');
            s.push_str(&encode_text(l));
            s.push('\n');
        }
        for (k, v) in &self.keys {
            s.push_str(&format!("{k}: {v}\n"));
        }
        for (k, v) in self.lxc.iter().filter(|(k, _)| k == "lxc.environment.runtime") {
            s.push_str(&format!("{k}: {v}\n"));
        }
        for (k, v) in self.lxc.iter().filter(|(k, _)| k != "lxc.environment.runtime") {
            s.push_str(&format!("{k}: {v}\n"));
        }
        if !self.pending.is_empty() {
            s.push_str("\n[pve:pending]\n");
            for (k, v) in &self.pending {
                s.push_str(&format!("{k}: {v}\n"));
            }
        }
        if !self.snapshots.is_empty() {
            s.push('\n');
            s.push_str(&self.snapshots);
        }
        s
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.keys.get(k).map(String::as_str)
    }

    pub fn load(path: &Path) -> Result<Option<Conf>> {
        match std::fs::read_to_string(path) {
            Ok(t) => {
                let vmid = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
                Ok(Some(Conf::parse_for(vmid, &t)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("unable to read {}", path.display())),
        }
    }

    /// Write atomically (temp file + rename in the same directory).
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.render().as_bytes())
    }

    pub fn hostname(&self, vmid: u32) -> String {
        self.get("hostname").map(str::to_string).unwrap_or_else(|| format!("CT{vmid}"))
    }

    pub fn unprivileged(&self) -> bool {
        self.get("unprivileged") == Some("1")
    }

    /// Indexed keys (`net0`, `mp3`, ...) with their index, sorted by index.
    pub fn indexed(&self, prefix: &str) -> Vec<(u32, &str)> {
        let mut v: Vec<(u32, &str)> = Vec::new();
        for (k, val) in &self.keys {
            let Some(idx) = k.strip_prefix(prefix) else {
                continue;
            };
            if idx.is_empty() || !idx.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Ok(i) = idx.parse() {
                v.push((i, val.as_str()));
            }
        }
        v.sort_by_key(|(i, _)| *i);
        v
    }
}

pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().context("config path has no parent")?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("conf"),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("unable to write {}", tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("unable to rename {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_layout() {
        let text = "#nexcage%3A id=abc\n#second line\nswap: 512\narch: amd64\nlxc.init.cmd = /sbin/init x\nhostname: x\nlxc.environment.runtime: A=1\nlxc.mount.entry: /a b none bind 0 0\n";
        let c = Conf::parse(text);
        assert_eq!(c.description, "nexcage: id=abc\nsecond line");
        assert_eq!(
            c.render(),
            "#nexcage%3A id=abc\n#second line\narch: amd64\nhostname: x\nswap: 512\nlxc.environment.runtime: A=1\nlxc.init.cmd: /sbin/init x\nlxc.mount.entry: /a b none bind 0 0\n"
        );
    }

    #[test]
    fn indexed_keys() {
        let c = Conf::parse("net10: name=b\nnet2: name=a\nnetx: 1\n");
        assert_eq!(c.indexed("net"), vec![(2, "name=a"), (10, "name=b")]);
    }

    #[test]
    fn raw_keys() {
        assert!(raw_key_known("lxc.cgroup2.pids.max"));
        assert!(raw_key_known("lxc.environment.runtime"));
        assert!(raw_key_known("lxc.init.cmd"));
        assert!(!raw_key_known("lxc.bogus"));
        assert!(!raw_key_known("lxc.namespace.share.net"));
        assert!(!raw_key_known("lxc.sysctl.net.ipv4.ip_forward"));
        assert!(raw_key_known("lxc.sysctl.kernel.msgmax"));
        assert!(raw_key_known("lxc.net.0.type"));
        assert!(raw_key_known("lxc.include"));
        assert!(raw_key_check("lxc.rootfs.path").unwrap_err().contains("auto generated"));
        let c = Conf::parse_for("9000", "arch: amd64\nlxc.include: /x\nlxc.proc.oom_score_adj: 5\n");
        assert_eq!(c.lxc, vec![("lxc.include".to_string(), "/x".to_string())]);
    }
}
