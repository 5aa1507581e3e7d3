//! `delete`: the backend deletes the container; on success the record goes too. A record
//! whose container the backend no longer has is simply removed.

use anyhow::Result;

use super::Ctx;
use crate::backend;
use crate::cli::DeleteArgs;
use crate::state::StateError;

pub fn delete(ctx: &Ctx, args: &DeleteArgs) -> Result<i32> {
    let (record, lock) = match ctx.store.load_locked(&args.id) {
        Ok(found) => found,
        // runc and crun: `delete --force` of an unknown container succeeds (engines rely
        // on it when they clean up).
        Err(e) if args.force && StateError::is_not_exist(&e) => return Ok(0),
        Err(e) => return Err(e),
    };
    crate::fault::point("delete:locked");
    let backend = backend::for_record(&record)?;
    let code = backend.delete(ctx, &record, args.force)?;
    if code == 0 {
        crate::fault::point("delete:backend-done");
        ctx.store.remove(&record.id)?;
    }
    drop(lock);
    Ok(code)
}
