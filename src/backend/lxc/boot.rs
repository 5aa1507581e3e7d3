//! Which boot of the host a container was made in.
//!
//! OCI state lives on a tmpfs (`--root`, the run directories), and the supervisor that
//! is the container for the engine does not survive a reboot, so a Proxmox CT that
//! nexcage made in an earlier boot is only a leftover: the engines make their containers
//! again (`docker run --restart always`, Podman's restart policies, kubelet), with the
//! same OCI id. nexcage writes the boot id into each CT's description (pveconf.rs); a CT
//! of a release that did not is judged by its creation time against the boot time.

use std::time::{Duration, SystemTime};

use super::pveconf::TaggedContainer;

/// This boot's id (`/proc/sys/kernel/random/boot_id`).
pub fn current_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string()).filter(|i| !i.is_empty())
}

/// When this boot began (`btime` of /proc/stat).
fn boot_time() -> Option<SystemTime> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let secs: u64 = stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Whether `c` was made in an earlier boot of this host, given this boot's id and start.
/// Without a recorded boot id, a creation time more than a second before the boot
/// (btime is whole seconds) decides; with neither, the answer is no.
fn earlier(c: &TaggedContainer, now_id: Option<&str>, booted: Option<SystemTime>) -> bool {
    if let (Some(made_in), Some(now)) = (c.boot.as_deref(), now_id) {
        return made_in != now;
    }
    let created = c.created.as_deref().and_then(|t| humantime::parse_rfc3339(t).ok());
    match (created, booted) {
        (Some(created), Some(booted)) => created + Duration::from_secs(1) < booted,
        _ => false,
    }
}

/// Whether `c` was made in an earlier boot of this host. The boot's id and start are
/// read once per process (`list` and `gc` ask for every CT of the node).
pub fn from_earlier_boot(c: &TaggedContainer) -> bool {
    static THIS_BOOT: std::sync::OnceLock<(Option<String>, Option<SystemTime>)> = std::sync::OnceLock::new();
    let (id, booted) = THIS_BOOT.get_or_init(|| (current_id(), boot_time()));
    earlier(c, id.as_deref(), *booted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(boot: Option<&str>, created: Option<&str>) -> TaggedContainer {
        TaggedContainer {
            vmid: 9000,
            oci_id: "web".into(),
            bundle: "/b".into(),
            state_root: None,
            created: created.map(str::to_string),
            boot: boot.map(str::to_string),
            hostname: None,
            lock: None,
        }
    }

    #[test]
    fn the_boot_id_decides_when_recorded() {
        let booted = Some(humantime::parse_rfc3339("2026-11-30T06:00:00Z").unwrap());
        let old_time = Some("2026-11-29T06:00:00Z");
        assert!(!earlier(&ct(Some("b1"), old_time), Some("b1"), booted), "same boot, whatever the clock says");
        assert!(earlier(&ct(Some("b0"), Some("2026-11-30T07:00:00Z")), Some("b1"), booted));
    }

    #[test]
    fn without_a_boot_id_the_creation_time_decides() {
        let booted = Some(humantime::parse_rfc3339("2026-11-30T06:00:00Z").unwrap());
        assert!(earlier(&ct(None, Some("2026-11-30T05:59:58.5Z")), Some("b1"), booted));
        assert!(!earlier(&ct(None, Some("2026-11-30T05:59:59.5Z")), Some("b1"), booted), "btime is whole seconds");
        assert!(!earlier(&ct(None, Some("2026-11-30T06:00:01Z")), Some("b1"), booted));
        assert!(!earlier(&ct(None, None), Some("b1"), booted), "nothing recorded: not judged stale");
        assert!(!earlier(&ct(None, Some("garbage")), Some("b1"), booted));
    }

    #[test]
    fn this_host_has_a_boot_id_and_time() {
        assert_eq!(current_id().unwrap().len(), 36);
        assert!(boot_time().unwrap() < SystemTime::now());
        let fresh = ct(current_id().as_deref(), Some(&crate::state::now_rfc3339()));
        assert!(!from_earlier_boot(&fresh));
    }
}
