//! A Kubernetes pod through containerd's CRI plugin, with nexcage as the runtime handler
//! `nexcage` (docs/engines.md, "config.toml runtime handler (CRI)" and "Kubernetes"),
//! driven over the CRI API (v1) as a kubelet would: a small CRI client (k8s-cri, tonic)
//! on containerd's socket, since Debian has no crictl.
//!
//! Each test runs one pod: the sandbox ("pause") on crun, an app container on
//! proxmox-lxc (privileged: see [`nexcage_config`]; the pct emulator, or Proxmox's own pct
//! under hack/test-pve) in the pod's network
//! namespace, routed either by `nexcage.backend` annotations or, as a Kubernetes user
//! can, by the configuration's rules on a pod annotation. The tests assert what a
//! Kubernetes user sees: states, the pod IP on the app's `eth0` and its port reachable
//! from the host, the container's log file, exec, stop, removal, and that nothing is left
//! behind (nexcage records, Proxmox configs, the pod's netns and cgroups).
//!
//! Where the setup differs from a host's: `Root` (above); the pods' cgroup parent is a
//! private one; `restrict_oom_score_adj` is on where this process lacks CAP_SYS_RESOURCE
//! (CI sandboxes), since the CRI plugin gives a sandbox oom_score_adj -998; the sandbox
//! image is busybox (`hack/engine-images`), not registry.k8s.io/pause.
//!
//! Isolation: containerd runs with its own root, state, socket, runc-shim root (`Root`
//! option), CNI configuration (a bridge, subnet and IPAM data dir of its own) and images
//! (built offline by `hack/engine-images`, imported with `ctr -n k8s.io images import`);
//! it is stopped in `Drop`, also when the test panics, after removing every pod left.
//! The nexcage configuration is a private file named by `NEXCAGE_CONFIG` in containerd's
//! environment. Every CRI call and every command has a time limit.

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::future::Future;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

use common::emu::{pct_world, real_pct, PctWorld};
use common::engine::{
    cmd_bound, containerd_config, http_get, mounts_under, recorded_backend, stop_grace, try_run, unmount_under,
    wait_bound,
};
use common::{has_cap_sys_resource, nexcage_bin, repo, require_root, text};

/// The app image (busybox-static rootfs) and the sandbox image (same rootfs, a command that
/// only waits), both built by hack/engine-images.
const IMAGE: &str = "localhost/nexcage-busybox:latest";
const PAUSE_IMAGE: &str = "localhost/nexcage-pause:latest";
/// containerd's namespace for everything the CRI plugin does.
const K8S_NS: &str = "k8s.io";
/// The runtime handler name (RuntimeClass `handler`).
const HANDLER: &str = "nexcage";
/// VMIDs of these tests on real pct (hack/test-pve), apart from the other suites'.
const REAL_VMIDS: [u32; 2] = [9690, 9699];

/// What is this world's own on the host, named after the process and the world's number
/// `n` in it, so that two runs at once do not meet: the CNI bridge and /24, the pods'
/// cgroup parent (a kubelet gives each pod one, `/kubepods/...`; without one the CRI
/// plugin would use `/k8s.io`, shared with any other containerd on the host), and the
/// VMIDs (LXC's cgroups are named after them).
struct Own {
    bridge: String,
    subnet_prefix: String,
    cgroup_parent: String,
    vmids: [u32; 2],
}

fn own() -> Own {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pid = std::process::id();
    // The emulator's VMIDs are this world's own; real pct has one range for these tests,
    // which run one at a time.
    let first = 60000 + (pid % 1000) * 20 + (n % 4) * 5;
    let vmids = if real_pct() { REAL_VMIDS } else { [first, first + 4] };
    Own {
        bridge: format!("nxcri{}-{n}", pid % 100_000),
        subnet_prefix: format!("10.213.{}", (pid * 4 + n) % 250 + 1),
        cgroup_parent: format!("/nexcage-cri-{pid}-{n}"),
        vmids,
    }
}

