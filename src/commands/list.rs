//! `list`: every container nexcage knows, whatever its backend.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;

use super::Ctx;
use crate::backend::{self, ContainerState};
use crate::cli::{Format, ListArgs};
use crate::state::Record;

pub fn list(ctx: &Ctx, args: &ListArgs) -> Result<i32> {
    // proxmox-lxc containers whose records were lost (reboot, wiped --root) come back.
    crate::backend::lxc::rebuild::adopt_lost(ctx);
    let mut by_backend: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    let mut vmids: BTreeMap<String, u64> = BTreeMap::new();
    for id in ctx.store.ids()? {
        // A record removed meanwhile (concurrent delete) is simply skipped.
        if let Ok(r) = ctx.store.load(&id) {
            if let Some(v) = vmid(&r) {
                vmids.insert(r.id.clone(), v);
            }
            by_backend.entry(r.backend.clone()).or_default().push(r);
        }
    }
    let mut rows: Vec<(String, ContainerState)> = Vec::new();
    for (name, records) in &by_backend {
        let backend = backend::for_record(&records[0])?;
        for s in backend.states(ctx, records)? {
            rows.push((name.clone(), s));
        }
    }
    rows.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    let out = std::io::stdout();
    let mut out = out.lock();
    if args.quiet {
        for (_, s) in &rows {
            writeln!(out, "{}", s.id)?;
        }
        return Ok(0);
    }
    match args.format {
        Format::Json => {
            let states: Vec<&ContainerState> = rows.iter().map(|(_, s)| s).collect();
            writeln!(out, "{}", serde_json::to_string(&states)?)?;
        }
        Format::Table => {
            // For people: which backend, which Proxmox container, how old. `state` and
            // `list --format json` keep runc's shapes for engines.
            let now = std::time::SystemTime::now();
            let mut table = vec![["ID", "BACKEND", "VMID", "STATUS", "AGE", "BUNDLE"].map(String::from).to_vec()];
            for (backend, s) in &rows {
                table.push(vec![
                    s.id.clone(),
                    backend.clone(),
                    vmids.get(&s.id).map_or_else(|| "-".to_string(), u64::to_string),
                    s.status.clone(),
                    humantime::parse_rfc3339_weak(&s.created)
                        .ok()
                        .and_then(|t| now.duration_since(t).ok())
                        .map_or_else(|| "-".to_string(), age),
                    s.bundle.display().to_string(),
                ]);
            }
            write!(out, "{}", render_table(&table))?;
        }
    }
    Ok(0)
}

/// The Proxmox VMID of a proxmox-lxc container (`data.lxc.vmid`, or `data.vmid`).
fn vmid(r: &Record) -> Option<u64> {
    r.data.get("lxc").and_then(|d| d.get("vmid")).or_else(|| r.data.get("vmid")).and_then(|v| v.as_u64())
}

/// Age for people: the largest whole unit, `42s`, `5m`, `3h`, `12d`.
pub fn age(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// Columns padded like runc's tabwriter (min width 12, padding 3).
pub fn render_table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count() + 3).max().unwrap_or(0).max(12))
        .collect();
    let mut text = String::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', widths[c] - cell.chars().count()));
            }
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_use_the_largest_unit() {
        use std::time::Duration;
        let cases =
            [(0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h"), (86399, "23h"), (86400 * 4, "4d")];
        for (secs, want) in cases {
            assert_eq!(age(Duration::from_secs(secs)), want);
        }
    }

    #[test]
    fn vmid_from_lxc_data_or_top_level() {
        let mut r: Record = serde_json::from_value(serde_json::json!({
            "id": "a", "backend": "lxc", "kind": "proxmox-lxc", "bundle": "/b", "created": "x", "phase": "created",
            "data": {"lxc": {"vmid": 9001}}
        }))
        .unwrap();
        assert_eq!(vmid(&r), Some(9001));
        r.data.clear();
        assert_eq!(vmid(&r), None);
        r.data.insert("vmid".into(), 9002.into());
        assert_eq!(vmid(&r), Some(9002));
    }

    #[test]
    fn table_pads_columns() {
        let t = render_table(&[
            vec!["ID".into(), "PID".into(), "OWNER".into()],
            vec!["a-very-long-container-id".into(), "1".into(), "root".into()],
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], format!("{:27}{:12}OWNER", "ID", "PID"));
        assert_eq!(lines[1], format!("{:27}{:12}root", "a-very-long-container-id", "1"));
    }
}
