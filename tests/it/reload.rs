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