/// The CRI tests run one at a time (as tests/engines.rs does: containerd 1.6 under load
/// on a 2-core host loses output).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The directories of cgroup `path` in every hierarchy (v1 and hybrid: one per
/// controller; v2: one).
fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let rel = path.trim_start_matches('/');
    if base.join("cgroup.controllers").exists() {
        return vec![base.join(rel)];
    }
    let hierarchies =
        std::fs::read_dir(base).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_else(|_| vec![]);
    hierarchies.into_iter().filter(|h| h.is_dir() && !h.is_symlink()).map(|h| h.join(rel)).collect()
}

/// Cgroups left below `path` (any hierarchy).
fn cgroup_children(path: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in cgroup_dirs(path) {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        found.extend(entries.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()));
    }
    found
}

/// The nexcage configuration: default crun; `lxc-privileged`, the pct emulator with a
/// private PVE root and privileged containers (`"unprivileged": false`). A pod member on
/// proxmox-lxc must be privileged: it has to join the pod's network and IPC namespaces,
/// which the sandbox's pause process holds, and an unprivileged container cannot enter a
/// namespace owned by the host's user namespace: nexcage refuses such a bundle at create
/// (`linux.namespaces[1].path: an unprivileged container cannot join the ipc namespace
/// /proc/<pause pid>/ns/ipc ...`, docs/networking.md). containerd's own directory (`dir`: root and state, where the CRI
/// plugin keeps each sandbox's hosts, resolv.conf, hostname and shm) is `engine_dirs`.
fn nexcage_config(dir: &Path, own: &Own) -> serde_json::Value {
    let lxc = match pct_world() {
        PctWorld::Emulator => serde_json::json!({
            "kind": "proxmox-lxc", "pct": repo().join("hack/pct"), "pve_root": dir.join("pve"),
            "network": null, "unprivileged": false, "vmid_range": own.vmids,
            "engine_dirs": [dir], "init": common::emu::tools().init,
        }),
        // Proxmox's own pct (hack/test-pve): the host's /etc/pve, VMIDs of their own.
        PctWorld::Real { pct, storage } => serde_json::json!({
            "kind": "proxmox-lxc", "pct": pct, "pve_root": "/", "storage": storage,
            "template_storage": "local", "network": null, "unprivileged": false,
            "vmid_range": own.vmids, "engine_dirs": [dir], "init": common::emu::tools().init,
        }),
    };
    serde_json::json!({
        "default_backend": "crun",
        "backends": {
            "crun": { "kind": "oci", "path": "crun" },
            "lxc-privileged": lxc,
        },
        // Routing as a Kubernetes user can ask for it, with pod annotations only (kubelet
        // sets no container annotations of the user's): sandboxes stay on crun, the
        // containers of a pod annotated `nexcage.proxmox: "yes"` go to lxc-privileged.
        "routes": [
            { "name": "sandboxes on crun",
              "annotation": { "io.kubernetes.cri.container-type": "sandbox" }, "backend": "crun" },
            { "name": "containers of pods annotated nexcage.proxmox=yes on Proxmox",
              "annotation": { "io.kubernetes.cri.container-type": "container", "nexcage.proxmox": "yes" },
              "backend": "lxc-privileged" },
        ],
    })
}

/// containerd's config.toml: the `nexcage` runtime handler as docs/engines.md gives it
/// (common::engine), with the runc shim's `Root` in the temp dir (nexcage's records are
/// under `<Root>/k8s.io`), the sandbox image, and a CNI configuration directory of our
/// own. `restrict_oom_score_adj` where this process lacks CAP_SYS_RESOURCE: the CRI plugin
/// gives a sandbox -998 and the runtime's write then fails with EACCES.
fn cri_containerd_config(dir: &Path) -> String {
    let cri = format!(
        r#"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = {restrict_oom}

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{d}/cni"
  max_conf_num = 1
"#,
        d = dir.display(),
        pause = PAUSE_IMAGE,
        restrict_oom = !has_cap_sys_resource()
    );
    containerd_config(dir, Some(&dir.join("runc-root")), &cri)
}

