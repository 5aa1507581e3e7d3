use super::*;
use serde_json::{json, Value};

/// A host whose `local` takes containers (size 0) and that has an lvmthin `local-lvm`.
fn test_storages() -> storage::Storages {
    storage::Storages {
        defs: storage::parse("dir: local\n\tpath /var/lib/vz\n\tcontent rootdir,vztmpl\nlvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n"),
        path: "/etc/pve/storage.cfg".into(),
        node: "pve".into(),
    }
}

const NET: &str = "name=eth0,bridge=vmbr0,ip=dhcp";

/// A config.json as `runc spec` / engines write it.
fn base() -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/",
                    "capabilities": {"bounding": ["CAP_KILL"]}, "noNewPrivileges": true,
                    "apparmorProfile": "containers-default-0.50.0"},
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "web",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]},
            "cgroupsPath": "machine.slice:libpod:abc",
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/sys"],
            "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]},
            "rootfsPropagation": "rprivate"
        }
    })
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bundle/rootfs")).unwrap();
        std::fs::create_dir_all(dir.path().join("host/data/sub")).unwrap();
        std::fs::write(dir.path().join("host/file.txt"), "x").unwrap();
        std::fs::create_dir_all(dir.path().join("secret")).unwrap();
        Env { dir }
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn s(&self, rel: &str) -> String {
        self.p(rel).to_str().unwrap().to_string()
    }
    fn opts(&self) -> MapOptions {
        MapOptions {
            bundle: self.p("bundle"),
            storage: None,
            storages: test_storages(),
            unprivileged: true,
            network: Some(NET.into()),
            allowed_host_mounts: vec![self.p("host")],
            engine_dirs: vec![self.p("engine")],
            container_id: ENGINE_ID.into(),
            description: "descr".into(),
            host: HostInfo { memory_mib: Some(2048), swap_mib: Some(1024), cgroup_v1: false },
            rootfs_mode: RootfsMode::Copy,
        }
    }
    fn map(&self, v: Value) -> Result<PveContainer, SpecError> {
        self.map_with(v, &self.opts())
    }
    /// Without the two lines base()'s /dev/shm and /dev/mqueue mounts always give
    /// (checked by engine_defaults_map_cleanly), so that tests compare only the lines of
    /// what they change.
    fn map_with(&self, v: Value, o: &MapOptions) -> Result<PveContainer, SpecError> {
        let mut out = self.map_all(v, o)?;
        out.raw_lxc.retain(|(k, v)| !(k == "lxc.mount.entry" && BASE_LINES.contains(&v.as_str())));
        Ok(out)
    }
    fn map_all(&self, v: Value, o: &MapOptions) -> Result<PveContainer, SpecError> {
        let spec: Spec = serde_json::from_value(v).unwrap();
        map(&spec, o)
    }
}

const BASE_LINES: [&str; 2] = [
    "shm dev/shm tmpfs nosuid,noexec,nodev,mode=1777,size=65536k,create=dir 0 0",
    "mqueue dev/mqueue mqueue nosuid,noexec,nodev,create=dir 0 0",
];

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn err_path(r: Result<PveContainer, SpecError>) -> String {
    r.unwrap_err().path
}

#[test]
fn engine_defaults_map_cleanly() {
    let e = Env::new();
    let out = e.map_all(base(), &e.opts()).unwrap();
    assert_eq!(
        out.create,
        kv(&[
            ("hostname", "web"),
            ("ostype", "unmanaged"),
            ("unprivileged", "1"),
            ("memory", "2048"),
            ("swap", "1024"),
            ("rootfs", "local:0"),
            ("net0", &format!("{NET},host-managed=1")),
            ("tags", "nexcage"),
            ("description", "descr"),
        ])
    );
    assert!(out.loopback_up);
    // Standard mounts, masked/readonly paths (applied by nexcage-init), seccomp,
    // apparmor, device rules and cgroupsPath are Proxmox's business: no raw lines but
    // /dev/shm and /dev/mqueue (LXC mounts neither), no warnings.
    assert_eq!(out.raw_lxc, kv(&[("lxc.mount.entry", BASE_LINES[0]), ("lxc.mount.entry", BASE_LINES[1])]));
    assert_eq!(out.warnings, Vec::<String>::new());
}

#[test]
fn hostname_rules() {
    let e = Env::new();
    let mut v = base();
    v["hostname"] = json!("bad_name");
    let er = e.map(v.clone()).unwrap_err();
    assert_eq!(er.path, "hostname");
    assert!(er.to_string().starts_with("config.json: hostname: \"bad_name\" is not a valid DNS name"), "{er}");
    for bad in ["-a", "a-", "a..b", &"x".repeat(64)] {
        v["hostname"] = json!(bad);
        assert_eq!(err_path(e.map(v.clone())), "hostname", "{bad}");
    }
    v["hostname"] = json!("a-1.example.org");
    assert_eq!(e.map(v.clone()).unwrap().option("hostname"), Some("a-1.example.org"));
    v["hostname"] = json!("");
    assert_eq!(e.map(v.clone()).unwrap().option("hostname"), None);
    v["domainname"] = json!("example.org");
    let m = e.map(v).unwrap();
    assert!(m.raw_lxc.is_empty(), "{:?}", m.raw_lxc);
    assert_eq!(m.sysctls, kv(&[("kernel.domainname", "example.org")]));
}

#[test]
fn memory_and_swap() {
    let e = Env::new();
    let with = |mem: Value| {
        let mut v = base();
        v["linux"]["resources"]["memory"] = mem;
        v
    };
    let m = |mem: Value| {
        let out = e.map(with(mem)).unwrap();
        (out.option("memory").map(str::to_string), out.option("swap").map(str::to_string))
    };
    let s = |a: &str, b: &str| (Some(a.to_string()), Some(b.to_string()));
    assert_eq!(m(json!({"limit": 100 * MIB + 1})), s("101", "1024"));
    assert_eq!(m(json!({"limit": 1000})), s("16", "1024"));
    assert_eq!(m(json!({"limit": 256 * MIB, "swap": 512 * MIB})), s("256", "256"));
    assert_eq!(m(json!({"limit": 256 * MIB, "swap": 256 * MIB + 1})), s("256", "1"));
    assert_eq!(m(json!({"limit": 256 * MIB, "swap": 100})), s("256", "0"));
    assert_eq!(m(json!({"limit": 256 * MIB, "swap": -1})), s("256", "1024"));
    assert_eq!(m(json!({"limit": -1})), s("2048", "1024"));
    assert_eq!(err_path(e.map(with(json!({"swap": 100 * MIB})))), "linux.resources.memory.swap");
    assert_eq!(err_path(e.map(with(json!({"limit": MIB, "swap": -2})))), "linux.resources.memory.swap");
    // Unknown host sizes: PVE defaults, with warnings.
    let mut o = e.opts();
    o.host = HostInfo::default();
    let out = e.map_with(base(), &o).unwrap();
    assert_eq!((out.option("memory"), out.option("swap")), (None, None));
    assert_eq!(out.warnings.len(), 2);
    // Reservation and ignored v1 knobs.
    let out = e
        .map(with(json!({"limit": MIB * 64, "reservation": MIB * 32, "kernel": 1, "swappiness": 10, "disableOOMKiller": true})))
        .unwrap();
    assert_eq!(out.raw_lxc, kv(&[("lxc.cgroup2.memory.low", "33554432")]));
    assert_eq!(out.warnings.len(), 3, "{:?}", out.warnings);
}

