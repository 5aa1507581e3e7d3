//! Bounded fuzzing on stable Rust, part of `cargo test`: proptest drives the harnesses of
//! `nexcage::fuzz` (the same functions the coverage-guided targets in `fuzz/` call) with
//! structured and mutated inputs for a few seconds. `NEXCAGE_FUZZ_CASES` sets the number
//! of cases per target (default 3000). A failure prints the minimal input; add it to the
//! regression tests at the end of this file. Longer runs: docs/fuzzing.md.

use std::path::Path;

use nexcage::fuzz;
use proptest::prelude::*;
use proptest::test_runner::Config;

fn cases() -> u32 {
    std::env::var("NEXCAGE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000)
}

fn config() -> Config {
    Config { cases: cases(), failure_persistence: None, ..Config::default() }
}

const BUILTIN: &str = include_str!("../config.json");
const SPEC: &str = include_str!("fuzz-seeds/spec.json");
const PVE_CONF: &str = include_str!("fuzz-seeds/pve.conf");
const PCT_OUT: &str = include_str!("fuzz-seeds/pct-out.txt");

/// A seed with random byte edits (replace, insert, delete), the classic mutation fuzzer.
fn mutated(seeds: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    (0..seeds.len(), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..8)).prop_map(
        move |(i, edits)| {
            let mut b = seeds[i].as_bytes().to_vec();
            for (at, byte, op) in edits {
                let pos = if b.is_empty() { 0 } else { at.index(b.len()) };
                match op {
                    0 if !b.is_empty() => b[pos] = byte,
                    1 => b.insert(pos, byte),
                    _ if !b.is_empty() => {
                        b.remove(pos);
                    }
                    _ => b.push(byte),
                }
            }
            b
        },
    )
}

