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
    for id in ctx.store.ids()? {
        // A record removed meanwhile (concurrent delete) is simply skipped.
        if let Ok(r) = ctx.store.load(&id) {
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
            let mut table =
                vec![["ID", "PID", "STATUS", "BACKEND", "BUNDLE", "CREATED", "OWNER"].map(String::from).to_vec()];
            for (backend, s) in &rows {
                table.push(vec![
                    s.id.clone(),
                    s.pid.to_string(),
                    s.status.clone(),
                    backend.clone(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    s.owner.clone(),
                ]);
            }
            write!(out, "{}", render_table(&table))?;
        }
    }
    Ok(0)
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
