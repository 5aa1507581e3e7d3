//! Commands that only need the owning backend: start, state, kill, exec, ps, pause,
//! resume, update, events. The record is read without a lock; the backend does the rest.

use anyhow::Result;

use super::Ctx;
use crate::backend::{self, Backend};
use crate::state::Record;

pub fn with_backend(ctx: &Ctx, id: &str, f: impl FnOnce(&dyn Backend, &Record) -> Result<i32>) -> Result<i32> {
    let record = ctx.store.load(id)?;
    let backend = backend::for_record(&record)?;
    f(backend.as_ref(), &record)
}
