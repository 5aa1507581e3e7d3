//! OCI mount options as an `lxc.mount.entry` can carry them.
//!
//! LXC sets or clears mount flags for the option names in its own table and hands every
//! other option to the filesystem as data. LXC 6 (Proxmox VE 9) does not know several
//! options the runtime spec defines, so passing them on either stops the container from
//! starting (`tmpfs: Unknown parameter 'loud'`, with pct saying only "startup failed") or,
//! on a bind mount, whose data the kernel ignores, drops them silently (a bind asking
//! for `rro` would be writable). Each such option is therefore mapped here:
//! - the recursive forms (`rro`, `rnosuid`, ...) become the plain flag, which is the same
//!   thing on a mount with nothing below it (a tmpfs, a bind, an `rbind` of a tree without
//!   submounts); on an `rbind` of a tree with submounts LXC would set the flag on the top
//!   mount only, so they are refused by name;
//! - options that only clear a flag a new mount does not have (`loud`, `symfollow`,
//!   `noiversion`, `nolazytime`) and `silent` (which only quiets the kernel's log of a
//!   failing mount) change nothing the program can see, and are left out;
//! - `iversion`, which LXC cannot set, is refused by name.
//!
//! Options that are not OCI mount options (`size=64m`, `mode=1777`, ...) are filesystem
//! data, as the spec says, and pass unchanged.

use thiserror::Error;

/// The option names LXC 6.0's mount table knows (flags and propagation); LXC 5.0 knows
/// the same names.
const LXC_KNOWN: &[&str] = &[
    "atime",
    "dev",
    "diratime",
    "exec",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "norelatime",
    "nostrictatime",
    "nosymfollow",
    "nosuid",
    "relatime",
    "ro",
    "rw",
    "strictatime",
    "suid",
    "bind",
    "move",
    "defaults",
    "rbind",
    "sync",
    "async",
    "dirsync",
    "lazytime",
    "mand",
    "nomand",
    "remount",
    "private",
    "shared",
    "slave",
    "unbindable",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
];

/// Recursive mount attributes and the plain flag each is on a mount without submounts.
const RECURSIVE: &[(&str, &str)] = &[
    ("rro", "ro"),
    ("rrw", "rw"),
    ("rnosuid", "nosuid"),
    ("rsuid", "suid"),
    ("rnodev", "nodev"),
    ("rdev", "dev"),
    ("rnoexec", "noexec"),
    ("rexec", "exec"),
    ("rnoatime", "noatime"),
    ("ratime", "atime"),
    ("rnodiratime", "nodiratime"),
    ("rdiratime", "diratime"),
    ("rrelatime", "relatime"),
    ("rnorelatime", "norelatime"),
    ("rstrictatime", "strictatime"),
    ("rnostrictatime", "nostrictatime"),
    ("rnosymfollow", "nosymfollow"),
    ("rsymfollow", "symfollow"),
];

/// Options without any effect the program can see on a mount LXC makes.
const NO_EFFECT: &[&str] = &["loud", "silent", "symfollow", "noiversion", "nolazytime"];

#[derive(Debug, Error, PartialEq, Eq)]
pub enum Unsupported {
    #[error("{0:?} applies to every mount below an rbind, and LXC sets it on the top mount only")]
    RecursiveOverSubmounts(String),
    #[error("{0:?} cannot be set by LXC, which would hand it to the filesystem")]
    NotSettable(String),
}

/// What an `lxc.mount.entry` gets for one OCI option: `Some(name)`, or `None` when the
/// option is left out. `rbind_over_submounts`: the mount is an rbind of a tree that has
/// mounts below it.
pub fn for_lxc(option: &str, rbind_over_submounts: bool) -> Result<Option<&str>, Unsupported> {
    if LXC_KNOWN.contains(&option) {
        return Ok(Some(option));
    }
    if let Some((_, plain)) = RECURSIVE.iter().find(|(r, _)| *r == option) {
        if rbind_over_submounts {
            return Err(Unsupported::RecursiveOverSubmounts(option.to_string()));
        }
        return for_lxc(plain, false);
    }
    if NO_EFFECT.contains(&option) {
        return Ok(None);
    }
    if option == "iversion" {
        return Err(Unsupported::NotSettable(option.to_string()));
    }
    Ok(Some(option))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lxcs_own_names_and_filesystem_data_pass_unchanged() {
        for o in ["ro", "nosuid", "rbind", "rprivate", "nosymfollow", "size=64m", "mode=1777", "uid=0"] {
            assert_eq!(for_lxc(o, false), Ok(Some(o)), "{o}");
            assert_eq!(for_lxc(o, true), Ok(Some(o)), "{o}");
        }
    }

    #[test]
    fn recursive_attributes_are_the_plain_flag_without_submounts() {
        assert_eq!(for_lxc("rro", false), Ok(Some("ro")));
        assert_eq!(for_lxc("rnoexec", false), Ok(Some("noexec")));
        assert_eq!(for_lxc("ratime", false), Ok(Some("atime")));
        // symfollow clears a flag a new mount does not have.
        assert_eq!(for_lxc("rsymfollow", false), Ok(None));
        for (r, _) in RECURSIVE {
            assert!(for_lxc(r, false).is_ok(), "{r}");
            assert_eq!(for_lxc(r, true), Err(Unsupported::RecursiveOverSubmounts(r.to_string())));
        }
    }

    #[test]
    fn options_without_effect_are_left_out_and_iversion_is_refused() {
        for o in NO_EFFECT {
            assert_eq!(for_lxc(o, false), Ok(None), "{o}");
        }
        assert_eq!(for_lxc("iversion", false), Err(Unsupported::NotSettable("iversion".into())));
        assert!(for_lxc("iversion", false).unwrap_err().to_string().contains("\"iversion\""));
    }

    /// Every option the runtime spec defines either is in LXC's table or has a rule
    /// here, so none reaches a filesystem as data by accident.
    #[test]
    fn every_runtime_spec_option_has_a_rule() {
        let spec = [
            "async",
            "atime",
            "bind",
            "defaults",
            "dev",
            "diratime",
            "dirsync",
            "exec",
            "iversion",
            "lazytime",
            "loud",
            "mand",
            "noatime",
            "nodev",
            "nodiratime",
            "noexec",
            "noiversion",
            "nolazytime",
            "nomand",
            "norelatime",
            "nostrictatime",
            "nosuid",
            "nosymfollow",
            "private",
            "ratime",
            "rbind",
            "rdev",
            "rdiratime",
            "relatime",
            "remount",
            "rexec",
            "rnoatime",
            "rnodev",
            "rnodiratime",
            "rnoexec",
            "rnorelatime",
            "rnostrictatime",
            "rnosuid",
            "rnosymfollow",
            "ro",
            "rprivate",
            "rrelatime",
            "rro",
            "rrw",
            "rshared",
            "rslave",
            "rstrictatime",
            "rsuid",
            "rsymfollow",
            "runbindable",
            "rw",
            "shared",
            "silent",
            "slave",
            "strictatime",
            "suid",
            "symfollow",
            "sync",
            "unbindable",
        ];
        for o in spec {
            let ruled = LXC_KNOWN.contains(&o)
                || RECURSIVE.iter().any(|(r, _)| *r == o)
                || NO_EFFECT.contains(&o)
                || o == "iversion";
            assert!(ruled, "{o}");
            if let Ok(Some(out)) = for_lxc(o, false) {
                assert!(LXC_KNOWN.contains(&out), "{o} -> {out}");
            }
        }
    }
}