#[test]
fn cpu_and_pids() {
    let e = Env::new();
    let cpu = |c: Value| {
        let mut v = base();
        v["linux"]["resources"]["cpu"] = c;
        e.map(v)
    };
    let opt = |c: Value, k: &str| cpu(c).unwrap().option(k).map(str::to_string);
    assert_eq!(opt(json!({"quota": 50000, "period": 100000}), "cpulimit").as_deref(), Some("0.5"));
    assert_eq!(opt(json!({"quota": 150000, "period": 100000}), "cpulimit").as_deref(), Some("1.5"));
    assert_eq!(opt(json!({"quota": 200000}), "cpulimit").as_deref(), Some("2"));
    assert_eq!(opt(json!({"quota": 1, "period": 3}), "cpulimit").as_deref(), Some("0.34"));
    assert_eq!(opt(json!({"quota": 125, "period": 10000}), "cpulimit").as_deref(), Some("0.02"));
    assert_eq!(opt(json!({"quota": 1, "period": 1000000}), "cpulimit").as_deref(), Some("0.01"));
    assert_eq!(opt(json!({"quota": -1, "period": 100000}), "cpulimit"), None);
    assert_eq!(opt(json!({"shares": 1024}), "cpuunits").as_deref(), Some("39"));
    assert_eq!(opt(json!({"shares": 2}), "cpuunits").as_deref(), Some("1"));
    assert_eq!(opt(json!({"shares": 262144}), "cpuunits").as_deref(), Some("10000"));
    assert_eq!(opt(json!({"shares": 0}), "cpuunits"), None);
    assert_eq!(shares_to_cpuunits(1), 1);
    assert_eq!(shares_to_cpuunits(1_000_000), 10_000);
    let out = cpu(json!({"cpus": "0-1,3", "mems": "0", "burst": 1000, "idle": 1})).unwrap();
    assert_eq!(
        out.raw_lxc,
        kv(&[
            ("lxc.cgroup2.cpu.max.burst", "1000"),
            ("lxc.cgroup2.cpuset.cpus", "0-1,3"),
            ("lxc.cgroup2.cpuset.mems", "0"),
            ("lxc.cgroup2.cpu.idle", "1")
        ])
    );
    assert_eq!(err_path(cpu(json!({"cpus": "0;1"}))), "linux.resources.cpu.cpus");
    assert_eq!(err_path(cpu(json!({"realtimeRuntime": 1000}))), "linux.resources.cpu.realtimeRuntime");
    assert_eq!(err_path(cpu(json!({"quota": 8193 * 100000_i64}))), "linux.resources.cpu.quota");
    let mut v = base();
    v["linux"]["resources"]["pids"] = json!({"limit": 33});
    assert_eq!(e.map(v.clone()).unwrap().raw_lxc, kv(&[("lxc.cgroup2.pids.max", "33")]));
    v["linux"]["resources"]["pids"] = json!({"limit": -1});
    assert_eq!(e.map(v).unwrap().raw_lxc, vec![]);
}

#[test]
fn other_cgroup_resources() {
    let e = Env::new();
    let mut v = base();
    v["linux"]["resources"]["blockIO"] = json!({
        "weight": 500, "leafWeight": 300,
        "weightDevice": [{"major": 8, "minor": 0, "weight": 10}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}]
    });
    v["linux"]["resources"]["rdma"] = json!({"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}});
    v["linux"]["resources"]["unified"] = json!({"memory.high": "50000000", "io.weight": "default 100"});
    let out = e.map(v.clone()).unwrap();
    assert_eq!(
        out.raw_lxc,
        kv(&[
            ("lxc.cgroup2.io.weight", "default 4950"),
            ("lxc.cgroup2.io.weight", "8:0 1"),
            ("lxc.cgroup2.io.max", "8:0 rbps=1048576"),
            ("lxc.cgroup2.io.max", "8:16 wiops=100"),
            ("lxc.cgroup2.rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
            ("lxc.cgroup2.io.weight", "default 100"),
            ("lxc.cgroup2.memory.high", "50000000"),
        ])
    );
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    let mut bad = v.clone();
    bad["linux"]["resources"]["unified"] = json!({"../x": "1"});
    assert_eq!(err_path(e.map(bad)), "linux.resources.unified[\"../x\"]");
    let mut bad = v.clone();
    bad["linux"]["resources"]["unified"] = json!({"memory.high": "1\nlxc.rootfs.path: /"});
    assert_eq!(err_path(e.map(bad)), "linux.resources.unified[\"memory.high\"]");
    let mut bad = v.clone();
    bad["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "2 MB", "limit": 1}]);
    assert_eq!(err_path(e.map(bad)), "linux.resources.hugepageLimits[0].pageSize");
    // A valid one is refused too: its key cannot survive Proxmox's config parser.
    let mut bad = v.clone();
    bad["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 209715200}]);
    assert_eq!(err_path(e.map(bad)), "linux.resources.hugepageLimits[0]");
    let mut bad = v;
    bad["linux"]["resources"]["network"] = json!({"classID": 1048577});
    assert_eq!(err_path(e.map(bad)), "linux.resources.network");
}

/// On a host whose controllers are v1 (legacy or hybrid), where LXC ignores
/// `lxc.cgroup2.*`: the same limits as `lxc.cgroup.*` keys, the v1-only knobs applied,
/// and cgroup v2 files refused by name.
#[test]
fn cgroup_v1_host_keys() {
    let e = Env::new();
    let mut o = e.opts();
    o.host.cgroup_v1 = true;
    let mut v = base();
    v["linux"]["resources"] = json!({
        "memory": {"limit": MIB * 64, "reservation": MIB * 32, "swappiness": 10, "disableOOMKiller": true, "kernel": 1},
        "cpu": {"cpus": "0-1", "mems": "0", "burst": 1000, "idle": 1, "realtimeRuntime": 950000, "realtimePeriod": 1000000},
        "pids": {"limit": 33},
        "blockIO": {
            "weight": 500,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 10}],
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}]
        },
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
        "rdma": {"mlx5_1": {"hcaHandles": 3}}
    });
    let out = e.map_with(v.clone(), &o).unwrap();
    assert_eq!(
        out.raw_lxc,
        kv(&[
            ("lxc.cgroup.memory.soft_limit_in_bytes", "33554432"),
            ("lxc.cgroup.memory.swappiness", "10"),
            ("lxc.cgroup.memory.oom_control", "1"),
            ("lxc.cgroup.cpu.cfs_burst_us", "1000"),
            ("lxc.cgroup.cpu.rt_period_us", "1000000"),
            ("lxc.cgroup.cpu.rt_runtime_us", "950000"),
            ("lxc.cgroup.cpuset.cpus", "0-1"),
            ("lxc.cgroup.cpuset.mems", "0"),
            ("lxc.cgroup.cpu.idle", "1"),
            ("lxc.cgroup.pids.max", "33"),
            ("lxc.cgroup.blkio.weight", "500"),
            ("lxc.cgroup.blkio.weight_device", "8:0 10"),
            ("lxc.cgroup.blkio.throttle.read_bps_device", "8:0 1048576"),
            ("lxc.cgroup.blkio.throttle.write_iops_device", "8:16 100"),
            ("lxc.cgroup.net_cls.classid", "1048577"),
            ("lxc.cgroup.net_prio.ifpriomap", "eth0 5"),
            ("lxc.cgroup.rdma.max", "mlx5_1 hca_handle=3"),
        ])
    );
    assert_eq!(out.warnings.len(), 1, "only memory.kernel is ignored: {:?}", out.warnings);
    let mut bad = v.clone();
    bad["linux"]["resources"]["unified"] = json!({"memory.high": "1"});
    assert_eq!(err_path(e.map_with(bad, &o)), "linux.resources.unified[\"memory.high\"]");
    let mut bad = v.clone();
    bad["linux"]["resources"]["memory"]["swappiness"] = json!(101);
    assert_eq!(err_path(e.map_with(bad, &o)), "linux.resources.memory.swappiness");
    let mut bad = v;
    bad["linux"]["resources"]["network"]["priorities"] = json!([{"name": "eth 0", "priority": 1}]);
    assert_eq!(err_path(e.map_with(bad, &o)), "linux.resources.network.priorities[0].name");
    // The realtime files are v1's: refused on a cgroup v2 host, by name.
    let mut v2 = base();
    v2["linux"]["resources"]["cpu"] = json!({"realtimePeriod": 1000000});
    assert_eq!(err_path(e.map(v2)), "linux.resources.cpu.realtimePeriod");
}

