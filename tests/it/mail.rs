//! Mail through real transports: the sign-in email rendered by `Pages` and
//! sent over SMTP to a real server (aiosmtpd), the queue's retries against a
//! server that comes up late, `.eml` files, and config errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey::config::{BrandingConfig, MailConfig};
use latchkey::http::pages::{LinkEmail, Pages};
use latchkey::obs::mail_stats::MailStats;
use latchkey::signin::mail::{Email, MailQueue, Mailer, QueueSettings};

use crate::support::smtp::SmtpSink;
use crate::support::{free_port, tools_dir};

const LINK: &str =
    "https://app.example.com/.latchkey/verify?token=q8Zr3xY0l6Hk2mWbT4vN9sPcE1aJdUfG7oRiKyLh5nA-_";
const CODE: &str = "042917";

fn smtp_mailer(url: &str) -> Mailer {
    Mailer::from_config(&smtp_config(url, None)).expect("smtp mailer")
}

fn smtp_config(url: &str, ca_file: Option<&std::path::Path>) -> MailConfig {
    MailConfig {
        transport: "smtp".into(),
        from: "Example Sign-in <login@example.com>".into(),
        smtp_url: Some(url.into()),
        ca_file: ca_file.map(|p| p.to_string_lossy().into_owned()),
        file_dir: None,
    }
}

fn sign_in_email(to: &str) -> Email {
    let pages = Pages::new(&BrandingConfig::default()).expect("pages");
    let (subject, text, html) = pages.email(&LinkEmail {
        link: LINK,
        code: CODE,
        expires_in: "10 minutes",
        expires_at: "14:05 UTC",
        ip: "198.51.100.7",
        user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        site: "app.example.com",
    });
    Email {
        to: to.into(),
        subject,
        text,
        html,
    }
}

async fn until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sign_in_email_arrives_over_smtp_with_both_parts() {
    let sink = SmtpSink::start();
    let mailer = smtp_mailer(&sink.url());
    mailer
        .send(&sign_in_email("bob@example.com"))
        .await
        .expect("send");

    let m = sink
        .wait_for("bob@example.com", Duration::from_secs(10))
        .await;
    assert_eq!(m.from, "login@example.com");
    assert_eq!(m.subject, "Your sign-in link for app.example.com");
    assert!(
        m.raw.contains("multipart/alternative"),
        "not multipart: {}",
        m.raw
    );
    // The decoded text: the link whole, on a line of its own.
    assert!(
        m.text.lines().any(|l| l.trim() == LINK),
        "link not on its own line:\n{}",
        m.text
    );
    assert!(m.text.contains(CODE), "{}", m.text);
    assert!(m.text.contains("Firefox on Linux"), "{}", m.text);
    assert!(m.text.contains("198.51.100.7"), "{}", m.text);
    assert!(
        m.html.contains(&format!("href=\"{LINK}\"")),
        "no href to the link:\n{}",
        m.html
    );
    assert!(m.html.contains(CODE));
}

#[tokio::test]
async fn queue_retries_until_the_server_comes_up() {
    let port = free_port();
    let stats = Arc::new(MailStats::default());
    let queue = MailQueue::spawn_with(
        Arc::new(smtp_mailer(&format!("smtp://127.0.0.1:{port}"))),
        stats.clone(),
        QueueSettings {
            attempts: 5,
            base_delay: Duration::from_millis(300),
            ..QueueSettings::default()
        },
    );
    queue.enqueue(sign_in_email("carol@example.com"));

    until("the first attempt to fail", Duration::from_secs(10), || {
        stats.failed.load(Ordering::Relaxed) >= 1
    })
    .await;
    let sink = SmtpSink::start_on(port);
    let m = sink
        .wait_for("carol@example.com", Duration::from_secs(30))
        .await;
    assert!(m.text.contains(LINK));
    until("sent to be counted", Duration::from_secs(5), || {
        stats.sent.load(Ordering::Relaxed) == 1
    })
    .await;
    assert!(stats.failed.load(Ordering::Relaxed) >= 1);
    assert_eq!(stats.abandoned.load(Ordering::Relaxed), 0);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    // Drained: every send the queue will ever make has been made.
    queue.shutdown().await;
    assert_eq!(stats.sent.load(Ordering::Relaxed), 1);
    assert_eq!(sink.messages().len(), 1, "sent exactly once");
}

