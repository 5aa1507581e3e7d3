//! `pct config <vmid> [--current] [--snapshot NAME]`: sorted `key: value` lines (pending
//! values applied unless --current; description encoded), then raw `lxc.*` lines.

use anyhow::Result;

use crate::cli::Parsed;
use crate::conf::encode_text;
use crate::output::die;
use crate::paths::Paths;

pub fn run(paths: &Paths, p: &Parsed) -> Result<()> {
    let vmid = super::vmid(p);
    let mut conf = super::load_conf(paths, vmid)?;
    if let Some(snap) = p.get("snapshot") {
        return Err(die(format!("snapshot '{snap}' does not exist")));
    }
    if !p.flag("current") {
        let pending = std::mem::take(&mut conf.pending);
        for (k, v) in pending {
            if k == "delete" {
                for d in v.split(',') {
                    conf.keys.remove(d.trim_start_matches('!'));
                }
            } else if k == "description" {
                conf.description = crate::conf::decode_text(&v);
            } else {
                conf.keys.insert(k, v);
            }
        }
    }
    let mut keys = conf.keys.clone();
    if !conf.description.is_empty() {
        // PVE reads each `#` line with its newline, so the last one ends in `%0A` too.
        keys.insert("description".into(), encode_text(&format!("{}\n", conf.description)));
    }
    let mut out = String::new();
    for (k, v) in &keys {
        if k == "digest" {
            continue;
        }
        out.push_str(&format!("{k}: {v}\n"));
    }
    for (k, v) in &conf.lxc {
        out.push_str(&format!("{k}: {v}\n"));
    }
    print!("{out}");
    Ok(())
}
