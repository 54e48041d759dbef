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

/// A config whose Redis and SMTP URLs carry passwords, with `[redis]` and
/// `[mail]` replaced by `edit` (to make it fail in a given way).
fn with_passwords(edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let dir = crate::support::temp_dir();
    let config = r#"
[server]
listen = "127.0.0.1:8080"
public_url = "https://auth.example.com"

[redis]
url = "redis://:s3cret@127.0.0.1:6379/0"

[mail]
transport = "smtp"
smtp_url = "smtps://user:s3cret@smtp.example.com:465"
from = "Example Sign-in <login@example.com>"

[[users]]
email = "alice@example.com"
roles = ["admin"]
"#;
    std::fs::write(dir.path().join("latchkey.toml"), edit(config)).expect("write config");
    dir
}

/// Neither stream of `out` holds the password `s3cret`.
fn assert_no_password(out: &std::process::Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !text.contains("s3cret"),
            "a password reached {name}:\n{text}"
        );
    }
    (stdout, stderr)
}

/// `check` prints the store and the mail transport of a config that
/// compiles: their URLs with the password as `***`.
#[test]
fn check_prints_no_password_of_a_config_that_passes() {
    let dir = with_passwords(str::to_owned);
    let out = check(&dir.path().join("latchkey.toml"));
    let (stdout, stderr) = assert_no_password(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("redis (redis://:***@127.0.0.1:6379/0)"),
        "the store, its password masked:\n{stdout}"
    );
    assert!(
        stdout.contains("smtp (smtps://user:***@"),
        "the mail transport, its password masked:\n{stdout}"
    );
}

/// Problems name the URL they are about, with the password masked, for a
/// URL the url crate reads and for one it cannot.
#[test]
fn check_prints_no_password_of_a_config_that_fails() {
    let dir = with_passwords(|c| c.replace("smtps://", "ftp://"));
    let out = check(&dir.path().join("latchkey.toml"));
    let (_, stderr) = assert_no_password(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("mail.smtp_url: \"ftp://user:***@smtp.example.com:465\""),
        "{stderr}"
    );
}

/// A URL the url crate cannot read (a port that is no number) still has
/// its password masked when a problem quotes it.
#[test]
fn check_masks_the_password_of_a_url_it_cannot_read() {
    let dir = with_passwords(|c| c.replace("127.0.0.1:6379/0", "127.0.0.1:notaport/0"));
    let out = check(&dir.path().join("latchkey.toml"));
    let (_, stderr) = assert_no_password(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("redis.url: \"redis://:***@"), "{stderr}");
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