/// The CNI network list: a bridge (the host is its gateway, no masquerading) with
/// host-local addresses kept in the temp dir.
fn cni_config(dir: &Path, net: &Own) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "nexcage-cri-test",
        "plugins": [{
            "type": "bridge", "bridge": net.bridge, "isGateway": true, "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{ "subnet": format!("{}.0/24", net.subnet_prefix) }]],
                "dataDir": dir.join("cni-ipam"),
            },
        }],
    }))
    .unwrap()
}

/// The images, built once (hack/engine-images) into a directory of this suite's own.
fn images() -> (PathBuf, PathBuf) {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cri-images");
    let st = Command::new(repo().join("hack/engine-images")).arg(&out).arg(IMAGE).arg(PAUSE_IMAGE).status().unwrap();
    assert!(st.success(), "hack/engine-images failed");
    (out.join("image.oci.tar"), out.join("pause.oci.tar"))
}

/// Run a command (bounded, see [`try_run`]); its stdout if it succeeded, else an error
/// naming the command and what it printed.
fn run(cmd: Command, dir: &Path, bound: Duration) -> Result<String, String> {
    let r = try_run(cmd, dir, bound)?;
    if r.code != 0 {
        return Err(r.show());
    }
    Ok(r.stdout)
}

/// Poll `f` until it returns Some (bounded by [`wait_bound`]); `show` says what was seen.
fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>, show: impl Fn() -> String) -> T {
    let deadline = Instant::now() + wait_bound();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {}", show());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A private containerd with the CRI plugin and the `nexcage` handler, and a CRI client.
struct Cri {
    dir: tempfile::TempDir,
    own: Own,
    daemon: Option<Child>,
    rt: tokio::runtime::Runtime,
    runtime: Option<RuntimeServiceClient<Channel>>,
    images: Option<ImageServiceClient<Channel>>,
    /// Network namespaces of pods this test made (unmounted in Drop if still there).
    netns: Vec<PathBuf>,
}

impl Cri {
    fn start() -> Cri {
        require_root();
        let (image, pause) = images();
        let dir = tempfile::Builder::new().prefix("nexcage-cri-").tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let own = own();
        std::fs::create_dir_all(d.join("pve")).unwrap();
        std::fs::create_dir_all(d.join("cni")).unwrap();
        std::fs::write(d.join("nexcage.json"), serde_json::to_vec_pretty(&nexcage_config(&d, &own)).unwrap()).unwrap();
        std::fs::write(d.join("cni/10-nexcage-cri-test.conflist"), cni_config(&d, &own)).unwrap();
        std::fs::write(d.join("config.toml"), cri_containerd_config(&d)).unwrap();
        let log = File::create(d.join("containerd.log")).unwrap();
        // The shim inherits containerd's environment, and nexcage the shim's.
        let mut cmd = Command::new("containerd");
        cmd.arg("--config").arg(d.join("config.toml")).env("NEXCAGE_CONFIG", d.join("nexcage.json"));
        cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).process_group(0);
        let daemon = cmd.spawn().expect("containerd");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut c = Cri { dir, own, daemon: Some(daemon), rt, runtime: None, images: None, netns: Vec::new() };

        // Wait for the socket, then connect the CRI clients to it.
        let deadline = Instant::now() + wait_bound();
        while !c.sock().exists() {
            if let Some(st) = c.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("containerd exited ({st}): {}", c.log());
            }
            assert!(Instant::now() < deadline, "containerd did not create its socket: {}", c.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        let sock = c.sock();
        let channel =
            c.rt.block_on(async {
                let endpoint = Endpoint::try_from("http://[::]").unwrap();
                let connect = endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
                    let sock = sock.clone();
                    async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(sock).await?)) }
                }));
                tokio::time::timeout(cmd_bound(), connect).await
            })
            .unwrap_or_else(|_| panic!("connecting to containerd's socket timed out: {}", c.log()))
            .unwrap_or_else(|e| panic!("cannot connect to containerd's socket: {e}: {}", c.log()));
        c.runtime = Some(RuntimeServiceClient::new(channel.clone()));
        c.images = Some(ImageServiceClient::new(channel));

        // The CRI plugin answers (it is not there when its configuration is broken).
        let mut rs = c.rs();
        let v = c.call("Version", async move { rs.version(cri::VersionRequest { version: "v1".into() }).await });
        assert_eq!(v.runtime_api_version, "v1", "{v:?}");
        // Runtime and network ready (NetworkReady needs our CNI configuration).
        let conditions = || {
            let mut rs = c.rs();
            let st = c.try_call(rs.status(cri::StatusRequest { verbose: false }))?;
            Ok::<_, String>(st.status.map(|s| s.conditions).unwrap_or_default())
        };
        let status = poll(
            "the CRI runtime and network to be ready",
            || conditions().ok().filter(|conds| conds.iter().all(|k| k.status)),
            || format!("CRI Status: {:?}{}", conditions(), c.log()),
        );
        // containerd 1.7 adds conditions of its own (ContainerdHasNoDeprecationWarnings).
        for needed in ["RuntimeReady", "NetworkReady"] {
            assert!(status.iter().any(|k| k.r#type == needed), "no {needed} condition: {status:?}");
        }

        // Images, from OCI archives (no registry is reachable); the CRI plugin must see them,
        // or RunPodSandbox would try to pull the sandbox image.
        for archive in [&pause, &image] {
            c.ctr(&["images", "import", archive.to_str().unwrap()]);
        }
        for name in [PAUSE_IMAGE, IMAGE] {
            let mut is = c.is();
            poll(
                &format!("the CRI plugin to see image {name}"),
                || {
                    let spec = cri::ImageSpec { image: name.into(), ..Default::default() };
                    let r = c.try_call(is.image_status(cri::ImageStatusRequest { image: Some(spec), verbose: false }));
                    r.ok()?.image
                },
                || c.log(),
            );
        }
        c
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    fn log(&self) -> String {
        format!(
            "\ncontainerd's log:\n{}",
            text(&std::fs::read(self.dir.path().join("containerd.log")).unwrap_or_default())
        )
    }

    /// nexcage's state root: the runc shim passes `--root <Root>/<namespace>`.
    fn nexcage_root(&self) -> PathBuf {
        self.dir.path().join("runc-root").join(K8S_NS)
    }

    /// The Proxmox containers of this world: in the emulator's private root, or (real pct)
    /// in these tests' VMID range.
    fn pve_confs(&self) -> Vec<String> {
        match pct_world() {
            PctWorld::Emulator => common::emu::names(self.dir.path().join("pve/etc/pve/lxc")),
            PctWorld::Real { .. } => common::emu::confs(Path::new("/"), (REAL_VMIDS[0], REAL_VMIDS[1])),
        }
    }

    fn rs(&self) -> RuntimeServiceClient<Channel> {
        self.runtime.clone().unwrap()
    }

    fn is(&self) -> ImageServiceClient<Channel> {
        self.images.clone().unwrap()
    }

    fn ctr(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address").arg(self.sock()).arg("--namespace").arg(K8S_NS).args(args);
        run(cmd, self.dir.path(), cmd_bound()).unwrap_or_else(|e| panic!("{e}{}", self.log()))
    }

    /// One CRI call, bounded by `bound`; Err says what went wrong.
    fn try_call_for<T>(
        &self,
        bound: Duration,
        fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, String> {
        // The timer must be made inside the runtime.
        match self.rt.block_on(async { tokio::time::timeout(bound, fut).await }) {
            Err(_) => Err(format!("no answer within {bound:?}")),
            Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
            Ok(Ok(r)) => Ok(r.into_inner()),
        }
    }

    fn try_call<T>(&self, fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>) -> Result<T, String> {
        self.try_call_for(cmd_bound(), fut)
    }

    /// One CRI call that must succeed (bounded); on failure, containerd's log is shown.
    #[track_caller]
    fn call<T>(&self, what: &str, fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>) -> T {
        self.try_call(fut).unwrap_or_else(|e| panic!("CRI {what}: {e}{}", self.log()))
    }

    fn sandbox_status(&self, id: &str) -> cri::PodSandboxStatusResponse {
        let mut rs = self.rs();
        let req = cri::PodSandboxStatusRequest { pod_sandbox_id: id.into(), verbose: true };
        self.call("PodSandboxStatus", async move { rs.pod_sandbox_status(req).await })
    }

    fn container_status(&self, id: &str) -> cri::ContainerStatus {
        let mut rs = self.rs();
        let req = cri::ContainerStatusRequest { container_id: id.into(), verbose: false };
        self.call("ContainerStatus", async move { rs.container_status(req).await }).status.unwrap()
    }

    fn container_ids(&self) -> Vec<String> {
        let mut rs = self.rs();
        let r = self.call("ListContainers", async move {
            rs.list_containers(cri::ListContainersRequest { filter: None }).await
        });
        r.containers.into_iter().map(|c| c.id).collect()
    }

    fn sandbox_ids(&self) -> Vec<String> {
        let mut rs = self.rs();
        let r = self.call("ListPodSandbox", async move {
            rs.list_pod_sandbox(cri::ListPodSandboxRequest { filter: None }).await
        });
        r.items.into_iter().map(|s| s.id).collect()
    }
}

impl Drop for Cri {
    fn drop(&mut self) {
        let bound = cmd_bound();
        if self.runtime.is_some() && self.daemon.is_some() {
            // What a kubelet does to a pod it deletes: stop and remove its containers, then
            // the sandbox (which tears down its network and netns).
            let mut rs = self.rs();
            let list = self.try_call_for(bound, rs.list_containers(cri::ListContainersRequest { filter: None }));
            for c in list.map(|r| r.containers).unwrap_or_default() {
                let mut rs = self.rs();
                let _ = self.try_call_for(
                    bound,
                    rs.stop_container(cri::StopContainerRequest { container_id: c.id.clone(), timeout: 0 }),
                );
                let _ =
                    self.try_call_for(bound, rs.remove_container(cri::RemoveContainerRequest { container_id: c.id }));
            }
            let list = self.try_call_for(bound, rs.list_pod_sandbox(cri::ListPodSandboxRequest { filter: None }));
            for s in list.map(|r| r.items).unwrap_or_default() {
                let mut rs = self.rs();
                let _ = self.try_call_for(
                    bound,
                    rs.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: s.id.clone() }),
                );
                let _ = self
                    .try_call_for(bound, rs.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: s.id }));
            }
        }
        // Anything nexcage still has (a half-made container), with its Proxmox container.
        let root = self.nexcage_root();
        let nexcage = |args: &[&str]| {
            let mut cmd = Command::new(nexcage_bin());
            cmd.env("NEXCAGE_CONFIG", self.dir.path().join("nexcage.json")).arg("--root").arg(&root).args(args);
            run(cmd, self.dir.path(), bound)
        };
        if let Ok(ids) = nexcage(&["list", "-q"]) {
            for id in ids.lines() {
                let _ = nexcage(&["delete", "--force", id]);
            }
        }
        if let Some(mut daemon) = self.daemon.take() {
            let pid = nix::unistd::Pid::from_raw(daemon.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while daemon.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = nix::sys::signal::killpg(pid, nix::sys::signal::SIGKILL);
                    let _ = daemon.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        for ns in &self.netns {
            let _ = nix::mount::umount2(ns, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(ns);
        }
        unmount_under(self.dir.path());
        let _ = Command::new("ip").args(["link", "delete", &self.own.bridge]).stderr(Stdio::null()).status();
        // The pods' cgroup parent (empty once the pods are gone; rmdir removes only that).
        for dir in cgroup_dirs(&self.own.cgroup_parent) {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The namespaces a kubelet asks for a pod without `hostNetwork`, `hostIPC`, `hostPID` or
/// `shareProcessNamespace`: network and IPC of the pod, a pid namespace per container.
/// (CRI's default, POD for pid, is what `shareProcessNamespace: true` sends: a pid
/// namespace shared with the sandbox, which proxmox-lxc refuses at create, since
/// nexcage-init must be pid 1 of the container's own.)
fn kubelet_namespaces() -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: cri::NamespaceMode::Pod.into(),
        pid: cri::NamespaceMode::Container.into(),
        ipc: cri::NamespaceMode::Pod.into(),
        ..Default::default()
    }
}

/// Setup: docs/engines.md, "config.toml runtime handler (CRI)". The pod as a CRI client
/// such as crictl can route it: the pod annotation `nexcage.backend: crun` (which reaches
/// the sandbox and, through `pod_annotations`, every container of the pod) and the app's
/// container annotation `nexcage.backend: lxc-privileged` (`container_annotations`, which
/// containerd applies after the pod's, so it wins for that container).
#[test]
fn cri_pod_sandbox_on_crun_app_on_lxc_network_logs_exec_stop_remove() {
    let _serial = one_at_a_time();
    let c = Cri::start();
    pod_lifecycle(c, &[("nexcage.backend", "crun")], &[("nexcage.backend", "lxc-privileged")]);
}

/// Setup: docs/engines.md, "Kubernetes". The pod as a Kubernetes user can route it: a pod
/// annotation only (`nexcage.proxmox: "yes"`, passed by `pod_annotations`; kubelet sends
/// no container annotations of the user's), and the rules of the nexcage configuration
/// (see [`nexcage_config`]): the sandbox to crun by its `io.kubernetes.cri.container-type`,
/// the app to lxc-privileged.
#[test]
fn cri_pod_routed_by_rules_on_a_pod_annotation() {
    let _serial = one_at_a_time();
    let c = Cri::start();
    pod_lifecycle(c, &[("nexcage.proxmox", "yes")], &[]);
}

/// One pod, its sandbox and one app container, from RunPodSandbox to RemovePodSandbox;
/// the sandbox must end up on crun and the app on lxc-privileged.
fn pod_lifecycle(mut c: Cri, pod_annotations: &[(&str, &str)], app_annotations: &[(&str, &str)]) {
    let map = |a: &[(&str, &str)]| a.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>();
    let d = c.dir.path().to_path_buf();
    let root = c.nexcage_root();
    let logs = d.join("pod-logs");

    // 1. The pod sandbox.
    let pod_config = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "web".into(),
            uid: "0d6f6c3e-nexcage-cri-test".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "web".into(),
        log_directory: logs.display().to_string(),
        annotations: map(pod_annotations),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: c.own.cgroup_parent.clone(),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(kubelet_namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut rs = c.rs();
    let req = cri::RunPodSandboxRequest { config: Some(pod_config.clone()), runtime_handler: HANDLER.into() };
    let pod = c.call("RunPodSandbox", async move { rs.run_pod_sandbox(req).await }).pod_sandbox_id;
    let st = c.sandbox_status(&pod);
    let info: serde_json::Value = serde_json::from_str(st.info.get("info").expect("verbose sandbox info")).unwrap();
    // The pod's network namespace, as the sandbox's spec names it (containerd 1.6 mounts
    // it at /var/run/netns/cni-<uuid>).
    let namespaces = info["runtimeSpec"]["linux"]["namespaces"].as_array().cloned().unwrap_or_default();
    let ns = namespaces.iter().find(|n| n["type"] == "network").and_then(|n| n["path"].as_str());
    if let Some(ns) = ns.filter(|p| !p.is_empty()) {
        c.netns.push(PathBuf::from(ns));
    }
    let status = st.status.unwrap();
    assert_eq!(status.state(), cri::PodSandboxState::SandboxReady, "{status:?}");
    assert_eq!(status.runtime_handler, HANDLER);
    assert_eq!(recorded_backend(&root, &pod).as_deref(), Some("crun"), "nexcage's record of the sandbox");
    let pod_ip = status.network.as_ref().map(|n| n.ip.clone()).unwrap_or_default();
    assert!(
        pod_ip.starts_with(&format!("{}.", c.own.subnet_prefix)),
        "pod IP {pod_ip:?} is not from the CNI subnet {}.0/24",
        c.own.subnet_prefix
    );
    eprintln!("sandbox {pod}: READY on crun, pod IP {pod_ip}");
    let netns =
        c.netns.first().cloned().unwrap_or_else(|| panic!("no network namespace path in the sandbox spec: {info}"));
    // As mountinfo shows it (/var/run is /run).
    let netns = std::fs::canonicalize(&netns).unwrap_or_else(|e| panic!("the pod's netns {netns:?}: {e}"));
    assert!(mounts_under(&netns).contains(&netns), "the pod's netns {netns:?} is not mounted");

    // 2. The app container, on proxmox-lxc.
    let script = "echo started; ip -4 -o addr show eth0; mkdir -p /www; echo hello-from-lxc > /www/index.html; \
                  exec httpd -f -p 8080 -h /www";
    let app_config = cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata { name: "app".into(), attempt: 0 }),
        image: Some(cri::ImageSpec { image: IMAGE.into(), ..Default::default() }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        log_path: "app/0.log".into(),
        annotations: map(app_annotations),
        linux: Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(kubelet_namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut rs = c.rs();
    let req = cri::CreateContainerRequest {
        pod_sandbox_id: pod.clone(),
        config: Some(app_config),
        sandbox_config: Some(pod_config.clone()),
    };
    let app = c.call("CreateContainer", async move { rs.create_container(req).await }).container_id;
    assert_eq!(c.container_status(&app).state(), cri::ContainerState::ContainerCreated);
    let mut rs = c.rs();
    let req = cri::StartContainerRequest { container_id: app.clone() };
    c.call("StartContainer", async move { rs.start_container(req).await });
    let st = c.container_status(&app);
    assert_eq!(st.state(), cri::ContainerState::ContainerRunning, "{st:?}");
    assert_eq!(recorded_backend(&root, &app).as_deref(), Some("lxc-privileged"), "nexcage's record of the app");
    assert_eq!(c.pve_confs().len(), 1, "one Proxmox container: {:?}", c.pve_confs());
    eprintln!("app {app}: RUNNING on lxc-privileged, Proxmox config {:?}", c.pve_confs());

    // 3. + 4. The log file (CRI format: `<time> <stream> <F|P> <text>`): the program's
    // output, in which the app's eth0 has the pod's IP.
    let log_path = logs.join("app/0.log");
    assert_eq!(PathBuf::from(&st.log_path), log_path);
    let read_log = || text(&std::fs::read(&log_path).unwrap_or_default());
    let log = poll(
        "the app's address in its log",
        || {
            let l = read_log();
            l.contains(" inet ").then_some(l)
        },
        || format!("log: {:?}", read_log()),
    );
    let lines: Vec<Vec<&str>> = log.lines().map(|l| l.splitn(4, ' ').collect()).collect();
    for l in &lines {
        assert!(l.len() == 4 && l[1] == "stdout" && l[2] == "F", "not a CRI log line: {l:?}\n{log}");
        humantime::parse_rfc3339(l[0]).unwrap_or_else(|e| panic!("time {:?}: {e}\n{log}", l[0]));
    }
    assert_eq!(lines[0][3], "started", "{log}");
    let addr = lines[1][3];
    assert!(
        addr.contains(&format!(" inet {pod_ip}/24 ")),
        "the app's eth0 {addr:?} has not the pod IP {pod_ip}\n{log}"
    );

    // The host reaches the app's port on the pod IP.
    let url = format!("{pod_ip}:8080");
    let body = poll("the app's page on the pod IP", || http_get(&url), || format!("log: {}", read_log()));
    assert_eq!(body, "hello-from-lxc\n");
    eprintln!("app log:\n{log}http://{url}/ -> {body:?}");

    // 5. ExecSync: streams and exit code.
    let mut rs = c.rs();
    let req = cri::ExecSyncRequest {
        container_id: app.clone(),
        cmd: vec!["sh".into(), "-c".into(), "echo out; echo err >&2; exit 3".into()],
        timeout: 60,
    };
    let r = c.call("ExecSync", async move { rs.exec_sync(req).await });
    assert_eq!((text(&r.stdout).as_str(), text(&r.stderr).as_str(), r.exit_code), ("out\n", "err\n", 3), "ExecSync");
    eprintln!("ExecSync: stdout {:?}, stderr {:?}, exit {}", text(&r.stdout), text(&r.stderr), r.exit_code);

    // 6. Stop (SIGTERM; httpd is not pid 1 on lxc, nexcage-init is, so it dies of it),
    // remove: nothing of the app left.
    let mut rs = c.rs();
    let grace = stop_grace();
    let req = cri::StopContainerRequest { container_id: app.clone(), timeout: grace.as_secs() as i64 };
    let t = Instant::now();
    c.call("StopContainer", async move { rs.stop_container(req).await });
    let st = c.container_status(&app);
    assert_eq!(st.state(), cri::ContainerState::ContainerExited, "{st:?}");
    assert_eq!(st.exit_code, 143, "killed by SIGTERM (128+15), within the timeout ({:?}): {st:?}", t.elapsed());
    assert!(t.elapsed() < grace, "stop waited for its timeout ({:?})", t.elapsed());
    eprintln!("StopContainer: EXITED, exit code {} after {:?}", st.exit_code, t.elapsed());
    let mut rs = c.rs();
    let req = cri::RemoveContainerRequest { container_id: app.clone() };
    c.call("RemoveContainer", async move { rs.remove_container(req).await });
    assert_eq!(c.container_ids(), Vec::<String>::new(), "RemoveContainer left it listed");
    assert_eq!(recorded_backend(&root, &app), None, "nexcage's record of the app is gone");
    assert_eq!(c.pve_confs(), Vec::<String>::new(), "the Proxmox container is gone");

    // The pod: stop, remove; no record, no Proxmox config, no netns mount left.
    let mut rs = c.rs();
    let req = cri::StopPodSandboxRequest { pod_sandbox_id: pod.clone() };
    c.call("StopPodSandbox", async move { rs.stop_pod_sandbox(req).await });
    let st = c.sandbox_status(&pod).status.unwrap();
    assert_eq!(st.state(), cri::PodSandboxState::SandboxNotready, "{st:?}");
    let mut rs = c.rs();
    let req = cri::RemovePodSandboxRequest { pod_sandbox_id: pod.clone() };
    c.call("RemovePodSandbox", async move { rs.remove_pod_sandbox(req).await });
    assert_eq!(c.sandbox_ids(), Vec::<String>::new(), "RemovePodSandbox left it listed");
    assert_eq!(recorded_backend(&root, &pod), None, "nexcage's record of the sandbox is gone");
    let left: Vec<_> = common::emu::names(root.clone());
    assert!(left.iter().all(|n| n.starts_with('@')), "nexcage records left under {root:?}: {left:?}");
    assert_eq!(c.pve_confs(), Vec::<String>::new());
    assert!(!mounts_under(&netns).contains(&netns), "the pod's netns {netns:?} is still mounted");
    assert!(!netns.exists(), "the pod's netns file {netns:?} is left");
    assert_eq!(cgroup_children(&c.own.cgroup_parent), Vec::<PathBuf>::new(), "cgroups left in the pod's parent");
    c.netns.clear();
    eprintln!("removed: no container, sandbox, nexcage record, Proxmox config, netns or cgroup left");
}
