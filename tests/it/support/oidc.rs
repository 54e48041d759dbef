//! A real OpenID provider for tests: panva's oidc-provider (npm, installed
//! by scripts/setup in tests/oidc/) run by `tests/oidc/provider.mjs` on a
//! free loopback port, with the clients and users listed there. `login`
//! plays the person: a cookie-keeping HTTP client (`Browser`) posts the
//! provider's devInteractions login and consent forms and returns the
//! redirect to the client's callback, which nobody fetches.
//!
//! Its signing key lives in a file: `restart` keeps it, `rotate_key`
//! restarts with a fresh one (a new `kid`), and `start_sharing_key_with`
//! starts a second provider (another issuer) that signs with the first's
//! key, the set-up of an issuer mix-up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use url::Url;

use super::http::Browser;
use super::{free_port, require_program, temp_dir, ChildGuard};

/// The callback registered for every client (never contacted).
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/.latchkey/oauth/corp/callback";
pub const CLIENT_ID: &str = "latchkey";
pub const CLIENT_SECRET: &str = "latchkey-secret";
pub const OTHER_CLIENT_ID: &str = "other-app";
pub const OTHER_CLIENT_SECRET: &str = "other-secret";

/// A running provider; stopped when dropped.
pub struct OidcProvider {
    pub port: u16,
    /// `http://127.0.0.1:{port}`, exactly as the provider writes it.
    pub issuer: String,
    key: PathBuf,
    auth_methods: Vec<String>,
    redirect_uris: Vec<String>,
    dir: TempDir,
    guard: Option<ChildGuard>,
}

impl OidcProvider {
    /// A provider offering both client_secret_basic and _post, with a
    /// fresh key.
    pub fn start() -> OidcProvider {
        OidcProvider::start_with(&[], None)
    }

    /// A provider whose token endpoint offers only `methods`.
    pub fn start_with_auth_methods(methods: &[&str]) -> OidcProvider {
        OidcProvider::start_with(methods, None)
    }

    /// Another provider (its own port and issuer) signing with `other`'s key.
    pub fn start_sharing_key_with(other: &OidcProvider) -> OidcProvider {
        OidcProvider::start_with(&[], Some(other.key.clone()))
    }

    /// A provider whose clients also accept `redirect_uri` (latchkey's own
    /// callback, for the tests that run the whole flow through it) and, as
    /// where to return after logout, `/.latchkey/signed-out` on its origin.
    pub fn start_for(redirect_uri: &str) -> OidcProvider {
        let mut p = OidcProvider::unstarted(&[], None);
        p.redirect_uris.push(redirect_uri.to_owned());
        let signed_out = Url::parse(redirect_uri)
            .unwrap()
            .join("/.latchkey/signed-out")
            .unwrap();
        p.redirect_uris.push(signed_out.to_string());
        p.spawn();
        p
    }

    fn start_with(methods: &[&str], key: Option<PathBuf>) -> OidcProvider {
        let mut p = OidcProvider::unstarted(methods, key);
        p.spawn();
        p
    }

    fn unstarted(methods: &[&str], key: Option<PathBuf>) -> OidcProvider {
        let dir = temp_dir();
        let port = free_port();
        OidcProvider {
            port,
            issuer: format!("http://127.0.0.1:{port}"),
            key: key.unwrap_or_else(|| dir.path().join("key.json")),
            auth_methods: methods.iter().map(|m| m.to_string()).collect(),
            redirect_uris: vec![REDIRECT_URI.to_owned()],
            dir,
            guard: None,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// The key id the provider signs with now.
    pub fn kid(&self) -> String {
        let jwk: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&self.key).unwrap()).unwrap();
        jwk["kid"].as_str().unwrap().to_owned()
    }

    /// Kills the provider (a provider that is down).
    pub fn stop(&mut self) {
        self.guard = None;
    }

