//! The embedded store (`[store] path`) under the real binary: a committed
//! sign-in survives `kill -9` and a restart on the same file; a second
//! latchkey on that file is refused with a message that says why, and the
//! first one goes on serving; `check` names the store it would use.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::flow::{echoed, sign_in, Opts, Stack};
use crate::support::latchkey::{binary, check, Latchkey};
use crate::support::temp_dir;

const JSON: (&str, &str) = ("accept", "application/json");

fn store_toml(path: &Path) -> String {
    format!("[store]\npath = \"{}\"", path.display())
}

/// A stack on the embedded store at `path` (no Redis at all).
async fn stack_on(toml: &str) -> Stack {
    Stack::start_opts(Opts {
        redis_toml: Some(toml),
        ..Opts::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_survives_kill_9_and_a_restart() {
    let dir = temp_dir();
    let toml = store_toml(&dir.path().join("state").join("store"));
    let stack = stack_on(&toml).await;
    let b = stack.browser();
    sign_in(&stack, &b, "alice@example.com").await;
    let cookie = b.cookie("latchkey_session").expect("a session cookie");
    echoed(&b.get("/reports", &[JSON]).await);

    stack.lk.signal("KILL");
    let Stack {
        smtp,
        _echo: echo,
        mut lk,
        ..
    } = stack;
    let status = lk.wait_exit(Duration::from_secs(5)).expect("killed");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{status}"
    );
    let port = lk.port;
    drop(lk);

    let opts = Opts {
        redis_toml: Some(&toml),
        ..Opts::default()
    };
    let lk = Latchkey::start_on(port, |port| {
        Stack::config(port, &opts, &toml, &smtp.url(), echo)
    });
    assert_eq!(b.cookie("latchkey_session"), Some(cookie), "same cookie");
    let again = b.get("/reports", &[JSON]).await;
    let seen = echoed(&again);
    assert!(
        seen.to_string().contains("alice@example.com"),
        "signed in as alice after the restart: {seen}"
    );
    // And the admin-only path still knows her roles.
    echoed(&b.get("/admin/x", &[JSON]).await);
    drop(lk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_latchkey_on_the_same_file_is_refused() {
    let dir = temp_dir();
    let path = dir.path().join("store");
    let toml = store_toml(&path);
    let stack = stack_on(&toml).await;

    // The same config on another port: it must stop at once, saying why.
    let config = dir.path().join("second.toml");
    let port = crate::support::free_port();
    std::fs::write(
        &config,
        format!("[server]\nlisten = \"127.0.0.1:{port}\"\n\n{toml}\n"),
    )
    .unwrap();
    let mut child = Command::new(binary())
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("LATCHKEY_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("a second latchkey on {} kept running", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("already open in another process") && text.contains(&*path.to_string_lossy()),
        "the error names the file and the cause:\n{text}"
    );

    // The first one is untouched and serves sign-ins from the file.
    let b = stack.browser();
    sign_in(&stack, &b, "bob@example.com").await;
    echoed(&b.get("/reports", &[JSON]).await);
}

#[test]
fn check_names_the_embedded_store() {
    let dir = temp_dir();
    let path = dir.path().join("store");
    let config = dir.path().join("latchkey.toml");
    std::fs::write(&config, format!("{}\n", store_toml(&path))).unwrap();
    let out = check(&config);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("store         embedded ({})", path.display())),
        "{stdout}"
    );
    assert!(
        !path.exists(),
        "check does not create (or lock) the store file"
    );
}
