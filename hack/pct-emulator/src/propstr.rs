//! PVE property strings (`name=eth0,bridge=vmbr0,...`): parsing, checking, canonical printing.
//!
//! Canonical order as PVE prints them: the default key's bare value first, then the
//! required keys, then the rest alphabetically.

use std::collections::BTreeMap;

use crate::validate;

#[derive(Clone, Copy)]
pub enum PKind {
    Str,
    Bool,
    Int(i64, i64),
    Num,
    Enum(&'static [&'static str]),
    Custom(fn(&str) -> Result<(), String>),
}

pub struct Schema {
    pub default_key: Option<&'static str>,
    pub required: &'static [&'static str],
    pub keys: &'static [(&'static str, PKind)],
}

pub type Props = BTreeMap<String, String>;

pub static NET: Schema = Schema {
    default_key: None,
    required: &["name"],
    keys: &[
        ("bridge", PKind::Custom(validate::bridge)),
        ("firewall", PKind::Bool),
        ("gw", PKind::Custom(validate::ipv4)),
        ("gw6", PKind::Custom(validate::ipv6)),
        ("host-managed", PKind::Bool),
        ("hwaddr", PKind::Custom(validate::mac)),
        ("ip", PKind::Custom(validate::net_ip)),
        ("ip6", PKind::Custom(validate::net_ip6)),
        ("link_down", PKind::Bool),
        ("mtu", PKind::Int(64, 65535)),
        ("name", PKind::Custom(validate::ifname)),
        ("rate", PKind::Num),
        ("tag", PKind::Int(1, 4094)),
        ("trunks", PKind::Str),
        ("type", PKind::Enum(&["veth"])),
    ],
};

const MOUNT_COMMON: [(&str, PKind); 8] = [
    ("acl", PKind::Bool),
    ("backup", PKind::Bool),
    ("mountoptions", PKind::Str),
    ("quota", PKind::Bool),
    ("replicate", PKind::Bool),
    ("ro", PKind::Bool),
    ("shared", PKind::Bool),
    ("size", PKind::Custom(validate::disk_size)),
];

pub static ROOTFS: Schema = Schema {
    default_key: Some("volume"),
    required: &["volume"],
    keys: &[
        ("acl", PKind::Bool),
        // PVE 9 (pve-container 6.x): `passthrough` or `u:CT:DISK:N;...`; an idmapped
        // mount of the volume, for unprivileged containers.
        ("idmap", PKind::Custom(validate::mount_idmap)),
        ("mountoptions", PKind::Str),
        ("quota", PKind::Bool),
        ("replicate", PKind::Bool),
        ("ro", PKind::Bool),
        ("shared", PKind::Bool),
        ("size", PKind::Custom(validate::disk_size)),
        ("volume", PKind::Str),
    ],
};

pub static MP: Schema = Schema {
    default_key: Some("volume"),
    required: &["volume", "mp"],
    keys: &[
        MOUNT_COMMON[0],
        MOUNT_COMMON[1],
        ("mp", PKind::Custom(validate::abs_path)),
        MOUNT_COMMON[2],
        MOUNT_COMMON[3],
        MOUNT_COMMON[4],
        MOUNT_COMMON[5],
        MOUNT_COMMON[6],
        MOUNT_COMMON[7],
        ("volume", PKind::Str),
    ],
};

pub static FEATURES: Schema = Schema {
    default_key: None,
    required: &[],
    keys: &[
        ("force_rw_sys", PKind::Bool),
        ("fuse", PKind::Bool),
        ("keyctl", PKind::Bool),
        ("mknod", PKind::Bool),
        ("mount", PKind::Str),
        ("nesting", PKind::Bool),
    ],
};

pub static DEV: Schema = Schema {
    default_key: Some("path"),
    required: &["path"],
    keys: &[
        ("deny-write", PKind::Bool),
        ("gid", PKind::Int(0, i64::MAX)),
        ("mode", PKind::Custom(validate::octal_mode)),
        ("path", PKind::Custom(validate::dev_path)),
        ("uid", PKind::Int(0, i64::MAX)),
    ],
};