fn with_mounts(extra: Value) -> Value {
    let mut v = base();
    let mounts = v["mounts"].as_array_mut().unwrap();
    mounts.extend(extra.as_array().unwrap().iter().cloned());
    v
}

#[test]
fn directory_binds_become_mount_points() {
    let e = Env::new();
    let v = with_mounts(json!([
        {"destination": "/data", "type": "bind", "source": e.s("host/data"), "options": ["rbind", "rprivate", "ro"]},
        {"destination": "/w", "source": e.s("host/data/sub"), "options": ["bind"]},
        {"destination": "/b", "type": "bind", "source": "rootfs", "options": ["rbind"]}
    ]));
    let mut privileged = e.opts();
    privileged.unprivileged = false;
    // Unprivileged (and no user namespace in the bundle): entries LXC idmaps with the
    // container's map, so the host's root-owned files are the container root's.
    let out = e.map(v.clone()).unwrap();
    assert_eq!(out.option("mp0"), None);
    let entries: Vec<&str> =
        out.raw_lxc.iter().filter(|(k, _)| k == "lxc.mount.entry").map(|(_, v)| v.as_str()).collect();
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert!(entries.iter().all(|e| e.ends_with(",idmap=container 0 0")), "{entries:?}");
    // A source owned by the container's host ids (Proxmox's chown 100000) is not.
    std::os::unix::fs::chown(e.p("host/data/sub"), Some(100_000), None).unwrap_or_else(|err| {
        assert!(!nix::unistd::Uid::effective().is_root(), "{err}");
    });
    if nix::unistd::Uid::effective().is_root() {
        let out =
            e.map(with_mounts(json!([{"destination": "/w", "source": e.s("host/data/sub"), "options": ["bind"]}])));
        let out = out.unwrap();
        assert!(out.raw_lxc.iter().all(|(_, v)| !v.contains("idmap")), "{:?}", out.raw_lxc);
    }
    // With the bundle's own user namespace, binds are as OCI says: not idmapped.
    let mut userns = v.clone();
    userns["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    assert!(e.map(userns).unwrap().raw_lxc.iter().all(|(_, v)| !v.contains("idmap")));
    let out = e.map_with(v, &privileged).unwrap();
    let canon = |p: &str| std::fs::canonicalize(e.p(p)).unwrap().to_str().unwrap().to_string();
    assert_eq!(out.option("mp0"), Some(format!("{},mp=/data,ro=1", canon("host/data")).as_str()));
    assert_eq!(out.option("mp1"), Some(format!("{},mp=/w", canon("host/data/sub")).as_str()));
    // A relative source is relative to the bundle (always allowed).
    assert_eq!(out.option("mp2"), Some(format!("{},mp=/b", canon("bundle/rootfs")).as_str()));
    assert_eq!(out.raw_lxc, vec![]);
}

#[test]
fn other_mounts_become_mount_entries() {
    let e = Env::new();
    std::fs::create_dir_all(e.p("host/sp ace")).unwrap();
    let data = std::fs::canonicalize(e.p("host/data")).unwrap();
    let v = with_mounts(json!([
        {"destination": "/etc/app.conf", "type": "bind", "source": e.s("host/file.txt"), "options": ["rbind", "ro"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=64m", "tmpcopyup"]},
        {"destination": "/n", "type": "bind", "source": e.s("host/data"), "options": ["rbind", "nosuid", "nodev"]},
        {"destination": "/n/inner", "type": "bind", "source": e.s("host/data/sub"), "options": ["rbind"]},
        {"destination": "/my dir", "type": "bind", "source": e.s("host/sp ace"), "options": ["rbind"]},
        {"destination": "/mq", "type": "mqueue", "source": "mqueue"}
    ]));
    let mut privileged = e.opts();
    privileged.unprivileged = false;
    let out = e.map_with(v, &privileged).unwrap();
    let file = std::fs::canonicalize(e.p("host/file.txt")).unwrap();
    let space = std::fs::canonicalize(e.p("host/sp ace")).unwrap();
    assert_eq!(
        out.raw_lxc,
        kv(&[
            ("lxc.mount.entry", &format!("{} etc/app.conf none rbind,ro,create=file 0 0", file.display())),
            ("lxc.mount.entry", "tmpfs tmp tmpfs nosuid,size=64m,create=dir 0 0"),
            ("lxc.mount.entry", &format!("{} n none rbind,nosuid,nodev,create=dir 0 0", data.display())),
            ("lxc.mount.entry", &format!("{} n/inner none rbind,create=dir 0 0", data.join("sub").display())),
            (
                "lxc.mount.entry",
                &format!("{} my\\040dir none rbind,create=dir 0 0", space.to_str().unwrap().replace(' ', "\\040"))
            ),
            ("lxc.mount.entry", "mqueue mq mqueue create=dir 0 0"),
        ])
    );
    assert_eq!(out.option("mp0"), None);
    assert_eq!(out.warnings.len(), 1, "tmpcopyup: {:?}", out.warnings);
}

/// The id of the container in `Env::opts` (as engines make ids: 64 hex digits).
const ENGINE_ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// An engine's files for this container (below `engine_dirs`, in a directory named
/// after its id or its pod sandbox's) need no `allowed_host_mounts`; another
/// container's, the store itself, and ids engines do not make stay refused.
#[test]
fn engine_files_of_this_container_are_allowed() {
    let e = Env::new();
    let other = "f".repeat(64);
    for id in [ENGINE_ID, other.as_str()] {
        std::fs::create_dir_all(e.p(&format!("engine/{id}/userdata/shm"))).unwrap();
        std::fs::write(e.p(&format!("engine/{id}/userdata/resolv.conf")), "").unwrap();
    }
    std::fs::create_dir_all(e.p("engine/volumes")).unwrap();
    let bind =
        |src: String, dst: &str| json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind"]});
    let mut o = e.opts();
    o.allowed_host_mounts.clear();
    let ours = with_mounts(json!([
        bind(e.s(&format!("engine/{ENGINE_ID}/userdata/resolv.conf")), "/etc/resolv.conf"),
        bind(e.s(&format!("engine/{ENGINE_ID}/userdata/shm")), "/dev/shm"),
    ]));
    e.map_with(ours.clone(), &o).unwrap();
    for refused in [format!("engine/{other}/userdata/resolv.conf"), "engine/volumes".to_string()] {
        let v = with_mounts(json!([bind(e.s(&refused), "/x")]));
        assert_eq!(err_path(e.map_with(v, &o)), "mounts[7].source", "{refused}");
    }
    // A pod's app container: the files are its sandbox's.
    let mut pod = with_mounts(json!([bind(e.s(&format!("engine/{other}/userdata/resolv.conf")), "/etc/resolv.conf")]));
    pod["annotations"] = json!({"io.kubernetes.cri.sandbox-id": other});
    e.map_with(pod, &o).unwrap();
    // An id that names a store directory reaches nothing.
    std::fs::create_dir_all(e.p("engine/volumes/v/_data")).unwrap();
    let mut named = o.clone();
    named.container_id = "volumes".into();
    let v = with_mounts(json!([bind(e.s("engine/volumes/v/_data"), "/x")]));
    assert_eq!(err_path(e.map_with(v, &named)), "mounts[7].source");
    // Without engine_dirs, nothing of the engine's.
    o.engine_dirs.clear();
    assert_eq!(err_path(e.map_with(ours, &o)), "mounts[7].source");
}

#[test]
fn host_binds_only_where_allowed() {
    let e = Env::new();
    let v = with_mounts(json!([{"destination": "/s", "type": "bind", "source": e.s("secret"), "options": ["rbind"]}]));
    let er = e.map(v.clone()).unwrap_err();
    assert_eq!(er.path, "mounts[7].source");
    assert!(er.hint.contains("allowed_host_mounts"), "{er}");
    // Empty list: no host binds at all, and the message says so.
    let mut o = e.opts();
    o.allowed_host_mounts.clear();
    let er = e.map_with(v, &o).unwrap_err();
    assert!(er.hint.contains("host bind mounts are disabled"), "{er}");
    // A symlink inside an allowed directory pointing out of it is refused.
    std::os::unix::fs::symlink(e.p("secret"), e.p("host/link")).unwrap();
    let v =
        with_mounts(json!([{"destination": "/s", "type": "bind", "source": e.s("host/link"), "options": ["rbind"]}]));
    assert_eq!(err_path(e.map(v)), "mounts[7].source");
    // A missing source.
    let v =
        with_mounts(json!([{"destination": "/s", "type": "bind", "source": e.s("host/nope"), "options": ["rbind"]}]));
    assert_eq!(err_path(e.map(v)), "mounts[7].source");
}

#[test]
fn mount_errors() {
    let e = Env::new();
    let m = |extra: Value| err_path(e.map(with_mounts(extra)));
    assert_eq!(m(json!([{"destination": "/x", "type": "ext4", "source": "/dev/sda1"}])), "mounts[7].type");
    assert_eq!(m(json!([{"destination": "/x/../y", "type": "tmpfs", "source": "tmpfs"}])), "mounts[7].destination");
    assert_eq!(m(json!([{"destination": "x", "type": "tmpfs", "source": "tmpfs"}])), "mounts[7].destination");
    assert_eq!(m(json!([{"destination": "/", "type": "tmpfs", "source": "tmpfs"}])), "mounts[7].destination");
    assert_eq!(m(json!([{"destination": "/x", "type": "tmpfs", "options": ["idmap"]}])), "mounts[7].options");
    assert_eq!(m(json!([{"destination": "/x", "type": "bind", "options": ["rbind"]}])), "mounts[7].source");
}

#[test]
fn user_namespace_and_id_maps() {
    let e = Env::new();
    // No user namespace: the backend's default (here false).
    let mut o = e.opts();
    o.unprivileged = false;
    assert_eq!(e.map_with(base(), &o).unwrap().option("unprivileged"), Some("0"));
    let mut v = base();
    v["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    assert_eq!(e.map_with(v.clone(), &o).unwrap().option("unprivileged"), Some("1"));
    // Proxmox's default map: nothing raw.
    v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let out = e.map(v.clone()).unwrap();
    assert_eq!((out.raw_lxc.len(), out.warnings.len()), (0, 0));
    v["linux"]["uidMappings"] =
        json!([{"containerID": 0, "hostID": 200000, "size": 1000}, {"containerID": 1000, "hostID": 1000, "size": 1}]);
    let out = e.map(v.clone()).unwrap();
    assert_eq!(
        out.raw_lxc,
        kv(&[("lxc.idmap", "u 0 200000 1000"), ("lxc.idmap", "u 1000 1000 1"), ("lxc.idmap", "g 0 100000 65536")])
    );
    assert_eq!(out.warnings.len(), 1);
    v["linux"]["gidMappings"] = json!([]);
    assert_eq!(err_path(e.map(v.clone())), "linux.gidMappings");
    // Maps without a user namespace.
    let mut v = base();
    v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    assert_eq!(err_path(e.map(v)), "linux.uidMappings");
}

#[test]
fn namespaces() {
    let e = Env::new();
    let with_ns = |nss: Value| {
        let mut v = base();
        v["linux"]["namespaces"] = nss;
        v
    };
    // Joining a network namespace (pods): shared, no Proxmox network; privileged only.
    let mut privileged = e.opts();
    privileged.unprivileged = false;
    let v = with_ns(
        json!([{"type": "pid"}, {"type": "network", "path": "/proc/self/ns/net"}, {"type": "ipc", "path": "/proc/self/ns/ipc"}, {"type": "uts"}, {"type": "mount"}]),
    );
    let out = e.map_with(v.clone(), &privileged).unwrap();
    // Not raw lines: Proxmox VE drops lxc.namespace.share.* from a container config.
    assert!(out.raw_lxc.iter().all(|(k, _)| !k.starts_with("lxc.namespace")), "{:?}", out.raw_lxc);
    assert_eq!(
        out.namespace_shares,
        vec![
            ("lxc.namespace.share.net".to_string(), PathBuf::from("/proc/self/ns/net")),
            ("lxc.namespace.share.ipc".to_string(), PathBuf::from("/proc/self/ns/ipc"))
        ]
    );
    assert_eq!(out.option("net0"), None);
    assert_eq!(out.option("unprivileged"), Some("0"));
    let er = e.map(v.clone()).unwrap_err();
    assert_eq!(er.path, "linux.namespaces[1].path");
    assert!(er.hint.contains("\"unprivileged\" to false"), "{er}");
    let mut userns = v.clone();
    userns["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    assert!(e.map_with(userns, &privileged).unwrap_err().hint.contains("oci backend"));
    // A path of another namespace type is refused (LXC would join it unchecked: a cgroup
    // namespace given as the uts one left the container in the host's UTS namespace, and
    // its hostname renamed the host).
    let wrong = with_ns(json!([{"type": "pid"}, {"type": "uts", "path": "/proc/self/ns/cgroup"}, {"type": "mount"}]));
    let er = e.map_with(wrong, &privileged).unwrap_err();
    assert_eq!(er.path, "linux.namespaces[1].path");
    assert!(er.problem.contains("is a cgroup namespace, not a uts one"), "{er}");
    assert!(err_path(e.map_with(
        with_ns(json!([{"type": "pid"}, {"type": "ipc", "path": "/etc/hostname"}, {"type": "mount"}])),
        &privileged
    ))
    .ends_with(".path"));
    // A joined UTS namespace is not the container's: no hostname (runc's rule).
    let mut joined_uts = with_ns(json!([
        {"type": "pid"}, {"type": "uts", "path": "/proc/self/ns/uts"}, {"type": "mount"}, {"type": "ipc"}, {"type": "network"}
    ]));
    joined_uts["hostname"] = json!("renamed");
    let er = e.map_with(joined_uts.clone(), &privileged).unwrap_err();
    assert_eq!(er.path, "hostname");
    joined_uts.as_object_mut().unwrap().remove("hostname");
    if let Err(er) = e.map_with(joined_uts, &privileged) {
        panic!("joined uts without hostname: {er}");
    }
    // A pid namespace path is refused by name: nexcage-init must be pid 1 of its own.
    let pid = with_ns(
        json!([{"type": "pid", "path": "/proc/self/ns/pid"}, {"type": "uts"}, {"type": "mount"}, {"type": "ipc"}]),
    );
    let er = e.map_with(pid, &privileged).unwrap_err();
    assert_eq!(er.path, "linux.namespaces[0].path");
    assert!(er.problem.contains("pid namespace is not supported"), "{er}");
    let mut annotated = v.clone();
    annotated["annotations"] = json!({"nexcage.proxmox.net1": "name=eth1,bridge=vmbr1"});
    assert_eq!(err_path(e.map_with(annotated, &privileged)), "annotations[\"nexcage.proxmox.net1\"]");
    // No network namespace: the host's network (privileged only).
    let v = with_ns(json!([{"type": "pid"}, {"type": "uts"}, {"type": "mount"}, {"type": "ipc"}]));
    let out = e.map_with(v.clone(), &privileged).unwrap();
    assert_eq!(out.raw_lxc, kv(&[("lxc.net.0.type", "none")]));
    assert_eq!(out.option("net0"), None);
    assert_eq!(err_path(e.map(v)), "linux.namespaces");
    // No ipc namespace.
    let er =
        e.map(with_ns(json!([{"type": "pid"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}]))).unwrap_err();
    assert!(er.problem.contains("ipc"), "{er}");
    // Refused.
    let er = e.map(with_ns(json!([{"type": "uts"}, {"type": "mount"}, {"type": "network"}]))).unwrap_err();
    assert_eq!(er.path, "linux.namespaces");
    assert!(er.problem.contains("pid"), "{er}");
    assert_eq!(err_path(e.map(with_ns(json!([{"type": "pid"}, {"type": "pid"}])))), "linux.namespaces[1]");
    assert_eq!(
        err_path(
            e.map(with_ns(json!([{"type": "pid"}, {"type": "uts"}, {"type": "mount", "path": "/proc/self/ns/mnt"}])))
        ),
        "linux.namespaces[2].path"
    );
    assert_eq!(
        err_path(e.map(with_ns(
            json!([{"type": "pid"}, {"type": "uts"}, {"type": "mount"}, {"type": "network", "path": "/nonexistent/ns"}])
        ))),
        "linux.namespaces[3].path"
    );
    // A new time namespace without offsets is fine; offsets are refused.
    let mut v = with_ns(
        json!([{"type": "pid"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}, {"type": "ipc"}, {"type": "time"}]),
    );
    assert!(e.map(v.clone()).is_ok());
    v["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 10, "nanosecs": 0}});
    assert_eq!(err_path(e.map(v)), "linux.timeOffsets");
}

#[test]
fn sysctl() {
    let e = Env::new();
    let mut v = base();
    v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "net/core/somaxconn": "1024"});
    assert_eq!(e.map(v.clone()).unwrap().sysctls, kv(&[("net.ipv4.ip_forward", "1"), ("net.core.somaxconn", "1024")]));
    // IPC keys are namespaced; others would change the host (runc's rule).
    v["linux"]["sysctl"] = json!({"kernel.shmmax": "1", "fs.mqueue.msg_max": "20"});
    assert_eq!(e.map(v.clone()).unwrap().sysctls, kv(&[("fs.mqueue.msg_max", "20"), ("kernel.shmmax", "1")]));
    v["linux"]["sysctl"] = json!({"vm.swappiness": "1"});
    let m = e.map(v.clone()).unwrap_err();
    assert_eq!(m.path, "linux.sysctl[\"vm.swappiness\"]");
    assert!(m.problem.contains("not a namespaced sysctl"), "{m}");
    v["linux"]["sysctl"] = json!({"kernel.x": "1\n2"});
    assert_eq!(err_path(e.map(v.clone())), "linux.sysctl[\"kernel.x\"]");
    v["linux"]["sysctl"] = json!({"a b": "1"});
    assert_eq!(err_path(e.map(v.clone())), "linux.sysctl[\"a b\"]");

    // Docker's "every group may ping": within the groups an unprivileged container has
    // (Proxmox's map: 0-65535), as the kernel takes nothing else there.
    v["linux"]["sysctl"] = json!({"net.ipv4.ping_group_range": "0 2147483647"});
    assert_eq!(e.map(v.clone()).unwrap().sysctls, kv(&[("net.ipv4.ping_group_range", "0 65535")]));
    let mut privileged = e.opts();
    privileged.unprivileged = false;
    assert_eq!(
        e.map_with(v.clone(), &privileged).unwrap().sysctls,
        kv(&[("net.ipv4.ping_group_range", "0 2147483647")])
    );
    v["linux"]["sysctl"] = json!({"net.ipv4.ping_group_range": "70000 80000"});
    let m = e.map(v.clone()).unwrap_err();
    assert!(m.problem.contains("past the container's last group (65535)"), "{m}");
    v["linux"]["sysctl"] = json!({"net.ipv4.ping_group_range": "all"});
    assert!(e.map(v).unwrap_err().problem.contains("not two group ids"));
}

#[test]
fn devices() {
    let e = Env::new();
    let mut v = base();
    // Standard devices are LXC's.
    v["linux"]["devices"] =
        json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 438, "uid": 0, "gid": 0}]);
    assert_eq!(e.map(v.clone()).unwrap().option("dev0"), None);
    // Wrong numbers for the host node: refused.
    v["linux"]["devices"] = json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 5}]);
    let er = e.map(v.clone()).unwrap_err();
    assert_eq!(er.path, "linux.devices[0]");
    assert!(er.hint.contains("devN"), "{er}");
    v["linux"]["devices"] = json!([{"path": "/dev/nonexistent-nexcage", "type": "c", "major": 1, "minor": 5}]);
    assert_eq!(err_path(e.map(v.clone())), "linux.devices[0]");
    v["linux"]["devices"] = json!([{"path": "/etc/passwd", "type": "c", "major": 1, "minor": 5}]);
    assert_eq!(err_path(e.map(v.clone())), "linux.devices[0].path");
    v["linux"]["devices"] = json!([{"path": "/dev/fifo", "type": "p", "major": 0, "minor": 0}]);
    assert_eq!(err_path(e.map(v.clone())), "linux.devices[0].type");
    // A real non-standard character device of this host, if there is one.
    let found = std::fs::read_dir("/dev").unwrap().flatten().find_map(|d| {
        let meta = std::fs::metadata(d.path()).ok()?;
        let p = d.path().to_str()?.to_string();
        (meta.file_type().is_char_device() && !STANDARD_DEVICES.iter().any(|(s, _, _)| *s == p) && propstr_safe(&p))
            .then(|| (p, dev_major_minor(meta.rdev())))
    });
    if let Some((p, (ma, mi))) = found {
        v["linux"]["devices"] =
            json!([{"path": p, "type": "c", "major": ma, "minor": mi, "fileMode": 432, "uid": 0, "gid": 5}]);
        assert_eq!(e.map(v).unwrap().option("dev0"), Some(format!("{p},mode=0660,uid=0,gid=5").as_str()));
    }
}

