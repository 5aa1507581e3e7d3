// The template cache is wired into the CLI when the backend lands; until then the module
// is only exercised by its tests and examples/template-build.rs.
#[allow(dead_code)]
mod backend;

fn main() {}
