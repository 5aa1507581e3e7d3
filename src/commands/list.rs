//! `list`: every container nexcage knows, whatever its backend, in runc's shapes (the
//! table's columns ID PID STATUS BUNDLE CREATED OWNER, `--format json` as runc's
//! schema, `null` when empty). nexcage's own columns (backend, Proxmox VMID) only with
//! `--wide`.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;

use super::Ctx;
use crate::backend::{self, ContainerState};
use crate::cli::{Format, ListArgs};
use crate::state::Record;

pub fn list(ctx: &Ctx, args: &ListArgs) -> Result<i32> {
    // proxmox-lxc containers whose records were lost (reboot, wiped --root) come back.
    backend::adopt_lost(ctx);
    let mut by_backend: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    let mut vmids: BTreeMap<String, u64> = BTreeMap::new();
    for id in ctx.store.ids()? {
        // A record removed meanwhile (concurrent delete) is simply skipped.
        if let Ok(r) = ctx.store.load(&id) {
            by_backend.entry(r.backend.clone()).or_default().push(r);
        }
    }
    let mut rows: Vec<(String, ContainerState)> = Vec::new();
    for (name, records) in &by_backend {
        let backend = backend::for_record(&records[0])?;
        if args.wide {
            for r in records {
                if let Some(v) = backend.vmid(r) {
                    vmids.insert(r.id.clone(), v);
                }
            }
        }
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
    for (_, s) in rows.iter_mut() {
        if s.owner.is_empty() {
            s.owner = owner_of(&ctx.store.dir(&s.id));
        }
    }
    match args.format {
        Format::Json => {
            let entries: Vec<ListEntry> = rows
                .iter()
                .map(|(backend, s)| ListEntry {
                    state: s,
                    backend: args.wide.then_some(backend.as_str()),
                    vmid: if args.wide { vmids.get(&s.id).copied() } else { None },
                })
                .collect();
            // runc encodes an empty list as `null`.
            if entries.is_empty() {
                writeln!(out, "null")?;
            } else {
                writeln!(out, "{}", serde_json::to_string(&entries)?)?;
            }
        }
        Format::Table => {
            let mut head = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from).to_vec();
            if args.wide {
                head.extend(["BACKEND", "VMID"].map(String::from));
            }
            let mut table = vec![head];
            for (backend, s) in &rows {
                let mut row = vec![
                    s.id.clone(),
                    s.pid.to_string(),
                    s.status.clone(),
                    s.bundle.display().to_string(),
                    if s.created.is_empty() { "unknown".to_string() } else { s.created.clone() },
                    s.owner.clone(),
                ];
                if args.wide {
                    row.push(backend.clone());
                    row.push(vmids.get(&s.id).map_or_else(|| "-".to_string(), u64::to_string));
                }
                table.push(row);
            }
            write!(out, "{}", render_table(&table))?;
        }
    }
    Ok(0)
}

/// One container in `list --format json`: runc's fields in runc's order, and with
/// `--wide` nexcage's `backend` and `vmid`.
#[derive(serde::Serialize)]
struct ListEntry<'a> {
    #[serde(flatten)]
    state: &'a ContainerState,
    #[serde(skip_serializing_if = "Option::is_none")]
    backend: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vmid: Option<u64>,
}

/// The user owning a container's state, by name (runc: the owner of its state directory).
fn owner_of(dir: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(md) = std::fs::metadata(dir) else { return String::new() };
    // Read once per `list`, not once per container.
    static PASSWD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let passwd = PASSWD.get_or_init(|| std::fs::read_to_string("/etc/passwd").unwrap_or_default());
    user_name(passwd, md.uid()).map(str::to_string).unwrap_or_else(|| format!("#{}", md.uid()))
}

/// The name of `uid` in an /etc/passwd text. Read directly, as runc does, not through
/// getpwuid: the shipped nexcage is a static binary, and glibc's NSS modules must not be
/// loaded into it (hack/build-nexcage).
fn user_name(passwd: &str, uid: u32) -> Option<&str> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        (id.parse::<u32>().ok()? == uid && !name.is_empty()).then_some(name)
    })
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
    fn user_name_reads_passwd_lines() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\nbroken\nnobody:x:65534:65534::/:/usr/sbin/nologin\n";
        assert_eq!(user_name(passwd, 0), Some("root"));
        assert_eq!(user_name(passwd, 65534), Some("nobody"));
        assert_eq!(user_name(passwd, 1000), None);
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
