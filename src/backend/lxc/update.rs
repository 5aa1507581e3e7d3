//! `update` on proxmox-lxc containers: the limits Proxmox manages as container options
//! are changed with one `pct set` (memory, swap, cpulimit, cpuunits), which persists them
//! in the PVE config and, on Proxmox VE, applies them to the running container at once.
//! (The pct emulator only persists them.) Limits that live in raw `lxc.cgroup2.*` lines
//! (pids, cpuset, I/O, ...) are refused with the field named: pct cannot change them on
//! a running container.
//!
//! Input as runc takes it: `--resources FILE` or `-` (stdin), an OCI LinuxResources
//! document, and/or the `--memory`, `--memory-swap`, `--cpu-quota`, `--cpu-period`,
//! `--cpu-share` flags (which win).

use std::io::Read;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use super::data::LxcData;
use super::lifecycle::{status, Status};
use super::{pct, pveconf, spec};
use crate::cli::UpdateArgs;
use crate::state::Record;

const MIB: i64 = 1 << 20;

/// Is this resource value "no change"? As with runc, a field that is absent, null, zero,
/// empty, or an object of such fields changes nothing: engines send a whole
/// LinuxResources document (Docker's `update --memory` also carries `blockIO.weight: 0`,
/// `cpu.quota: 0`, `memory.reservation: 0`), of which only the non-zero values are asked for.
fn unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(unset),
    }
}

/// A field's value when it asks for a change (see [`unset`]).
fn set<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !unset(v))
}

/// `pct set` options for the requested resources.
pub fn pct_options(res: &Value, current_memory_mib: Option<u64>) -> Result<Vec<(String, String)>> {
    let mut opts = Vec::new();
    let obj = res.as_object().ok_or_else(|| anyhow!("resources: must be a JSON object"))?;
    for (key, value) in obj {
        match key.as_str() {
            "memory" | "cpu" => {}
            _ if unset(value) => {}
            other => bail!(
                "resources.{other}: not supported by update on the proxmox-lxc backend (only memory.limit, \
                 memory.swap, cpu.quota, cpu.period and cpu.shares can change on a running Proxmox container)"
            ),
        }
    }
    let mem = &res["memory"];
    let mut memory_mib = current_memory_mib;
    if let Some(m) = mem.as_object() {
        if let Some((k, _)) = m.iter().find(|(k, v)| !matches!(k.as_str(), "limit" | "swap") && !unset(v)) {
            bail!("resources.memory.{k}: not supported by update on the proxmox-lxc backend");
        }
    }
    if let Some(limit) = set(mem, "limit").and_then(Value::as_i64) {
        if limit <= 0 {
            bail!(
                "resources.memory.limit {limit}: Proxmox containers always have a memory limit; give a size in bytes"
            );
        }
        let mib = (((limit + MIB - 1) / MIB) as u64).max(16);
        memory_mib = Some(mib);
        opts.push(("memory".into(), mib.to_string()));
    }
    if let Some(swap) = set(mem, "swap").and_then(Value::as_i64) {
        if swap > 0 {
            let mem = memory_mib.ok_or_else(|| anyhow!("resources.memory.swap needs the memory limit"))? as i64 * MIB;
            let extra = ((swap - mem).max(0) + MIB - 1) / MIB;
            opts.push(("swap".into(), extra.to_string()));
        } else if swap < 0 {
            bail!("resources.memory.swap {swap}: unlimited swap cannot be expressed in Proxmox; give a size in bytes");
        }
    }
    let cpu = &res["cpu"];
    if let Some(c) = cpu.as_object() {
        if let Some((k, _)) = c.iter().find(|(k, v)| !matches!(k.as_str(), "quota" | "period" | "shares") && !unset(v))
        {
            bail!("resources.cpu.{k}: not supported by update on the proxmox-lxc backend");
        }
    }
    // quota: 0 changes nothing, a negative one (-1) lifts the limit (Proxmox's cpulimit 0).
    if let Some(quota) = set(cpu, "quota").and_then(Value::as_i64) {
        let period = set(cpu, "period").and_then(Value::as_u64).unwrap_or(100_000).max(1);
        let limit = if quota < 0 {
            "0".to_string()
        } else {
            format!("{:.2}", (quota as f64 / period as f64 * 100.0).ceil() / 100.0)
        };
        opts.push(("cpulimit".into(), limit));
    }
    if let Some(shares) = set(cpu, "shares").and_then(Value::as_u64) {
        opts.push(("cpuunits".into(), spec::shares_to_cpuunits(shares).to_string()));
    }
    if opts.is_empty() {
        bail!("update: no resource to change (give --resources or a flag such as --memory)");
    }
    Ok(opts)
}

