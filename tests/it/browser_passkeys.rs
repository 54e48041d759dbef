//! Passkeys in a real browser: headless Chromium with its CDP virtual
//! authenticator (a CTAP2 platform authenticator with resident keys and
//! user verification), driven by `tests/browser/passkeys.mjs`, against
//! latchkey in front of the echo app at `app.localhost` (WebAuthn needs a
//! secure context; `*.localhost` over http is one) with a real SMTP
//! server. The same flow runs on Redis and on the embedded store: sign in
//! by link, add and rename a passkey, step up on an `mfa = true` rule to
//! the exact URL, sign out, sign in with the passkey by the button and by
//! autofill, a sign count that went back refused, the passkey removed and
//! refused. Screenshots (phone and desktop, light and dark) go beside the
//! other browser test's in `target/screenshots/`.

use std::ffi::OsStr;

use crate::browser::{assert_shots, run_node, screenshots};
use crate::flow::start_echo;
use crate::support::latchkey::Latchkey;
use crate::support::redis::RedisServer;
use crate::support::smtp::SmtpSink;
use crate::support::temp_dir;

const PAGES: [&str; 6] = [
    "account-passkey",
    "account-passkey-dark",
    "passkey-login",
    "passkey-login-dark",
    "step_up-passkey",
    "step_up-passkey-dark",
];

fn config(port: u16, store: &str, smtp: &str, echo: std::net::SocketAddr) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "http://auth.localhost:{port}"
trusted_proxies = ["127.0.0.1"]

{store}

[mail]
transport = "smtp"
smtp_url = "{smtp}"
from = "Example Sign-in <login@example.com>"

[[users]]
email = "bob@example.com"
roles = ["member"]

[[apps]]
host = "app.localhost"
upstream = "http://{echo}"

[[apps]]
host = "auth.localhost"

[[rules]]
path = "/vault/**"
policy = "authenticated"
mfa = true
"#
    )
}

async fn run(store: &str, shots: bool) {
    let smtp = SmtpSink::start();
    let echo = start_echo().await;
    let url = smtp.url();
    let lk = Latchkey::start(|port| config(port, store, &url, echo));
    let app_url = format!("http://app.localhost:{}", lk.port);
    let dir = screenshots();
    if shots {
        for page in PAGES {
            for size in ["phone", "desktop"] {
                let _ = std::fs::remove_file(dir.join(format!("{page}-{size}.png")));
            }
        }
    }
    let mut env: Vec<(&str, &OsStr)> = vec![("MAIL_DIR", smtp.dir().as_os_str())];
    if shots {
        env.push(("SHOT_DIR", dir.as_os_str()));
    }
    run_node("passkeys.mjs", &app_url, &lk, &env).await;
    // The refusals the browser saw were audited, with their reasons.
    for reason in ["sign_count_went_back", "unknown_credential"] {
        assert_eq!(
            lk.audit_count("passkey_refused", Some(reason), "bob@example.com"),
            1,
            "{reason}:\n{}",
            lk.log()
        );
    }
    assert!(
        lk.log().contains("passkey sign count went backwards"),
        "no warning for the cloned authenticator:\n{}",
        lk.log()
    );
    assert_eq!(lk.audit_count("passkey_added", None, "bob@example.com"), 1);
    assert_eq!(lk.audit_count("stepped_up", None, "bob@example.com"), 1);
    if shots {
        assert_shots(&dir, &PAGES);
    }
}

#[tokio::test]
async fn a_person_adds_and_uses_a_passkey_in_a_real_browser_on_redis() {
    let redis = RedisServer::start();
    run(&format!("[redis]\nurl = \"{}\"", redis.url()), true).await;
}

#[tokio::test]
async fn a_person_adds_and_uses_a_passkey_in_a_real_browser_on_the_embedded_store() {
    let dir = temp_dir();
    let path = dir.path().join("store");
    run(&format!("[store]\npath = \"{}\"", path.display()), false).await;
}