#[test]
fn annotations() {
    let e = Env::new();
    let ann = |a: Value| {
        let mut v = base();
        v["annotations"] = a;
        e.map(v)
    };
    let out = ann(json!({
        "nexcage.proxmox.storage": "local-lvm:8",
        "nexcage.proxmox.tags": "Web;db, nexcage bad!tag",
        "nexcage.proxmox.onboot": "yes",
        "nexcage.proxmox.features": "nesting=1,keyctl=1,mount=nfs;cifs",
        "nexcage.proxmox.cores": "2",
        "nexcage.proxmox.net0": "name=eth0,bridge=vmbr1,ip=10.0.0.5/24,gw=10.0.0.1",
        "nexcage.proxmox.net3": "name=eth3,bridge=vmbr0",
        "io.kubernetes.cri.container-type": "container",
        "nexcage.backend": "lxc"
    }))
    .unwrap();
    assert_eq!(
        out.create,
        kv(&[
            ("hostname", "web"),
            ("ostype", "unmanaged"),
            ("unprivileged", "1"),
            ("memory", "2048"),
            ("swap", "1024"),
            ("cores", "2"),
            ("rootfs", "local-lvm:8"),
            ("net0", "name=eth0,bridge=vmbr1,ip=10.0.0.5/24,gw=10.0.0.1,host-managed=1"),
            ("net3", "name=eth3,bridge=vmbr0,host-managed=1"),
            ("features", "nesting=1,keyctl=1,mount=nfs;cifs"),
            ("onboot", "1"),
            ("tags", "db;nexcage;web"),
            ("description", "descr"),
        ])
    );
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert_eq!(ann(json!({"nexcage.proxmox.net0": "none"})).unwrap().option("net0"), None);
    for (k, v) in [
        ("storage", "Local"),
        ("storage", "local:x"),
        ("onboot", "maybe"),
        ("features", "nesting=1,evil=1"),
        ("features", "nesting=1,,"),
        ("cores", "0"),
        ("net0", "bridge=vmbr0"),
        ("net0", "name=eth0 ,x=1"),
        ("net32", "name=eth0"),
        ("net01", "name=eth0"),
        ("typo", "1"),
    ] {
        let key = format!("nexcage.proxmox.{k}");
        assert_eq!(err_path(ann(json!({ key.clone(): v }))), format!("annotations[\"{key}\"]"), "{k}={v}");
    }
    // No default network configured: none unless annotated.
    let mut o = e.opts();
    o.network = None;
    assert_eq!(e.map_with(base(), &o).unwrap().option("net0"), None);
}

