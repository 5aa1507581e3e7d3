//! Fuzz harnesses, one per target: each takes arbitrary bytes, must never panic, and
//! checks the target's own invariants (round trips, no injected lines). Run bounded on
//! stable by `tests/fuzz.rs` (proptest, part of `cargo test`) and unbounded by the
//! cargo-fuzz targets in `fuzz/` (nightly). See docs/fuzzing.md.

use std::collections::HashMap;
use std::path::Path;

use crate::backend::lxc::{pct, pveconf, spec};
use crate::config::{Config, ConfigSource, LxcBackendConfig};
use crate::route::{RouteInput, Router};

/// `Config::parse` on arbitrary text: an error or a configuration whose router builds.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(c) = Config::parse(text, ConfigSource::Builtin) {
        let _ = c.router(); // compiled by validation
        Router::new(&c.routes, &c.default_backend, c.backends.keys().cloned().collect())
            .expect("a validated configuration compiles its routes");
        assert!(c.backend(&c.default_backend).is_some(), "default_backend must exist after validation");
    }
}

/// The route matcher: `data` = configuration text, NUL, id, NUL, bundle path, then
/// `key=value` annotations separated by NUL. The decision names a configured backend.
pub fn route(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let config = parts.next().unwrap_or("");
    let Ok(c) = Config::parse(config, ConfigSource::Builtin) else { return };
    let router = c.router();
    let id = parts.next().unwrap_or("");
    let bundle = parts.next().unwrap_or("/");
    let annotations: HashMap<String, String> =
        parts.filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if let Ok(d) = router.route(&RouteInput { id, annotations: &annotations, bundle: Path::new(bundle), flag: None }) {
        assert!(c.backend(&d.backend).is_some(), "routed to an unknown backend {}", d.backend);
    }
}

/// `spec::map` on an arbitrary Spec JSON, with `bundle` as the bundle directory: every
/// raw LXC line passes `check_raw_line`, and no `pct create` option key or value can
/// smuggle a line break, a NUL or a second option.
pub fn spec_map(data: &[u8], bundle: &Path) {
    let Ok(s) = serde_json::from_slice::<oci_spec::runtime::Spec>(data) else { return };
    let cfg: LxcBackendConfig =
        serde_json::from_str(r#"{"allowed_host_mounts":["/tmp"],"network":"name=eth0,bridge=vmbr0,ip=dhcp"}"#)
            .expect("valid");
    let opts = spec::MapOptions::new(
        &cfg,
        bundle,
        "fuzz",
        pveconf::describe("fuzz", bundle),
        spec::HostInfo { memory_mib: Some(4096), swap_mib: Some(0), cgroup_v1: false },
        crate::backend::lxc::storage::Storages {
            defs: crate::backend::lxc::storage::parse(""),
            path: "/etc/pve/storage.cfg".into(),
            node: "pve".into(),
        },
    );
    let Ok(out) = spec::map(&s, &opts) else { return };
    for (k, v) in &out.raw_lxc {
        pveconf::check_raw_line(k, v).unwrap_or_else(|e| panic!("mapped raw line {k}: {v:?} is invalid: {e}"));
    }
    for (k, v) in &out.create {
        assert!(!k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "option key {k:?}");
        if k != "description" {
            assert!(!v.contains(['\n', '\r', '\0']), "option --{k} value {v:?} has a line break");
        } else {
            assert!(!v.contains('\0'), "description with NUL");
        }
    }
}

/// The pct output parsers and the PVE config parser: no panics; `PveConfig` renders back
/// byte for byte; a description nexcage writes parses back to the same values.
pub fn pct_output(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = pct::parse_status(&text);
    if let Ok(v) = pct::parse_status_verbose(&text) {
        assert_eq!(v.fields.get("status").map(String::as_str), Some(v.status.as_str()));
    }
    let _ = pct::parse_list(&text);
    let conf = pct::parse_config(&text);
    let _ = conf.render();
    let _ = pveconf::parse_description(&conf.description());
    let _ = pct::classify(9000, "pct x", "exit status 255", &text);
}

/// `pveconf` parse/render round trip, and describe/parse_description on arbitrary ids,
/// bundles and roots (the id is any string: nexcage validates ids before, but the
/// format must not depend on that).
pub fn pveconf_roundtrip(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let conf = pveconf::PveConfig::parse(&text);
    assert_eq!(conf.render(), text, "parse/render must give the input back");
    let mut parts = data.splitn(3, |b| *b == 0);
    let id = String::from_utf8_lossy(parts.next().unwrap_or(b"")).into_owned();
    use std::os::unix::ffi::OsStrExt;
    let bundle = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(parts.next().unwrap_or(b"/b")));
    let root = parts.next().map(|r| std::path::PathBuf::from(std::ffi::OsStr::from_bytes(r)));
    let d =
        pveconf::Description { oci_id: id.clone(), bundle, state_root: root, created: None, boot: None, vmid: None };
    let written = pveconf::describe_full(&d);
    // Through a PVE config file (PVE's own encoding) and back.
    let mut c = pveconf::PveConfig::default();
    c.set_description(&written);
    let back = pveconf::parse_description(&pveconf::PveConfig::parse(&c.render()).description());
    if id.is_empty() {
        assert_eq!(back, None);
    } else {
        assert_eq!(back.as_ref(), Some(&d), "description round trip");
    }
    // The description never adds config lines: every line of the file is a comment.
    for line in c.render().lines() {
        assert!(line.starts_with('#'), "description produced a non-comment line {line:?}");
    }
}
