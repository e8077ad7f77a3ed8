//! The `orca` binary: parse, init tracing, call into the library, map the
//! result to an exit code.

fn main() {
    let code = orca::cli::main();
    std::process::exit(code);
}
