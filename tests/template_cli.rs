//! `nexcage template list` / `prune` on a proxmox-lxc template storage: prune removes only
//! templates that no record under --root was created from and that are old enough.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

const NEXCAGE: &str = env!("CARGO_BIN_EXE_nexcage");

fn template(dir: &Path, digest: char, age: Duration) -> String {
    let name = format!("nexcage-{}.tar.zst", digest.to_string().repeat(32));
    let path = dir.join(&name);
    std::fs::write(&path, b"not really a template").unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
    name
}

fn run(pve: &Path, root: &Path, args: &[&str]) -> String {
    let out = Command::new(NEXCAGE)
        .env("NEXCAGE_CONFIG", pve.join("nexcage.json"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn prune_keeps_used_and_young_templates() {
    let t = tempfile::tempdir().unwrap();
    let pve = t.path();
    let cache = pve.join("var/lib/vz/template/cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(
        pve.join("nexcage.json"),
        format!(
            r#"{{"default_backend":"lxc","backends":{{"lxc":{{"kind":"proxmox-lxc","pve_root":"{}"}}}}}}"#,
            pve.display()
        ),
    )
    .unwrap();
    let hour = Duration::from_secs(3600);
    let used = template(&cache, 'a', hour);
    let unused = template(&cache, 'b', hour);
    let young = template(&cache, 'c', Duration::from_secs(5));

    // A container record (as create writes it) made from `used`.
    let root = pve.join("root");
    std::fs::create_dir_all(root.join("web")).unwrap();
    let record = serde_json::json!({
        "id": "web", "backend": "lxc", "kind": "proxmox-lxc", "bundle": "/b",
        "created": "2026-01-01T00:00:00Z", "phase": "created",
        "data": { "lxc": { "vmid": 9000, "pct": "/usr/sbin/pct", "pve_root": pve, "template": used,
                           "run_dir": pve.join("run/nexcage-lxc/9000") } }
    });
    std::fs::write(root.join("web/record.json"), serde_json::to_vec(&record).unwrap()).unwrap();

    let list = run(pve, &root, &["template", "list"]);
    let line = |name: &str| {
        list.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} not listed:\n{list}")).to_string()
    };
    assert!(line(&used).ends_with(" web"), "{list}");
    assert!(line(&unused).ends_with(" -"), "{list}");

    let dry = run(pve, &root, &["template", "prune", "--dry-run"]);
    assert!(dry.contains(&format!("would remove {}", cache.join(&unused).display())), "{dry}");
    assert!(!dry.contains(&used) && !dry.contains(&young), "{dry}");
    assert!(cache.join(&unused).exists(), "--dry-run removes nothing");

    let pruned = run(pve, &root, &["template", "prune"]);
    assert!(pruned.contains(&format!("removed {}", cache.join(&unused).display())), "{pruned}");
    assert!(!cache.join(&unused).exists());
    assert!(cache.join(&used).exists(), "a template a record was created from is kept");
    assert!(cache.join(&young).exists(), "a template younger than --min-age is kept");

    run(pve, &root, &["template", "prune", "--min-age", "0"]);
    assert!(!cache.join(&young).exists(), "--min-age 0 removes it");
    assert!(cache.join(&used).exists());
}
