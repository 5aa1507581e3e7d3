//! Value formats of the PVE schema (the messages are PVE's).

use std::net::{Ipv4Addr, Ipv6Addr};

pub fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "yes" | "on" | "true" => Ok(true),
        "0" | "no" | "off" | "false" => Ok(false),
        _ => Err(format!("type check ('boolean') failed - got '{v}'")),
    }
}

/// `pve-vmid`: an integer 100..999999999 without leading zeros.
pub fn vmid(v: &str) -> Result<u32, String> {
    if v.parse::<i64>().is_err() {
        return Err(format!("type check ('integer') failed - got '{v}'"));
    }
    let ok = v.len() >= 3 && v.len() <= 9 && v.bytes().all(|b| b.is_ascii_digit()) && !v.starts_with('0');
    if !ok {
        return Err("invalid format - value does not look like a valid VM ID".into());
    }
    Ok(v.parse().expect("checked digits"))
}

pub fn ipv4(v: &str) -> Result<(), String> {
    v.parse::<Ipv4Addr>()
        .map(|_| ())
        .map_err(|_| format!("invalid format - value does not look like a valid IPv4 address: {v}"))
}

pub fn ipv6(v: &str) -> Result<(), String> {
    v.parse::<Ipv6Addr>()
        .map(|_| ())
        .map_err(|_| format!("invalid format - value does not look like a valid IPv6 address: {v}"))
}

fn cidr(v: &str, v6: bool) -> bool {
    let Some((a, m)) = v.split_once('/') else {
        return false;
    };
    let Ok(m) = m.parse::<u8>() else { return false };
    if v6 {
        a.parse::<Ipv6Addr>().is_ok() && m <= 128
    } else {
        a.parse::<Ipv4Addr>().is_ok() && m <= 32
    }
}

pub fn net_ip(v: &str) -> Result<(), String> {
    if v == "dhcp" || v == "manual" || cidr(v, false) {
        Ok(())
    } else {
        Err(format!("invalid format - value does not look like a valid IPv4 network configuration: {v}"))
    }
}

pub fn net_ip6(v: &str) -> Result<(), String> {
    if matches!(v, "auto" | "dhcp" | "manual") || cidr(v, true) {
        Ok(())
    } else {
        Err(format!("invalid format - value does not look like a valid IPv6 network configuration: {v}"))
    }
}

pub fn mac(v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.split(':').collect();
    let ok = parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    let multicast = ok && u8::from_str_radix(parts[0], 16).map(|b| b & 1 == 1).unwrap_or(true);
    if ok && !multicast {
        Ok(())
    } else {
        Err(format!("invalid format - value does not look like a valid unicast MAC address: {v}"))
    }
}

pub fn ifname(v: &str) -> Result<(), String> {
    if !v.is_empty() && v.len() <= 15 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        Ok(())
    } else {
        Err(format!("invalid format - value does not look like a valid interface name: {v}"))
    }
}

pub fn bridge(v: &str) -> Result<(), String> {
    ifname(v).map_err(|_| format!("invalid format - value does not look like a valid bridge name: {v}"))
}

/// `idmap=` of a mount point (PVE 9): `passthrough`, or `TYPE:CT:DISK:N` entries joined
/// by `;` (TYPE `u` or `g`, N at least 1).
pub fn mount_idmap(v: &str) -> Result<(), String> {
    let entry = |e: &str| {
        let f: Vec<&str> = e.split(':').collect();
        let num = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
        f.len() == 4 && (f[0] == "u" || f[0] == "g") && num(f[1]) && num(f[2]) && num(f[3]) && !f[3].starts_with('0')
    };
    if v == "passthrough" || (!v.is_empty() && v.split(';').all(entry)) {
        Ok(())
    } else {
        Err("value does not match the regex pattern".into())
    }
}

/// `size=` of a volume: a number with an optional K/M/G/T suffix.
pub fn disk_size(v: &str) -> Result<(), String> {
    parse_size(v).map(|_| ()).ok_or_else(|| format!("invalid format - unable to parse size '{v}'"))
}