#[test]
fn rootfs_in_place_unless_a_storage_is_named() {
    let e = Env::new();
    let mut o = e.opts();
    o.rootfs_mode = RootfsMode::InPlace;
    let root = e.p("bundle/rootfs").canonicalize().unwrap().display().to_string();
    let mut v = base();
    v["root"]["readonly"] = json!(true);
    let out = e.map_with(v, &o).unwrap();
    assert_eq!(out.option("rootfs"), Some(format!("{root},ro=1").as_str()));
    assert_eq!(out.option("arch"), Some(super::super::root::host_arch()));
    assert_eq!(out.root_in_place.as_ref().map(|r| r.readonly), Some(true));
    assert_eq!(copy_rootfs(&o, &e.p("bundle/rootfs"), true).unwrap(), "local:0,ro=1");
    // A named storage means a Proxmox volume: a copy.
    let mut v = base();
    v["annotations"] = json!({"nexcage.proxmox.storage": "local:2"});
    let out = e.map_with(v, &o).unwrap();
    assert_eq!(out.option("rootfs"), Some("local:2"));
    assert!(out.root_in_place.is_none() && out.option("arch").is_none());
    // A path a property string cannot hold: a copy, said as a warning.
    std::fs::create_dir_all(e.p("bundle/a,b")).unwrap();
    let mut v = base();
    v["root"]["path"] = json!("a,b");
    let out = e.map_with(v, &o).unwrap();
    assert_eq!(out.option("rootfs"), Some("local:0"));
    assert!(out.warnings.iter().any(|w| w.contains("runs on a copy")), "{:?}", out.warnings);
}