/// Parse and check a property string; booleans are normalised to 1/0.
pub fn parse(schema: &Schema, s: &str) -> Result<Props, String> {
    let mut out = Props::new();
    for part in s.split(',') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match schema.default_key {
                Some(dk) => (dk.to_string(), part.to_string()),
                None => return Err(format!("value without key, but schema does not define a default key ('{part}')")),
            },
        };
        let Some((_, kind)) = schema.keys.iter().find(|(n, _)| *n == k) else {
            return Err(format!("property '{k}' is not defined in schema"));
        };
        if out.contains_key(&k) {
            return Err(format!("duplicate key in comma-separated list property: {k}"));
        }
        let v = check(kind, &k, &v)?;
        out.insert(k, v);
    }
    for r in schema.required {
        if !out.contains_key(*r) {
            return Err(format!("property '{r}' is missing"));
        }
    }
    Ok(out)
}

fn check(kind: &PKind, k: &str, v: &str) -> Result<String, String> {
    match kind {
        PKind::Str => Ok(v.to_string()),
        PKind::Bool => {
            validate::boolean(v).map(|b| if b { "1" } else { "0" }.to_string()).map_err(|e| format!("{k}: {e}"))
        }
        PKind::Int(min, max) => {
            let n: i64 = v.parse().map_err(|_| format!("{k}: type check ('integer') failed - got '{v}'"))?;
            if n < *min {
                return Err(format!("{k}: value must have a minimum value of {min}"));
            }
            if n > *max {
                return Err(format!("{k}: value must have a maximum value of {max}"));
            }
            Ok(v.to_string())
        }
        PKind::Num => v
            .parse::<f64>()
            .map(|_| v.to_string())
            .map_err(|_| format!("{k}: type check ('number') failed - got '{v}'")),
        PKind::Enum(vals) => {
            if vals.contains(&v) {
                Ok(v.to_string())
            } else {
                Err(format!("{k}: value '{v}' does not have a value in the enumeration '{}'", vals.join(", ")))
            }
        }
        PKind::Custom(f) => f(v).map(|_| v.to_string()).map_err(|e| format!("{k}: {e}")),
    }
}

/// Print canonically: default key (bare), required keys, then the rest alphabetically.
pub fn format(schema: &Schema, props: &Props) -> String {
    let mut parts = Vec::new();
    let mut done: Vec<&str> = Vec::new();
    if let Some(dk) = schema.default_key {
        if let Some(v) = props.get(dk) {
            parts.push(v.clone());
            done.push(dk);
        }
    }
    for r in schema.required {
        if done.contains(r) {
            continue;
        }
        if let Some(v) = props.get(*r) {
            parts.push(format!("{r}={v}"));
            done.push(r);
        }
    }
    for (k, v) in props {
        if !done.contains(&k.as_str()) {
            parts.push(format!("{k}={v}"));
        }
    }
    parts.join(",")
}

/// The schema of a config key that holds a property string (`net3`, `mp0`, `rootfs`, ...).
pub fn schema_for(key: &str) -> Option<&'static Schema> {
    let base = key.trim_end_matches(|c: char| c.is_ascii_digit());
    match base {
        "net" if base != key => Some(&NET),
        "mp" if base != key => Some(&MP),
        "dev" if base != key => Some(&DEV),
        "rootfs" if base == key => Some(&ROOTFS),
        "features" if base == key => Some(&FEATURES),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_canonical_order() {
        let p = parse(&NET, "type=veth,ip=dhcp,bridge=vmbr0,name=eth0,hwaddr=BC:24:11:AB:CD:EF").unwrap();
        assert_eq!(format(&NET, &p), "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AB:CD:EF,ip=dhcp,type=veth");
    }

    #[test]
    fn mp_and_rootfs_default_key() {
        let p = parse(&MP, "ro=yes,mp=/data,volume=/srv/data").unwrap();
        assert_eq!(format(&MP, &p), "/srv/data,mp=/data,ro=1");
        let p = parse(&ROOTFS, "local:subvol-100-disk-0,size=0T").unwrap();
        assert_eq!(format(&ROOTFS, &p), "local:subvol-100-disk-0,size=0T");
    }

    #[test]
    fn rejects_unknown_and_missing() {
        assert!(parse(&NET, "bridge=vmbr0").is_err());
        assert!(parse(&NET, "name=eth0,foo=1").is_err());
        assert!(parse(&NET, "name=eth0,ip=300.1.1.1/24").is_err());
        assert!(parse(&FEATURES, "nesting=maybe").is_err());
    }
}