/// Bytes of a PVE disk size (`8G`, `0T`, `512M`, plain number = bytes... PVE treats a plain
/// number as bytes here).
pub fn parse_size(v: &str) -> Option<u64> {
    let (num, mult) = match v.chars().last()? {
        'K' | 'k' => (&v[..v.len() - 1], 1u64 << 10),
        'M' | 'm' => (&v[..v.len() - 1], 1 << 20),
        'G' | 'g' => (&v[..v.len() - 1], 1 << 30),
        'T' | 't' => (&v[..v.len() - 1], 1 << 40),
        _ => (v, 1),
    };
    let n: f64 = num.parse().ok()?;
    if n < 0.0 {
        return None;
    }
    Some((n * mult as f64) as u64)
}

/// PVE's format_size: the largest unit that divides the byte count (units are powers of 2).
pub fn format_size(bytes: u64) -> String {
    const T: u64 = 1 << 40;
    const G: u64 = 1 << 30;
    const M: u64 = 1 << 20;
    const K: u64 = 1 << 10;
    if bytes & (T - 1) == 0 {
        format!("{}T", bytes / T)
    } else if bytes & (G - 1) == 0 {
        format!("{}G", bytes / G)
    } else if bytes & (M - 1) == 0 {
        format!("{}M", bytes / M)
    } else if bytes & (K - 1) == 0 {
        format!("{}K", bytes / K)
    } else {
        bytes.to_string()
    }
}

pub fn abs_path(v: &str) -> Result<(), String> {
    if v.starts_with('/') && !v.split('/').any(|c| c == "..") {
        Ok(())
    } else {
        Err(format!("invalid format - '{v}' is not an absolute path without '..'"))
    }
}

pub fn dev_path(v: &str) -> Result<(), String> {
    if v.starts_with("/dev/") && !v.split('/').any(|c| c == "..") {
        Ok(())
    } else {
        Err(format!("invalid format - '{v}' is not a path under /dev"))
    }
}

pub fn octal_mode(v: &str) -> Result<(), String> {
    if (1..=4).contains(&v.len()) && v.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        Ok(())
    } else {
        Err(format!("invalid format - value does not look like a valid file mode: {v}"))
    }
}

pub fn dns_name(v: &str) -> Result<(), String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if v.len() <= 255 && v.split('.').all(label_ok) {
        Ok(())
    } else {
        Err("invalid format - value does not look like a valid DNS name".into())
    }
}

pub fn storage_id(v: &str) -> Result<(), String> {
    let b = v.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"-_.".contains(c))
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!("invalid format - storage ID '{v}' contains illegal characters"))
    }
}

/// `pve-tag-list`: tags separated by `;`, `,` or spaces.
pub fn tag_list(v: &str) -> Result<(), String> {
    for t in split_tags(v) {
        let ok = t.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-+.".contains(&b));
        if !ok {
            return Err(format!("invalid format - invalid characters in tag '{t}'"));
        }
    }
    Ok(())
}

pub fn split_tags(v: &str) -> impl Iterator<Item = &str> {
    v.split([';', ',', ' ']).filter(|t| !t.is_empty())
}

/// Tags as PVE stores them: lowercased, sorted, deduplicated, joined with `;`.
pub fn normalize_tags(v: &str) -> String {
    let mut tags: Vec<String> = split_tags(v).map(str::to_ascii_lowercase).collect();
    tags.sort();
    tags.dedup();
    tags.join(";")
}

pub fn description(v: &str) -> Result<(), String> {
    if v.len() <= 8192 {
        Ok(())
    } else {
        Err("value may only be 8192 characters long".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_idmaps() {
        for ok in ["passthrough", "u:0:0:1", "u:123:456:1;g:100:50:5"] {
            assert!(mount_idmap(ok).is_ok(), "{ok}");
        }
        for bad in ["", "x:0:0:1", "u:0:0:0", "u:0:0", "u:a:0:1", "passthrough;u:0:0:1"] {
            assert!(mount_idmap(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn vmid_rules() {
        assert_eq!(vmid("100"), Ok(100));
        assert!(vmid("99").unwrap_err().contains("valid VM ID"));
        assert!(vmid("abc").unwrap_err().contains("type check ('integer')"));
        assert!(vmid("0100").is_err());
        assert!(vmid("1000000000").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(format_size(0), "0T");
        assert_eq!(format_size(8 << 30), "8G");
        assert_eq!(parse_size("4G"), Some(4 << 30));
    }

    #[test]
    fn tags() {
        assert_eq!(normalize_tags("b;A;a,c"), "a;b;c");
    }
}
