//! Reading an OCI bundle: its absolute path and what routing needs from config.json.
//! Backends that map the whole spec (proxmox-lxc) parse it fully themselves.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

pub const CONFIG_FILE: &str = "config.json";

#[derive(Debug)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    pub annotations: HashMap<String, String>,
}

#[derive(Deserialize)]
struct Annotations {
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
}

impl Bundle {
    /// Open a bundle directory and read the annotations of its config.json.
    pub fn open(dir: &Path) -> Result<Bundle> {
        let dir = std::path::absolute(dir).with_context(|| format!("invalid bundle path {}", dir.display()))?;
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("bundle {} is not a directory (--bundle must name the bundle directory)", dir.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("bundle {} does not exist (--bundle must name the bundle directory)", dir.display())
            }
            Err(e) => bail!("cannot access bundle {}: {e}", dir.display()),
        }
        let path = dir.join(CONFIG_FILE);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("bundle {} has no {CONFIG_FILE} (create one with `nexcage spec`)", dir.display())
            }
            Err(e) => bail!("cannot read {}: {e}", path.display()),
        };
        let de = &mut serde_json::Deserializer::from_slice(&text);
        let parsed: Annotations = serde_path_to_error::deserialize(de).map_err(|e| {
            let at = e.path().to_string();
            let inner = e.into_inner();
            if at.is_empty() || at == "." {
                anyhow::anyhow!("invalid {}: {inner}", path.display())
            } else {
                anyhow::anyhow!("invalid {}: at {at}: {inner}", path.display())
            }
        })?;
        Ok(Bundle { dir, annotations: parsed.annotations.unwrap_or_default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_with(config: &str) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join(CONFIG_FILE), config).unwrap();
        t
    }

    #[test]
    fn reads_annotations() {
        let t = bundle_with(r#"{"ociVersion":"1.0.2","annotations":{"nexcage.backend":"crun","a":"b"}}"#);
        let b = Bundle::open(t.path()).unwrap();
        assert_eq!(b.annotations["nexcage.backend"], "crun");
        assert!(b.dir.is_absolute());
    }

    #[test]
    fn no_annotations_is_fine() {
        let t = bundle_with(r#"{"ociVersion":"1.0.2","process":{"args":["sh"]}}"#);
        assert!(Bundle::open(t.path()).unwrap().annotations.is_empty());
    }

    #[test]
    fn errors_are_specific() {
        let e = Bundle::open(Path::new("/nonexistent-bundle")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent-bundle does not exist"), "{e}");
        let t = tempfile::tempdir().unwrap();
        let e = Bundle::open(t.path()).unwrap_err().to_string();
        assert!(e.contains("has no config.json"), "{e}");
        let t = bundle_with("{ not json");
        let e = Bundle::open(t.path()).unwrap_err().to_string();
        assert!(e.contains("invalid") && e.contains("config.json") && e.contains("line 1"), "{e}");
        let t = bundle_with(r#"{"annotations":{"a":1}}"#);
        let e = Bundle::open(t.path()).unwrap_err().to_string();
        assert!(e.contains("at annotations.a"), "{e}");
    }
}
