//! `features`: what holds for every container this configuration can create. The
//! annotation `nexcage.backend` can route a container to any configured backend, so the
//! document is the intersection of every configured backend's features (runtime-spec
//! features.md: a field left out means "unknown"), plus nexcage's own annotations.
//! containerd calls it with no global flags, so it depends on nothing but the config.
//!
//! A backend whose runtime cannot report its features (crun before 1.9 has no `features`
//! command) makes everything but the OCI versions unknown: nexcage cannot vouch for what
//! that runtime does, and says why in `org.nexcage.features`.

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

use crate::backend::oci::{capture, OciBackend};
use crate::config::{BackendConfig, Config};

pub fn features() -> Result<i32> {
    let config = Config::load()?;
    let mut reported = Vec::new();
    let mut unreported = Vec::new();
    for (name, backend) in &config.backends {
        match backend_features(name, backend) {
            Ok(doc) => reported.push((name.as_str(), doc)),
            Err(e) => unreported.push(format!("{name} ({e:#})")),
        }
    }
    let Some(((_, first), rest)) = reported.split_first() else {
        bail!("no configured backend can report its features: {}", unreported.join("; "));
    };
    let mut doc = rest.iter().fold(first.clone(), |acc, (_, d)| intersect(&acc, d));
    let names: Vec<&str> = reported.iter().map(|(n, _)| *n).collect();
    let how = if unreported.is_empty() {
        format!("intersection of the backends {}", names.join(","))
    } else {
        if let Some(obj) = doc.as_object_mut() {
            obj.retain(|k, _| k == "ociVersionMin" || k == "ociVersionMax" || k == "annotations");
        }
        format!("only the OCI versions are reported: the features of {} are unknown", unreported.join("; "))
    };
    let backends: Vec<&str> = config.backends.keys().map(String::as_str).collect();
    if let Some(obj) = doc.as_object_mut() {
        let ann = obj.entry("annotations").or_insert_with(|| serde_json::json!({}));
        if let Some(ann) = ann.as_object_mut() {
            ann.insert("org.nexcage.version".into(), env!("CARGO_PKG_VERSION").into());
            ann.insert("org.nexcage.backends".into(), backends.join(",").into());
            ann.insert("org.nexcage.default-backend".into(), config.default_backend.as_str().into());
            ann.insert("org.nexcage.features".into(), how.into());
        }
    }
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(0)
}

/// One backend's own features document.
fn backend_features(name: &str, backend: &BackendConfig) -> Result<Value> {
    match backend {
        BackendConfig::Oci(oci) => {
            let b = OciBackend::resolve(name, &oci.path)?;
            let out = capture(&b.runtime, &["features"])
                .with_context(|| format!("{} cannot report its features", b.runtime.display()))?;
            serde_json::from_slice(&out)
                .with_context(|| format!("{} features printed invalid JSON", b.runtime.display()))
        }
        BackendConfig::ProxmoxLxc(_) => Ok(crate::backend::lxc::features::document()),
    }
}

/// What both documents claim: booleans and-ed, lists intersected (in `a`'s order),
/// objects reduced to the keys both have, the supported OCI range narrowed; other values
/// kept only when equal. `annotations` keeps the entries both give the same value, and
/// `potentiallyUnsafeConfigAnnotations` is the union (a warning from either holds).
pub fn intersect(a: &Value, b: &Value) -> Value {
    intersect_at("", a, b).unwrap_or(Value::Null)
}

fn intersect_at(key: &str, a: &Value, b: &Value) -> Option<Value> {
    match (key, a, b) {
        ("ociVersionMin", Value::String(x), Value::String(y)) => {
            Some(Value::String(if version(x) >= version(y) { x } else { y }.clone()))
        }
        ("ociVersionMax", Value::String(x), Value::String(y)) => {
            Some(Value::String(if version(x) <= version(y) { x } else { y }.clone()))
        }
        ("potentiallyUnsafeConfigAnnotations", Value::Array(x), Value::Array(y)) => {
            let mut all = x.clone();
            all.extend(y.iter().filter(|v| !x.contains(v)).cloned());
            Some(Value::Array(all))
        }
        ("annotations", Value::Object(x), Value::Object(y)) => Some(Value::Object(
            x.iter().filter(|(k, v)| y.get(*k) == Some(v)).map(|(k, v)| (k.clone(), v.clone())).collect(),
        )),
        (_, Value::Object(x), Value::Object(y)) => {
            let mut out = Map::new();
            for (k, va) in x {
                if let Some(v) = y.get(k).and_then(|vb| intersect_at(k, va, vb)) {
                    out.insert(k.clone(), v);
                }
            }
            Some(Value::Object(out))
        }
        (_, Value::Array(x), Value::Array(y)) => {
            Some(Value::Array(x.iter().filter(|v| y.contains(v)).cloned().collect()))
        }
        (_, Value::Bool(x), Value::Bool(y)) => Some(Value::Bool(*x && *y)),
        _ => (a == b).then(|| a.clone()),
    }
}

/// `1.2.1` or `1.0.2-dev` as comparable numbers (a pre-release sorts with its release).
fn version(v: &str) -> Vec<u64> {
    v.split(['-', '+']).next().unwrap_or("").split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::intersect;
    use serde_json::json;

    #[test]
    fn intersection_claims_only_what_both_claim() {
        let runc = json!({
            "ociVersionMin": "1.0.0", "ociVersionMax": "1.2.1",
            "hooks": ["prestart", "createRuntime", "poststop"],
            "mountOptions": ["ro", "rro", "bind"],
            "linux": {
                "namespaces": ["mount", "pid", "time"],
                "cgroup": {"v1": true, "v2": true, "systemd": true},
                "seccomp": {"enabled": true, "actions": ["SCMP_ACT_ALLOW"]},
                "mountExtensions": {"idmap": {"enabled": true}},
                "intelRdt": {"enabled": true}
            },
            "potentiallyUnsafeConfigAnnotations": ["bundle"],
            "annotations": {"io.github.seccomp.libseccomp.version": "2.5.4", "same": "x"}
        });
        let lxc = json!({
            "ociVersionMin": "1.0.2-dev", "ociVersionMax": "1.1.0",
            "hooks": ["poststop", "prestart"],
            "mountOptions": ["bind", "ro"],
            "linux": {
                "namespaces": ["pid", "mount"],
                "cgroup": {"v1": true, "v2": true, "systemd": false},
                "seccomp": {"enabled": false},
                "mountExtensions": {"idmap": {"enabled": false}}
            },
            "potentiallyUnsafeConfigAnnotations": ["org.x"],
            "annotations": {"same": "x", "kind": "lxc"}
        });
        let want = json!({
            "ociVersionMin": "1.0.2-dev", "ociVersionMax": "1.1.0",
            "hooks": ["prestart", "poststop"],
            "mountOptions": ["ro", "bind"],
            "linux": {
                "namespaces": ["mount", "pid"],
                "cgroup": {"v1": true, "v2": true, "systemd": false},
                "seccomp": {"enabled": false},
                "mountExtensions": {"idmap": {"enabled": false}}
            },
            "potentiallyUnsafeConfigAnnotations": ["bundle", "org.x"],
            "annotations": {"same": "x"}
        });
        assert_eq!(intersect(&runc, &lxc), want);
        assert_eq!(intersect(&lxc, &lxc), lxc, "a document intersected with itself is unchanged");
    }
}
