//! The fuzz targets' entry points on stable: every seed, every input
//! libFuzzer added locally, and every regression under `fuzz/` runs through
//! the same function its cargo-fuzz target calls (docs/fuzzing.md), so a
//! crash once found stays fixed without a nightly toolchain.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file());
    files.sort();
    files
}

/// The targets' names from `fuzz/fuzz_targets/*.rs`.
fn target_files() -> Vec<String> {
    let mut names: Vec<String> = inputs(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        .collect();
    names.sort();
    names
}

#[test]
fn every_target_file_has_an_entry_point_and_a_seed_corpus() {
    let files = target_files();
    let mut entries: Vec<String> = orca::fuzzing::all_targets()
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    entries.sort();
    assert_eq!(
        files, entries,
        "fuzz/fuzz_targets/ and the entry points differ"
    );
    for name in &files {
        let text =
            std::fs::read_to_string(fuzz_dir().join("fuzz_targets").join(format!("{name}.rs")))
                .unwrap();
        assert!(
            text.contains(&format!("fuzzing::{name}(data)")),
            "{name}.rs does not call its shared entry point"
        );
        let seeds = inputs(&fuzz_dir().join("corpus").join(name));
        assert!(!seeds.is_empty(), "no seed corpus for {name}");
    }
}

#[test]
fn every_corpus_and_regression_input_runs_without_a_panic() {
    let mut ran = 0;
    for (name, entry) in orca::fuzzing::all_targets() {
        for sub in ["corpus", "regressions"] {
            for input in inputs(&fuzz_dir().join(sub).join(name)) {
                // A fuzzer running beside this test replaces corpus files
                // as it reduces them: one gone since the listing is skipped.
                let data = match std::fs::read(&input) {
                    Ok(d) => d,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => panic!("{}: {e}", input.display()),
                };
                let result = std::panic::catch_unwind(|| entry(&data));
                assert!(result.is_ok(), "{name} panicked on {}", input.display());
                ran += 1;
            }
        }
    }
    assert!(ran >= 100, "only {ran} inputs: are the corpora there?");
}

#[test]
fn the_entry_points_take_degenerate_input() {
    for (name, entry) in orca::fuzzing::all_targets() {
        for data in [&b""[..], b"\n", b"\xff\xfe", b"{", b"\0\0\0\0\0\0\0\0\0"] {
            let result = std::panic::catch_unwind(|| entry(data));
            assert!(result.is_ok(), "{name} panicked on {data:?}");
        }
    }
}
