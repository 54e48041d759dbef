//! `latchkey check`: every invalid config under tests/fixtures/invalid fails
//! with the messages beside it; the shipped example passes.

use std::path::Path;

use crate::support::latchkey::check;

#[test]
fn every_invalid_fixture_fails_with_its_message() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        seen += 1;
        let expected = std::fs::read_to_string(path.with_extension("expected"))
            .unwrap_or_else(|_| panic!("{} has no .expected file", path.display()));
        let out = check(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: check should fail\n{stderr}",
            path.display()
        );
        for line in expected.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                stderr.contains(line),
                "{}: expected the error output to contain\n  {line}\nbut it was:\n{stderr}",
                path.display()
            );
        }
    }
    assert!(seen >= 15, "only {seen} invalid fixtures found");
}

#[test]
fn the_shipped_example_config_passes_and_lists_its_rules() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml.example");
    let out = check(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "config.toml.example fails check:\n{stderr}"
    );
    assert!(stdout.contains("/admin/**"), "rules not listed:\n{stdout}");
    assert!(stdout.contains("app.example.com"), "{stdout}");
    assert!(
        !stdout.contains("password"),
        "secrets must not be printed:\n{stdout}"
    );
}

#[test]
fn a_missing_config_file_says_how_to_give_one() {
    let out = check(Path::new("/nonexistent/latchkey.toml"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"));
}

#[test]
fn environment_overrides_the_file_and_other_latchkey_variables_are_ignored() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml.example");
    let run = |vars: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(crate::support::latchkey::binary());
        cmd.args(["check", "--config"]).arg(&path);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().expect("run check")
    };
    let out = run(&[
        ("LATCHKEY_SERVER__LISTEN", "127.0.0.1:9999"),
        ("LATCHKEY_SOMETHING", "x"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("127.0.0.1:9999"),
        "env wins over the file"
    );
    let out = run(&[("LATCHKEY_SESSION__IDLE_TIMEOUT", "forever")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("session.idle_timeout: \"forever\""));
}
