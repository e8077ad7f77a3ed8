//! The `orca` binary: parse, init tracing, call into the library, map the
//! result to an exit code.

fn main() {
    let code = orca::cli::main();
    // The empty cgroups kept for reuse go with the process (after a crash,
    // the next orca's sweep removes them).
    orca_actors::host::cgroup::drain_pool();
    std::process::exit(code);
}