fn resources(args: &UpdateArgs) -> Result<Value> {
    let mut res = match args.resources.as_deref() {
        None => serde_json::json!({}),
        Some("-") => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("cannot read resources from stdin")?;
            serde_json::from_str(&s).context("resources from stdin are not JSON")?
        }
        Some(path) => {
            let text = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
            serde_json::from_slice(&text).with_context(|| format!("{path} is not JSON"))?
        }
    };
    let num = |v: &Option<String>, what: &str| -> Result<Option<i64>> {
        v.as_deref().map(|s| s.parse::<i64>().with_context(|| format!("--{what} {s:?} must be a number"))).transpose()
    };
    if let Some(m) = num(&args.memory, "memory")? {
        res["memory"]["limit"] = m.into();
    }
    if let Some(s) = num(&args.memory_swap, "memory-swap")? {
        res["memory"]["swap"] = s.into();
    }
    if let Some(q) = num(&args.cpu_quota, "cpu-quota")? {
        res["cpu"]["quota"] = q.into();
    }
    if let Some(p) = num(&args.cpu_period, "cpu-period")? {
        res["cpu"]["period"] = p.into();
    }
    if let Some(s) = num(&args.cpu_share, "cpu-share")? {
        res["cpu"]["shares"] = s.into();
    }
    for (flag, v) in [
        ("blkio-weight", &args.blkio_weight),
        ("cpuset-cpus", &args.cpuset_cpus),
        ("cpuset-mems", &args.cpuset_mems),
        ("pids-limit", &args.pids_limit),
        ("memory-reservation", &args.memory_reservation),
        ("cpu-rt-period", &args.cpu_rt_period),
        ("cpu-rt-runtime", &args.cpu_rt_runtime),
        ("l3-cache-schema", &args.l3_cache_schema),
        ("mem-bw-schema", &args.mem_bw_schema),
    ] {
        if v.is_some() {
            bail!("--{flag}: not supported by update on the proxmox-lxc backend");
        }
    }
    Ok(res)
}

pub fn update(record: &Record, args: &UpdateArgs) -> Result<i32> {
    let data = LxcData::of(record)?;
    if matches!(status(record, Some(data)).0, Status::Stopped | Status::Creating) {
        bail!("container not running");
    }
    let res = resources(args)?;
    let current =
        pveconf::read_config(&data.pve_root, data.vmid).ok().and_then(|c| c.get("memory").and_then(|m| m.parse().ok()));
    let opts = pct_options(&res, current)?;
    pct::Pct::for_root(&data.pct, &data.pve_root).set(data.vmid, &opts)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resources_become_pct_options() {
        let o = pct_options(
            &json!({"memory": {"limit": 100 * MIB + 1, "swap": 300 * MIB}, "cpu": {"quota": 50000, "period": 100000, "shares": 1024}}),
            None,
        )
        .unwrap();
        let got: Vec<(&str, &str)> = o.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, [("memory", "101"), ("swap", "199"), ("cpulimit", "0.50"), ("cpuunits", "39")]);
        let o = pct_options(&json!({"memory": {"swap": 600 * MIB}}), Some(512)).unwrap();
        assert_eq!(o, [("swap".to_string(), "88".to_string())]);
    }

    #[test]
    fn zero_values_change_nothing_as_with_runc() {
        // What Docker 20.10 sends (captured on stdin) for `docker update --memory 96m
        // --memory-swap 192m`, then for `docker update --cpus 1.5`.
        let docker = json!({"memory":{"limit":100663296,"reservation":0,"swap":201326592,"kernel":0},
            "cpu":{"shares":0,"quota":0,"period":0},"blockIO":{"weight":0}});
        let o = pct_options(&docker, Some(64)).unwrap();
        assert_eq!(o, [("memory".to_string(), "96".to_string()), ("swap".to_string(), "96".to_string())]);
        let docker = json!({"memory":{"limit":0,"reservation":0,"kernel":0},
            "cpu":{"shares":0,"quota":150000,"period":100000},"blockIO":{"weight":0}});
        let o = pct_options(&docker, Some(96)).unwrap();
        assert_eq!(o, [("cpulimit".to_string(), "1.50".to_string())]);
        // -1 lifts the CPU limit.
        let o = pct_options(&json!({"cpu": {"quota": -1}}), Some(64)).unwrap();
        assert_eq!(o, [("cpulimit".to_string(), "0".to_string())]);
    }

    #[test]
    fn unsupported_fields_are_named() {
        for (v, want) in [
            (json!({"pids": {"limit": 5}}), "resources.pids"),
            (json!({"memory": {"reservation": 5}}), "resources.memory.reservation"),
            (json!({"cpu": {"cpus": "0"}}), "resources.cpu.cpus"),
            (json!({"memory": {"limit": -1}}), "memory.limit -1"),
            (json!({}), "no resource"),
            (json!({"blockIO": {"weight": 0}, "cpu": {"quota": 0, "shares": 0}}), "no resource"),
            (json!({"blockIO": {"weight": 500}, "memory": {"limit": 64 * MIB}}), "resources.blockIO"),
        ] {
            let e = pct_options(&v, Some(512)).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
