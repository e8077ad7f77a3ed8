//! SSH workers in an orca built without the `ssh` feature (the README's
//! first build leaves out russh and its crypto): the same names as
//! [`ssh`](self), every ssh worker an [`Unusable`] host that says how to
//! get a build with SSH.

use std::path::Path;
use std::time::Duration;

use crate::spec::SshHost;

pub use super::unusable::Unusable;

/// Why an ssh worker cannot run here.
pub const WHY: &str = "this orca was built without SSH support (the `ssh` feature); \
     build it with the default features, e.g. `cargo install --path .` or `cargo build --release`";

/// Connections to ssh hosts: none in this build.
#[derive(Debug, Default, Clone)]
pub struct Pool {
    _none: (),
}

/// The ssh worker adapter: never built in this build.
#[derive(Debug)]
pub struct SshAdapter;

impl SshAdapter {
    /// Always the reason this build cannot reach ssh hosts (the same
    /// signature as the real adapter's, so the host factory is one).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(_: &Pool, _: &SshHost, _: &Path, _: Duration) -> Result<Unusable, String> {
        Err(WHY.to_string())
    }
}
