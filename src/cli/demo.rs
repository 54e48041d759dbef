//! `latchkey demo`: the whole product with no set-up — the memory store,
//! sign-in links printed to the terminal, and the built-in echo app behind it.
//! It only writes the config and starts the pieces: serving is `serve.rs`'s,
//! the echo app `echo.rs`'s.

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::net::TcpListener;

use super::serve::start;
use crate::app::settings::Settings;
use crate::config::{AppConfig, FileConfig, RuleConfig, UserConfig};

pub(crate) async fn demo(listen: SocketAddr) -> anyhow::Result<()> {
    let echo = TcpListener::bind("127.0.0.1:0")
        .await
        .context("starting the echo app")?;
    let echo_addr = echo.local_addr()?;
    tokio::spawn(super::echo::serve(echo, std::future::pending()));

    let port = listen.port();
    let upstream = format!("http://{echo_addr}");
    let mut cfg = FileConfig::default();
    cfg.server.listen = listen.to_string();
    cfg.server.public_url = format!("http://localhost:{port}");
    cfg.login.signup = "open".into();
    // One browser, one person: a "new device" email would only be noise.
    cfg.login.new_device_email = false;
    cfg.mail.transport = "console".into();
    cfg.users = vec![UserConfig {
        email: "alice@example.com".into(),
        roles: vec!["admin".into(), "member".into()],
    }];
    cfg.apps = ["localhost", "127.0.0.1"]
        .into_iter()
        .map(|host| AppConfig {
            host: host.into(),
            upstream: Some(upstream.clone()),
            ca_file: None,
        })
        .collect();
    cfg.rules = vec![
        RuleConfig {
            path: Some("/public/**".into()),
            policy: "public".into(),
            ..RuleConfig::default()
        },
        RuleConfig {
            path: Some("/admin/**".into()),
            policy: "roles".into(),
            roles: Some(vec!["admin".into()]),
            ..RuleConfig::default()
        },
    ];
    let settings =
        Settings::compile(&cfg).map_err(|p| anyhow::anyhow!("demo config: {}", p.join("; ")))?;
    println!(
        "\n  latchkey demo\n\n  \
         Open  http://localhost:{port}/  in your browser and sign in with any email address.\n  \
         The sign-in link is printed here (no mail is sent). alice@example.com is an admin;\n  \
         anyone else is a member. Try /admin/ (admins only) and /public/ (no sign-in).\n  \
         The app behind latchkey is a built-in echo: it shows the headers it received.\n  \
         Stop with Ctrl-C.\n"
    );
    start(settings, None, None).await
}
