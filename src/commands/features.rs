//! `features`: the default backend's features document plus nexcage's own annotations.
//! containerd calls it with no global flags, so it depends on nothing but the config.

use anyhow::{Context, Result};

use crate::backend::oci::{capture, OciBackend};
use crate::config::{BackendConfig, Config};

pub fn features() -> Result<i32> {
    let config = Config::load()?;
    let name = &config.default_backend;
    let mut doc: serde_json::Value = match config.backend(name).expect("validated") {
        BackendConfig::Oci(oci) => {
            let b = OciBackend::resolve(name, &oci.path)?;
            let out = capture(&b.runtime, &["features"])
                .with_context(|| format!("default backend {name} cannot report its features"))?;
            serde_json::from_slice(&out)
                .with_context(|| format!("{} features printed invalid JSON", b.runtime.display()))?
        }
        BackendConfig::ProxmoxLxc(_) => crate::backend::lxc::features::document(),
    };
    let backends: Vec<&str> = config.backends.keys().map(String::as_str).collect();
    if let Some(obj) = doc.as_object_mut() {
        let ann = obj.entry("annotations").or_insert_with(|| serde_json::json!({}));
        if let Some(ann) = ann.as_object_mut() {
            ann.insert("org.nexcage.version".into(), env!("CARGO_PKG_VERSION").into());
            ann.insert("org.nexcage.backends".into(), backends.join(",").into());
            ann.insert("org.nexcage.default-backend".into(), name.as_str().into());
        }
    }
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(0)
}
