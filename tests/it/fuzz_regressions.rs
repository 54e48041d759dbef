//! Every input that once crashed a fuzz target (`fuzz/regressions/TARGET/`)
//! is replayed through the same property check the fuzzer runs
//! (`fuzz/checks/TARGET.rs`), as an ordinary test: a fixed bug that comes
//! back fails `scripts/test`, with no fuzzer or nightly flag needed.

use std::path::Path;

#[allow(dead_code)]
mod config {
    include!("../../fuzz/checks/config.rs");
}
#[allow(dead_code)]
mod forward_auth_target {
    include!("../../fuzz/checks/forward_auth_target.rs");
}
#[allow(dead_code)]
mod headers {
    include!("../../fuzz/checks/headers.rs");
}
#[allow(dead_code)]
mod path_rules {
    include!("../../fuzz/checks/path_rules.rs");
}
#[allow(dead_code)]
mod passkey_answer {
    include!("../../fuzz/checks/passkey_answer.rs");
}
#[allow(dead_code)]
mod provider_callback {
    include!("../../fuzz/checks/provider_callback.rs");
}
#[allow(dead_code)]
mod return_address {
    include!("../../fuzz/checks/return_address.rs");
}

/// The committed inputs of one target (none is fine: not every target has
/// found a crash).
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_committed_fuzz_crash_replays_clean() {
    type Check = fn(&[u8]);
    let targets: [(&str, Check); 7] = [
        ("config", config::check),
        ("forward_auth_target", forward_auth_target::check),
        ("headers", headers::check),
        ("path_rules", path_rules::check),
        ("passkey_answer", passkey_answer::check),
        ("provider_callback", provider_callback::check),
        ("return_address", return_address::check),
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    // A regression folder for a target this list does not know would be
    // silently skipped: refuse it instead.
    for dir in std::fs::read_dir(&root).unwrap().filter_map(Result::ok) {
        let name = dir.file_name().to_string_lossy().into_owned();
        assert!(
            targets.iter().any(|(t, _)| *t == name),
            "fuzz/regressions/{name} has no replay here: add the target to this test"
        );
    }
    let mut replayed = 0;
    for (target, check) in targets {
        for (name, data) in inputs(target) {
            let run = std::panic::catch_unwind(|| check(&data));
            assert!(run.is_ok(), "fuzz/regressions/{target}/{name} fails again");
            replayed += 1;
        }
    }
    assert!(
        replayed >= 3,
        "expected the committed regressions, replayed {replayed}"
    );
}