    /// Freezes the provider (SIGSTOP): its port still accepts connections
    /// but nothing answers, a provider that is slow past any timeout.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused provider run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.guard.as_ref().expect("the provider runs").pid();
        let ok = Command::new("kill")
            .arg(sig)
            .arg(pid.to_string())
            .status()
            .expect("kill(1)")
            .success();
        assert!(ok, "kill {sig} {pid} failed");
    }

    /// Starts it again on the same port with the same key. Its sessions and
    /// codes are gone (it keeps them in memory).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Restarts with a fresh key: the old `kid` is no longer published.
    pub fn rotate_key(&mut self) {
        self.stop();
        std::fs::remove_file(&self.key).unwrap();
        self.spawn();
    }

    fn spawn(&mut self) {
        let node = require_program("node", &[], "Debian's nodejs");
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        if !root.join("node_modules/oidc-provider").is_dir() {
            panic!(
                "oidc-provider is not installed in {}: run scripts/setup (npm ci in tests/oidc)",
                root.display()
            );
        }
        let log = self.dir.path().join("provider.log");
        let mut cmd = Command::new(node);
        cmd.arg(root.join("provider.mjs"))
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--key")
            .arg(&self.key)
            .current_dir(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for uri in &self.redirect_uris {
            cmd.arg("--redirect-uri").arg(uri);
        }
        for m in &self.auth_methods {
            cmd.arg("--auth-method").arg(m);
        }
        self.guard = Some(ChildGuard::spawn("oidc-provider", &mut cmd));
        wait_for_discovery(self.addr(), &log);
    }

    /// Logs `account` in (any password) and consents, starting from the
    /// authorization URL a client made; returns the URL the provider
    /// redirects the browser to (the callback, with `code`, `state`, `iss`).
    pub async fn login(&self, authorization_url: &Url, account: &str) -> Url {
        let browser = Browser::new(self.addr());
        let mut next = target_of(authorization_url);
        for _ in 0..12 {
            let resp = browser.get(&next, &[]).await;
            let location = match resp.status {
                302 | 303 => resp.header("location").unwrap().to_owned(),
                200 if resp.body.contains(r#"name="prompt" value="login""#) => {
                    let action = form_action(&resp.body);
                    let r = browser
                        .post_form(
                            &action,
                            &[("prompt", "login"), ("login", account), ("password", "any")],
                            &[],
                        )
                        .await;
                    assert_eq!(
                        r.status, 303,
                        "login form answered {}: {}",
                        r.status, r.body
                    );
                    r.header("location").unwrap().to_owned()
                }
                200 if resp.body.contains(r#"name="prompt" value="consent""#) => {
                    let action = form_action(&resp.body);
                    let r = browser
                        .post_form(&action, &[("prompt", "consent")], &[])
                        .await;
                    assert_eq!(
                        r.status, 303,
                        "consent form answered {}: {}",
                        r.status, r.body
                    );
                    r.header("location").unwrap().to_owned()
                }
                s => panic!("the provider answered {s} to {next}:\n{}", resp.body),
            };
            let url = Url::parse(&self.issuer).unwrap().join(&location).unwrap();
            if url.port_or_known_default() != Some(self.port) {
                return url;
            }
            next = target_of(&url);
        }
        panic!(
            "no redirect to the callback after 12 steps at {}",
            self.issuer
        );
    }
}

/// Path and query of `url`.
fn target_of(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// The path of the first form's `action`.
fn form_action(html: &str) -> String {
    let start = html.find("action=\"").expect("a form") + "action=\"".len();
    let end = start + html[start..].find('"').unwrap();
    let action = html[start..end].replace("&amp;", "&");
    match Url::parse(&action) {
        Ok(u) => target_of(&u),
        Err(_) => action,
    }
}

/// Waits until discovery answers 200, or panics with the provider's log.
fn wait_for_discovery(addr: SocketAddr, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let req = format!(
                "GET /.well-known/openid-configuration HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            );
            let mut out = String::new();
            if s.write_all(req.as_bytes()).is_ok()
                && s.read_to_string(&mut out).is_ok()
                && out.starts_with("HTTP/1.1 200")
            {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "oidc-provider did not answer discovery on {addr} within 60s; its log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}
