//! `route`: explain which backend a container would get, and why.

use anyhow::Result;

use crate::bundle::Bundle;
use crate::cli::RouteArgs;
use crate::config::{BackendConfig, Config};
use crate::route::RouteInput;
use crate::state::validate_id;

pub fn route(args: &RouteArgs, flag: Option<&str>) -> Result<i32> {
    validate_id(&args.id)?;
    let bundle = Bundle::open(&args.bundle)?;
    let config = Config::load()?;
    let decision = config
        .router()
        .route(&RouteInput { id: &args.id, annotations: &bundle.annotations, bundle: &bundle.dir, flag })
        .map_err(anyhow::Error::msg)?;
    let backend = config.backend(&decision.backend);
    let kind = backend.map(|b| b.kind()).unwrap_or("?");
    println!("{} ({kind})", decision);
    if let Some(BackendConfig::ProxmoxLxc(lxc)) = backend {
        println!("{}", privilege(lxc.unprivileged, bundle_has_userns(&bundle)));
    }
    println!("configuration: {}", config.source);
    Ok(0)
}

/// Does the bundle ask for a user namespace (`linux.namespaces[].type == "user"`)?
fn bundle_has_userns(bundle: &Bundle) -> bool {
    let nss = &bundle.config.value()["linux"]["namespaces"];
    nss.as_array().is_some_and(|a| a.iter().any(|n| n["type"] == "user"))
}

/// The line `route` prints about a proxmox-lxc container's privilege, and why (the same
/// rule the mapping applies: unprivileged when the backend says so or the bundle has a
/// user namespace).
fn privilege(backend_unprivileged: bool, bundle_userns: bool) -> &'static str {
    match (backend_unprivileged, bundle_userns) {
        (true, _) => "proxmox-lxc container: unprivileged (the backend's \"unprivileged\" is true)",
        (false, true) => "proxmox-lxc container: unprivileged (the bundle has a user namespace)",
        (false, false) => {
            "proxmox-lxc container: PRIVILEGED (the backend's \"unprivileged\" is false and the bundle has no user \
             namespace): its root is the host's root if the program escapes"
        }
    }
}