#[test]
fn root_and_platform_fields() {
    let e = Env::new();
    let mut v = base();
    v["root"]["readonly"] = json!(true);
    assert_eq!(e.map(v).unwrap().option("rootfs"), Some("local:0,ro=1"));
    let mut v = base();
    v.as_object_mut().unwrap().remove("root");
    assert_eq!(err_path(e.map(v)), "root");
    let mut v = base();
    v["windows"] = json!({"layerFolders": []});
    assert_eq!(err_path(e.map(v)), "windows");
}

#[test]
fn other_linux_fields() {
    let e = Env::new();
    let f = |field: &str, val: Value| {
        let mut v = base();
        v["linux"][field] = val;
        e.map(v)
    };
    assert_eq!(err_path(f("intelRdt", json!({"closID": "x"}))), "linux.intelRdt");
    assert_eq!(err_path(f("personality", json!({"domain": "LINUX32"}))), "linux.personality");
    assert!(f("personality", json!({"domain": "LINUX"})).is_ok());
    assert_eq!(err_path(f("rootfsPropagation", json!("rshared"))), "linux.rootfsPropagation");
    assert!(f("rootfsPropagation", json!("slave")).is_ok());
    assert_eq!(err_path(f("memoryPolicy", json!({"mode": "MPOL_BIND", "nodes": "0"}))), "linux.memoryPolicy");
    assert_eq!(err_path(f("netDevices", json!({"eth1": {}}))), "linux.netDevices");
    assert_eq!(
        err_path(f("seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}))),
        "linux.seccomp.listenerPath"
    );
    let out = f("mountLabel", json!("system_u:object_r:container_file_t:s0")).unwrap();
    assert_eq!(out.warnings.len(), 1);
}

#[test]
fn description_limit() {
    let e = Env::new();
    let mut o = e.opts();
    o.description = "x".repeat(8193);
    assert_eq!(err_path(e.map_with(base(), &o)), "(description)");
}

#[test]
fn load_and_map_bundle() {
    let e = Env::new();
    let mut v = base();
    v["futureField"] = json!(1);
    v["linux"]["newThing"] = json!({});
    let doc = |v: &Value| crate::bundle::Document::parse(serde_json::to_vec(v).unwrap()).unwrap();
    let (spec, out) = map_bundle(&doc(&v), &e.opts()).unwrap();
    assert_eq!(spec.hostname().as_deref(), Some("web"));
    assert_eq!(out.option("hostname"), Some("web"));
    assert_eq!(out.warnings.len(), 2, "{:?}", out.warnings);
    assert!(out.warnings[0].starts_with("futureField: unknown property"));
    // Parse errors name the JSON path.
    v["linux"]["resources"]["memory"] = json!({"limit": "abc"});
    let er = parse_spec(&doc(&v)).unwrap_err();
    assert_eq!(er.path, "linux.resources.memory.limit");
    assert!(er.problem.starts_with("invalid type: string \"abc\""), "{er}");
    // Where, too (as a parse of the text says it).
    assert!(er.problem.contains(" at line 1 column "), "{er}");
    // A document that is not an object: no path, the problem says what was expected.
    let er = parse_spec(&doc(&json!("x"))).unwrap_err();
    assert_eq!(er.path, "");
    assert!(er.problem.contains("invalid type"), "{er}");
}

#[test]
fn helpers() {
    assert_eq!(format_cpulimit(100_000, 100_000), "1");
    assert_eq!(format_cpulimit(250_000, 100_000), "2.5");
    assert_eq!(format_cpulimit(333_333, 100_000), "3.34");
    assert_eq!(fstab_escape(b"a b\tc\\d\ne"), "a\\040b\\011c\\134d\\012e");
    assert_eq!(clean_abs(Path::new("/a/./b/")), Some(PathBuf::from("/a/b")));
    assert_eq!(clean_abs(Path::new("/a/../b")), None);
    assert_eq!(blkio_to_io_weight(10), 1);
    assert_eq!(blkio_to_io_weight(1000), 10000);
    assert_eq!(dev_major_minor(0x0103), (1, 3));
    assert_eq!(sanitize_tag("Web"), Some("web".into()));
    assert_eq!(sanitize_tag("-x"), None);
    assert!(valid_dns_name("a.b-c"));
    assert!(!valid_dns_name(""));
}

/// End to end through the pct emulator (real LXC): map a busybox bundle, allocate a
/// VMID and `pct create`, append the raw lines under the lock, check `pct config`,
/// rebuild the container list from the PVE configs, start it and look inside, destroy.
/// Runs only as root with `NEXCAGE_TEST_PCT=<pct emulator binary or hack/pct>` set
/// (and the emulator daemon running, see docs/pct-emulator.md).
#[test]
fn emulator_create_start_destroy() {
    use crate::backend::lxc::{pct, pveconf, template::TemplateCache, vmid};
    let Some(pct_bin) = std::env::var_os("NEXCAGE_TEST_PCT") else {
        eprintln!("skipped: set NEXCAGE_TEST_PCT to run against the pct emulator");
        return;
    };
    assert_eq!(unsafe { libc::geteuid() }, 0, "the pct emulator needs root");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::Builder::new().prefix("nexcage-map-").tempdir().unwrap();
    let root = tmp.path().join("pve");
    let bundle = tmp.path().join("bundle");
    let host = tmp.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("hello"), "from host\n").unwrap();
    let st =
        std::process::Command::new(repo.join("hack/make-bundle")).arg(&bundle).args(["--", "true"]).status().unwrap();
    assert!(st.success());
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    cfg["linux"]["resources"]["memory"] = json!({"limit": 64 * MIB});
    cfg["linux"]["resources"]["pids"] = json!({"limit": 33});
    cfg["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    cfg["mounts"].as_array_mut().unwrap().extend([
        json!({"destination": "/data", "type": "bind", "source": host, "options": ["rbind", "ro"]}),
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=8m"]}),
    ]);
    std::fs::write(bundle.join("config.json"), serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();

    let opts = MapOptions {
        bundle: bundle.clone(),
        storage: None,
        storages: test_storages(),
        unprivileged: true,
        network: None,
        allowed_host_mounts: vec![host.clone()],
        engine_dirs: Vec::new(),
        container_id: "map-test".into(),
        description: pveconf::describe("map-test", &bundle),
        host: HostInfo::probe(),
        rootfs_mode: RootfsMode::Copy,
    };
    let doc = crate::bundle::Document::parse(serde_json::to_vec(&cfg).unwrap()).unwrap();
    let (_spec, mapped) = map_bundle(&doc, &opts).unwrap();
    assert_eq!(mapped.option("memory"), Some("64"));
    assert!(mapped.option("mp0").is_some_and(|m| m.ends_with(",mp=/data,ro=1")), "{:?}", mapped.create);

    let cache =
        TemplateCache::new(root.join("var/lib/vz/template/cache"), tmp.path().join("index")).with_progress(false);
    let template = cache.ensure(&bundle.join("rootfs")).unwrap();
    let pct = pct::Pct::new(&pct_bin).env("PCT_EMULATOR_ROOT", &root);
    let id =
        vmid::allocate_and_create([9100, 9199], &root, |v| pct.create(v, &template.volid("local"), &mapped.create))
            .unwrap();
    let mut raw = mapped.raw_lxc.clone();
    raw.push(("lxc.init.cmd".into(), "/bin/sleep 60".into()));
    pveconf::append_raw_lxc(&root, id, &raw).unwrap();

    let conf = pct.config(id).unwrap();
    assert_eq!(conf.get("memory"), Some("64"));
    assert_eq!(conf.get("tags"), Some("nexcage"));
    assert_eq!(conf.raw_lxc(), raw);
    let d = pveconf::parse_description(&conf.description()).unwrap();
    assert_eq!((d.oci_id.as_str(), d.bundle.as_path()), ("map-test", bundle.as_path()));
    let tagged = pveconf::nexcage_containers(&root).unwrap();
    assert_eq!(tagged.iter().map(|t| (t.vmid, t.oci_id.as_str())).collect::<Vec<_>>(), vec![(id, "map-test")]);
    assert!(pct.list().unwrap().iter().any(|r| r.vmid == id && r.status == pct::Status::Stopped));

    let started = pct.start(id);
    let inside = |args: &[&str]| {
        let out = std::process::Command::new(&pct_bin)
            .env("PCT_EMULATOR_ROOT", &root)
            .args(["exec", &id.to_string(), "--"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let seen = started.as_ref().ok().map(|_| {
        (
            pct.status_verbose(id).unwrap(),
            inside(&["cat", "/data/hello"]),
            inside(&["sh", "-c", "touch /data/x 2>/dev/null && echo rw || echo ro"]),
            inside(&["cat", "/proc/sys/net/ipv4/ip_forward"]),
            inside(&["sh", "-c", "grep ' /scratch ' /proc/mounts | cut -d' ' -f3"]),
        )
    });
    if started.is_ok() {
        let _ = pct.stop(id);
    }
    pct.destroy(id, true, true).unwrap();
    assert!(!pveconf::conf_path(&root, id).exists());
    let started_err = started.err().map(|e| e.to_string());
    let (vs, hello, rw, fwd, scratch) = seen.unwrap_or_else(|| panic!("pct start failed: {started_err:?}"));
    assert_eq!(vs.status, pct::Status::Running);
    assert!(vs.pid.is_some());
    assert_eq!(hello, "from host");
    assert_eq!(rw, "ro");
    assert_eq!(fwd, "1");
    assert_eq!(scratch, "tmpfs");
}

/// Proxmox NICs (docs/networking.md): host-managed unless the string says otherwise, no
/// default NIC when a hook networks the namespace, none in a shared one; on a Proxmox VE
/// without host-managed NICs, static addresses become LXC's own lines and DHCP is refused.
#[test]
fn networks_are_host_managed_with_a_pve8_fallback() {
    let e = Env::new();
    let ann = |a: Value| {
        let mut v = base();
        v["annotations"] = a;
        e.map(v)
    };
    let out = ann(json!({"nexcage.proxmox.net1": "name=eth1,bridge=vmbr1,host-managed=0"})).unwrap();
    assert_eq!(out.option("net1"), Some("name=eth1,bridge=vmbr1,host-managed=0"));
    assert_eq!(out.host_managed_nets, vec![(0, "(network)".to_string())]);

    // SLAAC cannot be host-managed (PVE 9 would fail at pct start): refused at create.
    let p = err_path(ann(json!({"nexcage.proxmox.net0": "name=eth0,bridge=vmbr0,ip6=auto"})));
    assert_eq!(p, "annotations[\"nexcage.proxmox.net0\"]");

    // Docker networks a new namespace from its prestart hook: no default NIC beside it.
    let mut v = base();
    v["hooks"] = json!({"prestart": [{"path": "/usr/bin/dockerd", "args": ["libnetwork-setkey", "x"]}]});
    let out = e.map(v.clone()).unwrap();
    assert_eq!(out.option("net0"), None);
    assert!(out.loopback_up && out.host_managed_nets.is_empty());
    v["annotations"] = json!({"nexcage.proxmox.net0": "name=eth0,bridge=vmbr0,ip=dhcp"});
    assert_eq!(e.map(v).unwrap().option("net0"), Some("name=eth0,bridge=vmbr0,ip=dhcp,host-managed=1"));

    // A joined network namespace: no NIC and lo is not ours to touch.
    let mut v = base();
    v["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "network", "path": "/proc/self/ns/net"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]);
    let mut o = e.opts();
    o.unprivileged = false;
    let out = e.map_with(v, &o).unwrap();
    assert!(!out.loopback_up && out.option("net0").is_none());

    // Proxmox VE 8: static addresses as lxc.net lines, the NIC's string without the key.
    let mut out = ann(json!({
        "nexcage.proxmox.net0": "name=eth0,bridge=vmbr1,ip=10.0.0.5/24,gw=10.0.0.1,ip6=fd00::5/64,gw6=fd00::1",
        "nexcage.proxmox.net2": "name=eth2,bridge=vmbr2,ip=manual,link_down=1",
    }))
    .unwrap();
    let before = out.raw_lxc.len();
    out.without_host_managed().unwrap();
    assert_eq!(
        out.option("net0"),
        Some("name=eth0,bridge=vmbr1,ip=10.0.0.5/24,gw=10.0.0.1,ip6=fd00::5/64,gw6=fd00::1")
    );
    assert_eq!(out.option("net2"), Some("name=eth2,bridge=vmbr2,ip=manual,link_down=1"));
    assert_eq!(
        out.raw_lxc[before..],
        kv(&[
            ("lxc.net.0.ipv4.address", "10.0.0.5/24"),
            ("lxc.net.0.ipv6.address", "fd00::5/64"),
            ("lxc.net.0.ipv4.gateway", "10.0.0.1"),
            ("lxc.net.0.ipv6.gateway", "fd00::1"),
            ("lxc.net.0.flags", "up"),
        ])
    );
    assert!(out.host_managed_nets.is_empty());
    // DHCP needs PVE 9's host-managed networking: refused when annotated, naming where;
    // the backend's default NIC (every container's) stays unconfigured instead.
    let mut out = ann(json!({"nexcage.proxmox.net1": "name=eth1,bridge=vmbr0,ip=dhcp"})).unwrap();
    let er = out.without_host_managed().unwrap_err();
    assert_eq!(er.path, "annotations[\"nexcage.proxmox.net1\"]");
    assert!(er.to_string().contains("net1: ip=dhcp"), "{er}");
    let mut out = e.map(base()).unwrap();
    let before = out.raw_lxc.len();
    out.without_host_managed().unwrap();
    assert_eq!(out.option("net0"), Some(NET));
    assert_eq!(out.raw_lxc.len(), before);
}
