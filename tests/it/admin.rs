//! `latchkey users` and `latchkey sessions` against a real redis-server
//! shared by two running latchkey instances: every change shows on the
//! very next request, on both.

use std::path::Path;
use std::process::{Command, Output};

use crate::flow::{sign_in, Stack};
use crate::support::http::{send, Browser};
use crate::support::latchkey::binary;

const JSON: (&str, &str) = ("accept", "application/json");

fn cli(config: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("LATCHKEY_CONFIG")
        .output()
        .expect("run latchkey")
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn refused(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The status of GET `path` on `stack` with `browser`'s session cookie.
async fn status_on(stack: &Stack, browser: &Browser, path: &str) -> u16 {
    let cookie = format!(
        "latchkey_session={}",
        browser.cookie("latchkey_session").unwrap_or_default()
    );
    send(
        stack.lk.addr,
        "GET",
        path,
        &[("host", &stack.host()), ("cookie", &cookie), JSON],
        b"",
    )
    .await
    .status
}

#[tokio::test]
async fn users_and_sessions_change_every_instance_on_the_next_request() {
    let a = Stack::start("").await;
    let redis_url = a.redis.as_ref().expect("redis").url();
    let redis_toml = format!("[redis]\nurl = \"{redis_url}\"");
    let b = Stack::start_opts(crate::flow::Opts {
        redis_toml: Some(&redis_toml),
        ..Default::default()
    })
    .await;
    let dir = crate::support::temp_dir();
    let config = dir.path().join("latchkey.toml");
    std::fs::write(
        &config,
        format!("{redis_toml}\n\n[[users]]\nemail = \"alice@example.com\"\nroles = [\"admin\"]\n"),
    )
    .unwrap();

    // Closed signup: carol can sign in only once added.
    let added = ok(&cli(
        &config,
        &["users", "add", "Carol@Example.com", "--roles", "member"],
    ));
    assert!(added.contains("carol@example.com"), "{added}");
    let list = ok(&cli(&config, &["users", "list"]));
    assert!(
        list.lines()
            .any(|l| l.starts_with("alice@example.com") && l.contains("config")),
        "{list}"
    );
    assert!(
        list.lines().any(|l| l.starts_with("carol@example.com")
            && l.contains("store")
            && l.contains("member")),
        "{list}"
    );
    let carol = a.browser();
    sign_in(&a, &carol, "carol@example.com").await;
    assert_eq!(status_on(&a, &carol, "/reports").await, 200);
    assert_eq!(
        status_on(&b, &carol, "/reports").await,
        200,
        "B shares the session"
    );
    assert_eq!(status_on(&a, &carol, "/admin/x").await, 403);
    assert_eq!(status_on(&b, &carol, "/admin/x").await, 403);

    // A role change shows on both instances at once.
    ok(&cli(
        &config,
        &["users", "set-roles", "carol@example.com", "admin,member"],
    ));
    assert_eq!(status_on(&a, &carol, "/admin/x").await, 200);
    assert_eq!(status_on(&b, &carol, "/admin/x").await, 200);
    ok(&cli(
        &config,
        &["users", "set-roles", "carol@example.com", "member"],
    ));
    assert_eq!(status_on(&b, &carol, "/admin/x").await, 403);

    // Sessions: listed with an id; revoking one ends it everywhere.
    let sessions = ok(&cli(
        &config,
        &["sessions", "list", "--user", "carol@example.com"],
    ));
    let line = sessions
        .lines()
        .find(|l| l.contains("carol@example.com"))
        .unwrap_or_else(|| panic!("{sessions}"));
    let id = line.split_whitespace().next().unwrap().to_owned();
    assert_eq!(id.len(), 64, "{line}");
    assert!(
        ok(&cli(&config, &["sessions", "list"])).contains(&id),
        "listed among all sessions"
    );
    ok(&cli(&config, &["sessions", "revoke", &id]));
    assert_eq!(status_on(&b, &carol, "/reports").await, 401);
    assert_eq!(status_on(&a, &carol, "/reports").await, 401);
    let again = refused(&cli(&config, &["sessions", "revoke", &id]));
    assert!(again.contains("no live session"), "{again}");

    // Revoking all of a user's sessions.
    let carol2 = a.browser();
    sign_in(&a, &carol2, "carol@example.com").await;
    let revoke = cli(
        &config,
        &["sessions", "revoke", "--user", "carol@example.com"],
    );
    let all = ok(&revoke);
    assert!(all.contains("ended 1 session"), "{all}");
    let audit = String::from_utf8_lossy(&revoke.stderr);
    assert!(
        audit.contains("sessions revoked") || audit.contains("sessions_revoked"),
        "the revocation is in the audit log: {audit}"
    );
    assert_eq!(status_on(&b, &carol2, "/reports").await, 401);

    // Removing a user ends their sessions too.
    let carol3 = a.browser();
    sign_in(&a, &carol3, "carol@example.com").await;
    let removed = ok(&cli(&config, &["users", "remove", "carol@example.com"]));
    assert!(removed.contains("ended 1 session"), "{removed}");
    assert_eq!(status_on(&a, &carol3, "/reports").await, 401);
    assert_eq!(status_on(&b, &carol3, "/reports").await, 401);
    assert!(!ok(&cli(&config, &["users", "list"])).contains("carol@"));
}

#[tokio::test]
async fn config_users_bad_input_and_memory_stores_are_refused_clearly() {
    let a = Stack::start("").await;
    let redis_url = a.redis.as_ref().expect("redis").url();
    let dir = crate::support::temp_dir();
    let config = dir.path().join("latchkey.toml");
    std::fs::write(
        &config,
        format!("[redis]\nurl = \"{redis_url}\"\n\n[[users]]\nemail = \"alice@example.com\"\nroles = [\"admin\"]\n"),
    )
    .unwrap();
    for args in [
        &["users", "remove", "alice@example.com"][..],
        &["users", "set-roles", "Alice@example.com", "member"],
        &["users", "add", "alice@example.com"],
    ] {
        let err = refused(&cli(&config, args));
        assert!(
            err.contains("alice@example.com is defined in the config file"),
            "{args:?}: {err}"
        );
    }
    let err = refused(&cli(&config, &["users", "add", "not-an-address"]));
    assert!(err.contains("is not an email address"), "{err}");
    let err = refused(&cli(
        &config,
        &["users", "add", "x@example.com", "--roles", "a b"],
    ));
    assert!(err.contains("is not a role name"), "{err}");
    let err = refused(&cli(
        &config,
        &["users", "set-roles", "nobody@example.com", "x"],
    ));
    assert!(err.contains("is not a stored user"), "{err}");
    let err = refused(&cli(&config, &["sessions", "revoke", "abc"]));
    assert!(err.contains("is not a session id"), "{err}");

    let help = ok(&cli(&config, &["users", "--help"]));
    for sub in ["add", "list", "remove", "set-roles"] {
        assert!(help.contains(sub), "{help}");
    }
    let help = ok(&cli(&config, &["sessions", "revoke", "--help"]));
    assert!(help.contains("--user"), "{help}");

    let memory = dir.path().join("memory.toml");
    std::fs::write(&memory, "[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let err = refused(&cli(&memory, &["users", "list"]));
    assert!(err.contains("no [redis] is configured"), "{err}");
}