#[tokio::test]
async fn queue_gives_up_after_the_last_attempt() {
    let stats = Arc::new(MailStats::default());
    let queue = MailQueue::spawn_with(
        Arc::new(smtp_mailer(&format!("smtp://127.0.0.1:{}", free_port()))),
        stats.clone(),
        QueueSettings {
            attempts: 3,
            base_delay: Duration::from_millis(10),
            ..QueueSettings::default()
        },
    );
    queue.enqueue(sign_in_email("dave@example.com"));
    tokio::time::timeout(Duration::from_secs(10), queue.shutdown())
        .await
        .expect("queue drains");
    assert_eq!(stats.failed.load(Ordering::Relaxed), 3);
    assert_eq!(stats.abandoned.load(Ordering::Relaxed), 1);
    assert_eq!(stats.sent.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn full_queue_drops_without_waiting() {
    // A server that accepts connections and never says hello: sends hang.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let stats = Arc::new(MailStats::default());
    let queue = MailQueue::spawn_with(
        Arc::new(smtp_mailer(&format!("smtp://127.0.0.1:{port}"))),
        stats.clone(),
        QueueSettings {
            capacity: 1,
            concurrency: 1,
            ..QueueSettings::default()
        },
    );
    let started = Instant::now();
    for i in 0..6 {
        queue.enqueue(sign_in_email(&format!("u{i}@example.com")));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    // At most one sending, one held by the worker, one in the channel.
    assert!(
        stats.dropped.load(Ordering::Relaxed) >= 3,
        "dropped {}",
        stats.dropped.load(Ordering::Relaxed)
    );
    drop(silent);
}

#[tokio::test]
async fn file_transport_writes_a_parseable_eml() {
    let dir = crate::support::temp_dir();
    let outbox = dir.path().join("outbox");
    let mailer = Mailer::from_config(&MailConfig {
        transport: "file".into(),
        from: "login@example.com".into(),
        smtp_url: None,
        ca_file: None,
        file_dir: Some(outbox.to_str().expect("utf-8 path").into()),
    })
    .expect("file mailer");
    mailer
        .send(&sign_in_email("erin@example.com"))
        .await
        .expect("send");

    let emls: Vec<_> = std::fs::read_dir(&outbox)
        .expect("outbox exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    assert_eq!(emls.len(), 1, "{emls:?}");

    // Parsed by Python's email package, as a mail client would.
    let python = tools_dir().join("venv/bin/python");
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(
            "import sys, email, email.policy\n\
             m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)\n\
             print(m['to']); print(m['subject']); print(m.get_content_type())\n\
             print(m.get_body(('plain',)).get_content())",
        )
        .arg(&emls[0])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup)", python.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed = String::from_utf8_lossy(&out.stdout);
    let mut lines = parsed.lines();
    assert_eq!(lines.next(), Some("erin@example.com"));
    assert_eq!(lines.next(), Some("Your sign-in link for app.example.com"));
    assert_eq!(lines.next(), Some("multipart/alternative"));
    assert!(parsed.lines().any(|l| l == LINK), "{parsed}");
}

#[test]
fn bad_configs_name_the_key() {
    let base = MailConfig {
        transport: "smtp".into(),
        from: "login@example.com".into(),
        smtp_url: Some("smtp://127.0.0.1:25".into()),
        ca_file: None,
        file_dir: None,
    };
    let mut cases: Vec<(MailConfig, &str)> = vec![
        (
            MailConfig {
                smtp_url: None,
                ..base.clone()
            },
            "mail.smtp_url: required when mail.transport = \"smtp\"",
        ),
        (
            MailConfig {
                from: "x".into(),
                ..base.clone()
            },
            "mail.from: \"x\" is not an address like \"Name <login@example.com>\"",
        ),
        (
            MailConfig {
                transport: "smtpp".into(),
                ..base.clone()
            },
            "mail.transport: \"smtpp\" is not a transport; expected one of smtp, console, file",
        ),
        (
            MailConfig {
                transport: "file".into(),
                ..base.clone()
            },
            "mail.file_dir: required when mail.transport = \"file\"",
        ),
        (
            MailConfig {
                smtp_url: Some("http://user:pw@mail.example.com".into()),
                ..base.clone()
            },
            "mail.smtp_url: \"http://user:***@mail.example.com\" is not an smtp:// or smtps:// URL",
        ),
    ];
    cases.push((
        MailConfig {
            smtp_url: Some("smtp://user:pw@mail.example.com?tls=sometimes".into()),
            ..base.clone()
        },
        "mail.smtp_url: \"smtp://user:***@mail.example.com?tls=sometimes\": ",
    ));
    for (cfg, want) in cases {
        let err = Mailer::from_config(&cfg).expect_err(want);
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(err[0].starts_with(want), "got {:?}, want {want:?}", err[0]);
        assert!(!err[0].contains("pw@"), "password leaked: {}", err[0]);
    }

    for url in [
        "smtps://user:pass@smtp.example.com:465",
        "smtp://user:pass@smtp.example.com:587?tls=required",
        "smtp://127.0.0.1:2525",
    ] {
        let m = Mailer::from_config(&MailConfig {
            smtp_url: Some(url.into()),
            ..base.clone()
        });
        assert!(m.is_ok(), "{url}: {:?}", m.err());
    }
}

/// STARTTLS (`?tls=required`) and implicit TLS (`smtps://`) to a relay whose
/// certificate comes from a private CA named in `mail.ca_file`; without it
/// the certificate is refused and nothing is sent in the clear.
#[tokio::test]
async fn mail_goes_over_starttls_and_smtps_to_a_relay_with_a_private_ca() {
    let ca = crate::support::tls::TestCa::new();
    let dir = crate::support::temp_dir();
    let (cert, key) = ca.leaf("smtp.test").write(dir.path());
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    for (mode, url) in [
        ("starttls", "smtp://127.0.0.1:{port}?tls=required"),
        ("implicit", "smtps://127.0.0.1:{port}"),
    ] {
        let sink = SmtpSink::start_tls(mode, &cert, &key);
        let url = url.replace("{port}", &sink.port.to_string());
        let trusting = Mailer::from_config(&smtp_config(&url, Some(&ca_file))).expect("mailer");
        let to = format!("{mode}@example.com");
        trusting
            .send(&sign_in_email(&to))
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        let got = sink.wait_for(&to, Duration::from_secs(10)).await;
        assert!(got.text.contains(LINK), "{mode}: the link arrives");

        let public_roots = smtp_mailer(&url);
        let err = public_roots
            .send(&sign_in_email("nobody@example.com"))
            .await;
        let err = err.expect_err("a certificate from an unknown CA is refused");
        // Refused at the TLS handshake, before any MAIL command: there is
        // nothing still on its way to wait for.
        assert!(
            format!("{err:?}")
                .to_ascii_lowercase()
                .contains("certificate"),
            "{mode}: {err:?}"
        );
        assert!(
            sink.messages()
                .iter()
                .all(|m| !m.to.iter().any(|t| t.contains("nobody"))),
            "{mode}: nothing was sent without a verified certificate"
        );
    }

    let plain = Mailer::from_config(&smtp_config("smtp://127.0.0.1:25", Some(&ca_file)));
    let Err(problems) = plain else {
        panic!("ca_file without TLS must be refused");
    };
    let problems = problems.join("\n");
    assert!(
        problems.contains("mail.ca_file: set, but mail.smtp_url"),
        "{problems}"
    );
}
