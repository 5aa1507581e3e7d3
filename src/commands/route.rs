//! `route`: explain which backend a container would get, and why.

use anyhow::Result;

use crate::bundle::Bundle;
use crate::cli::RouteArgs;
use crate::config::Config;
use crate::route::RouteInput;
use crate::state::validate_id;

pub fn route(args: &RouteArgs) -> Result<i32> {
    validate_id(&args.id)?;
    let bundle = Bundle::open(&args.bundle)?;
    let config = Config::load()?;
    let decision = config
        .router()
        .route(&RouteInput { id: &args.id, annotations: &bundle.annotations, bundle: &bundle.dir })
        .map_err(anyhow::Error::msg)?;
    let kind = config.backend(&decision.backend).map(|b| b.kind()).unwrap_or("?");
    println!("{} ({kind})", decision);
    println!("configuration: {}", config.source);
    Ok(0)
}
