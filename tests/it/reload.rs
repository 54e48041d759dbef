//! Reload that tells the truth (issue 16, item 2), against the real binary
//! and real signals: after SIGHUP the admin listener reports on the `App`
//! that serves; keys that need a restart are named in the reload's log line
//! and on `/metrics` while their running values stay in effect (behaviour
//! and `/metrics` agree); a `[mail]` change starts a new queue while the
//! old one still delivers the mail it held, over its own transport, then
//! stops.

use std::time::Duration;

use crate::flow::{request_link, start_echo, Opts, Stack};
use crate::ops::plain_config;
use crate::support::free_port;
use crate::support::http::{raw, Browser};
use crate::support::latchkey::Latchkey;
use crate::support::smtp::SmtpSink;
use crate::upgrades::{admin_addr, metric};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sighup_the_admin_listener_reports_the_running_config_and_what_waits_for_a_restart() {
    let echo = start_echo().await;
    let upstream = format!("http://{echo}");
    let server = |max: u32| {
        format!("max_connections = {max}\nheader_read_timeout = \"30s\"\nadmin_listen = \"127.0.0.1:0\"")
    };
    let lk = Latchkey::start(|port| plain_config(port, &upstream, "", &server(3)));
    let admin = admin_addr(&lk);
    let loaded = metric(admin, "latchkey_config_loaded_timestamp_seconds")
        .await
        .expect("the load time on /metrics");
    assert_eq!(
        metric(admin, "latchkey_connections_max").await.as_deref(),
        Some("3")
    );
    tokio::time::sleep(Duration::from_millis(50)).await;

    // A new listen address and max_connections 1 (both need a restart), a
    // new public path (applies at once). `plain_config` writes `listen`
    // first; the later one in `[server]` would be a duplicate key, so the
    // port is changed in the text.
    let moved = free_port();
    let opened = "[[rules]]\npath = \"/reports/**\"\npolicy = \"public\"\n";
    let text = plain_config(lk.port, &upstream, opened, &server(1)).replace(
        &format!("listen = \"127.0.0.1:{}\"", lk.port),
        &format!("listen = \"127.0.0.1:{moved}\""),
    );
    std::fs::write(lk.config_path(), text).unwrap();
    lk.signal("HUP");
    lk.wait_for_log(
        "config reloaded; restart needed for: server.listen, server.max_connections",
        Duration::from_secs(10),
    );

    // The admin listener reports on the App serving now...
    let reloaded = metric(admin, "latchkey_config_loaded_timestamp_seconds")
        .await
        .unwrap();
    assert!(
        reloaded.parse::<f64>().unwrap() > loaded.parse::<f64>().unwrap(),
        "/metrics still reports the start-up App: loaded {loaded}, then {reloaded}"
    );
    for key in ["server.listen", "server.max_connections"] {
        assert_eq!(
            metric(
                admin,
                &format!("latchkey_config_restart_pending{{key=\"{key}\"}}")
            )
            .await
            .as_deref(),
            Some("1"),
            "{key}"
        );
    }
    // ...which runs the new rule, on the old port, with the old limit.
    let resp = raw(
        lk.addr,
        b"GET /reports/q1 HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(
        metric(admin, "latchkey_connections_max").await.as_deref(),
        Some("3"),
        "/metrics says the limit in effect"
    );
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(lk.addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET /public/ HTTP/1.1\r\nHost: app.test\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "max_connections 1 was applied without a restart"
        );
        held.push(s);
    }
    let resp = raw(
        lk.addr,
        b"GET /public/ HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "third of 3: {resp}");
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", moved))
            .await
            .is_err(),
        "latchkey listens on the new address without a restart?"
    );

    // The file back as it runs: nothing waits any more.
    std::fs::write(
        lk.config_path(),
        plain_config(lk.port, &upstream, opened, &server(3)),
    )
    .unwrap();
    lk.signal("HUP");
    lk.wait_for_log(
        "config reloaded: new requests use it",
        Duration::from_secs(10),
    );
    assert_eq!(
        metric(
            admin,
            "latchkey_config_restart_pending{key=\"server.listen\"}"
        )
        .await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_queued_before_a_mail_reload_is_still_sent_and_the_old_queue_stops() {
    let echo = start_echo().await;
    // The first [mail] names a server that is not up yet: the first try
    // fails and the queue retries (after 1 s, then 4 s, then 16 s).
    let late_port = free_port();
    let late_url = format!("smtp://127.0.0.1:{late_port}");
    let opts = Opts::default();
    let lk = Latchkey::start(|port| Stack::config(port, &opts, "", &late_url, echo));
    let b = Browser::new(lk.addr).with_host(&format!("app.test:{}", lk.port));
    let page = request_link(&b, "bob@example.com", "/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    lk.wait_for_log("sign-in mail failed; will retry", Duration::from_secs(10));

    // Reload onto another mail server.
    let new_sink = SmtpSink::start();
    std::fs::write(
        lk.config_path(),
        Stack::config(lk.port, &opts, "", &new_sink.url(), echo),
    )
    .unwrap();
    lk.signal("HUP");
    lk.wait_for_log("[mail] changed", Duration::from_secs(10));

    // The old server comes up: the old queue's retry delivers the old mail
    // there, then the old queue stops.
    let late_sink = SmtpSink::start_on(late_port);
    let m = late_sink
        .wait_for("bob@example.com", Duration::from_secs(30))
        .await;
    assert!(m.text.contains("token="), "{}", m.text);
    lk.wait_for_log(
        "mail queue stopped: everything it held was sent",
        Duration::from_secs(10),
    );

    // New mail goes to the new server.
    let b2 = Browser::new(lk.addr).with_host(&format!("app.test:{}", lk.port));
    let page = request_link(&b2, "alice@example.com", "/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    new_sink
        .wait_for("alice@example.com", Duration::from_secs(10))
        .await;
    assert_eq!(
        late_sink.messages().len(),
        1,
        "only the old mail went there"
    );
    assert!(new_sink
        .messages()
        .iter()
        .all(|m| !m.to.iter().any(|t| t == "bob@example.com")));
}

/// `latchkey check --config FILE --running ADMIN_URL`.
fn check_running(config: &std::path::Path, admin: &str) -> std::process::Output {
    std::process::Command::new(crate::support::latchkey::binary())
        .args(["check", "--config"])
        .arg(config)
        .args(["--running", admin])
        .env_remove("LATCHKEY_CONFIG")
        .output()
        .expect("run latchkey check")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_against_a_running_instance_and_sighup_name_restart_only_keys_store_included() {
    let echo = start_echo().await;
    let upstream = format!("http://{echo}");
    let dir = crate::support::temp_dir();
    let store = |name: &str| format!("[store]\npath = \"{}\"\n", dir.path().join(name).display());
    let admin_listen = "admin_listen = \"127.0.0.1:0\"";
    let running_text = |port: u16| plain_config(port, &upstream, &store("first"), admin_listen);
    let lk = Latchkey::start(running_text);
    let admin = format!("http://{}", admin_addr(&lk));

    // The file as it runs: nothing waits for a restart.
    let same = dir.path().join("same.toml");
    std::fs::write(&same, running_text(lk.port)).unwrap();
    let out = check_running(&same, &admin);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("a reload (SIGHUP) applies everything in this file"),
        "{stdout}"
    );

    // Another listen address and another store file (restart-only), and a
    // rule (reloads): check names the two, with both values.
    let moved = free_port();
    let rule = "[[rules]]\npath = \"/reports/**\"\npolicy = \"public\"\n";
    let changed_text = plain_config(
        lk.port,
        &upstream,
        &format!("{rule}{}", store("second")),
        admin_listen,
    )
    .replace(
        &format!("listen = \"127.0.0.1:{}\"", lk.port),
        &format!("listen = \"127.0.0.1:{moved}\""),
    );
    let changed = dir.path().join("changed.toml");
    std::fs::write(&changed, &changed_text).unwrap();
    let out = check_running(&changed, &admin);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("restart needed for: server.listen, store"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "server.listen: runs 127.0.0.1:{}; the file says 127.0.0.1:{moved}",
            lk.port
        )),
        "{stdout}"
    );
    assert!(stdout.contains("second"), "{stdout}");

    // SIGHUP with that file: the same keys named, the running store kept
    // (the running values published are still the first ones).
    std::fs::write(lk.config_path(), &changed_text).unwrap();
    lk.signal("HUP");
    lk.wait_for_log(
        "config reloaded; restart needed for: server.listen, store",
        Duration::from_secs(10),
    );
    let out = check_running(&changed, &admin);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("restart needed for: server.listen, store"),
        "after the reload the instance still runs the first store: {stdout}"
    );
    assert!(
        !dir.path().join("second").exists(),
        "a reload opened the new store file"
    );
    let resp = raw(
        lk.addr,
        b"GET /reports/q HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "the rule applied: {resp}");

    // Nothing listening there: a clear error, exit 1.
    let out = check_running(&same, &format!("http://127.0.0.1:{}", free_port()));
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot connect to the admin listener"),
        "{stderr}"
    );
}