/// Strings rich in what breaks parsers and config formats.
fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9._-]{0,12}",
        "[ -~]{0,24}",
        "[a-z=,;:\n\r\t\0/.% \\\\#\\[\\]-]{0,24}",
        any::<String>(),
        Just("lxc.rootfs.path: /".to_string()),
        Just("name=eth0,bridge=vmbr0\nlxc.init.cmd: /bin/sh".to_string()),
        Just("../../etc".to_string()),
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(Into::into),
        any::<i64>().prop_map(Into::into),
        any::<u32>().prop_map(Into::into),
        nasty().prop_map(Into::into),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Into::into),
            prop::collection::btree_map(nasty(), inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Paths of the OCI spec (and nexcage annotations) a mapper reads.
const SPEC_PATHS: &[&[&str]] = &[
    &["hostname"],
    &["mounts"],
    &["mounts", "0", "source"],
    &["mounts", "0", "destination"],
    &["mounts", "0", "options"],
    &["annotations", "nexcage.proxmox.net0"],
    &["annotations", "nexcage.proxmox.net1"],
    &["annotations", "nexcage.proxmox.storage"],
    &["annotations", "nexcage.proxmox.tags"],
    &["annotations", "nexcage.proxmox.features"],
    &["annotations", "nexcage.proxmox.onboot"],
    &["annotations", "nexcage.proxmox.cores"],
    &["linux", "sysctl"],
    &["linux", "devices"],
    &["linux", "namespaces"],
    &["linux", "uidMappings"],
    &["linux", "gidMappings"],
    &["linux", "resources", "memory", "limit"],
    &["linux", "resources", "memory", "swap"],
    &["linux", "resources", "cpu"],
    &["linux", "resources", "pids", "limit"],
    &["linux", "resources", "unified"],
    &["root", "readonly"],
    &["process", "env"],
    &["process", "rlimits"],
];

fn set_path(v: &mut serde_json::Value, path: &[&str], value: serde_json::Value) {
    let mut cur = v;
    for (i, p) in path.iter().enumerate() {
        if i == path.len() - 1 {
            if let Some(o) = cur.as_object_mut() {
                o.insert(p.to_string(), value);
            } else if let (Some(a), Ok(n)) = (cur.as_array_mut(), p.parse::<usize>()) {
                if n < a.len() {
                    a[n] = value;
                }
            }
            return;
        }
        cur = match (cur.is_array(), p.parse::<usize>()) {
            (true, Ok(n)) => match cur.get_mut(n) {
                Some(c) => c,
                None => return,
            },
            _ => {
                if !cur.is_object() {
                    return;
                }
                cur.as_object_mut().unwrap().entry(p.to_string()).or_insert(serde_json::json!({}))
            }
        };
    }
}

fn spec_input() -> impl Strategy<Value = Vec<u8>> {
    let structured = prop::collection::vec((0..SPEC_PATHS.len(), json_value()), 1..5).prop_map(|edits| {
        let mut v: serde_json::Value = serde_json::from_str(SPEC).unwrap();
        for (p, value) in edits {
            set_path(&mut v, SPEC_PATHS[p], value);
        }
        serde_json::to_vec(&v).unwrap()
    });
    prop_oneof![4 => structured, 1 => mutated(&[SPEC])]
}

fn config_input() -> impl Strategy<Value = Vec<u8>> {
    const KEYS: &[&str] = &[
        "default_backend",
        "backends",
        "routes",
        "kind",
        "path",
        "pct",
        "storage",
        "template_storage",
        "vmid_range",
        "unprivileged",
        "network",
        "pve_root",
        "init",
        "allowed_host_mounts",
        "id",
        "id_regex",
        "annotation",
        "bundle",
        "backend",
        "name",
    ];
    let structured =
        prop::collection::vec((prop::sample::select(KEYS), json_value(), 0u8..3), 1..5).prop_map(|edits| {
            let mut v: serde_json::Value = serde_json::from_str(BUILTIN).unwrap();
            for (k, value, at) in edits {
                let target = match at {
                    0 => Some(&mut v),
                    1 => v.get_mut("backends").and_then(|b| b.get_mut("lxc")),
                    _ => v.get_mut("routes").and_then(|r| r.get_mut(0)),
                };
                if let Some(o) = target.and_then(|t| t.as_object_mut()) {
                    o.insert(k.to_string(), value);
                }
            }
            serde_json::to_vec(&v).unwrap()
        });
    prop_oneof![3 => structured, 1 => mutated(&[BUILTIN])]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_parser(data in config_input()) {
        fuzz::config(&data);
    }

    #[test]
    fn route_matcher(cfg in config_input(), id in nasty(), bundle in nasty(),
                     ann in prop::collection::vec((prop_oneof![Just("nexcage.backend".to_string()), Just("io.kubernetes.cri.container-type".to_string()), nasty()], nasty()), 0..4)) {
        let mut data = cfg;
        for part in [id, bundle] {
            data.push(0);
            data.extend(part.into_bytes());
        }
        for (k, v) in ann {
            data.push(0);
            data.extend(format!("{k}={v}").into_bytes());
        }
        fuzz::route(&data);
    }

    #[test]
    fn oci_to_proxmox_mapping(data in spec_input()) {
        fuzz::spec_map(&data, Path::new("/tmp"));
    }

    #[test]
    fn pct_output_parsers(data in prop_oneof![mutated(&[PCT_OUT, PVE_CONF]), any::<Vec<u8>>()]) {
        fuzz::pct_output(&data);
    }

    #[test]
    fn pveconf_round_trip(data in prop_oneof![mutated(&[PVE_CONF]), any::<Vec<u8>>(), nasty().prop_map(String::into_bytes)]) {
        fuzz::pveconf_roundtrip(&data);
    }
}

// Regression inputs: every crash or invariant violation a fuzzer ever found goes here.
#[test]
fn regressions() {
    fuzz::pveconf_roundtrip(b"\r");
    fuzz::pveconf_roundtrip(b"a\0\xff\0\n");
    fuzz::pct_output(b"status:running\npid: -1\n");
    fuzz::config(b"{\"default_backend\":\"x\",\"backends\":{\"x\":{\"kind\":\"oci\",\"path\":\"crun\"}},\"routes\":[{\"id\":\"[\",\"backend\":\"x\"}]}");
}
