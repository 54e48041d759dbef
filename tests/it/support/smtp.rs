//! A real SMTP server for tests: `tests/support/smtp_sink.py` (aiosmtpd) on a
//! loopback port, writing each message it receives, decoded, to a JSON file
//! that [`SmtpSink::messages`] and [`SmtpSink::wait_for`] read back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{free_port, tools_dir, wait_for_port, ChildGuard};

/// One received message. `text` and `html` are the decoded parts (empty when
/// the message has no such part); `raw` is the message as sent.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Message {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub raw: String,
}

/// A running SMTP sink; stopped when dropped.
pub struct SmtpSink {
    pub port: u16,
    dir: TempDir,
    guard: ChildGuard,
    /// How many mails to each address `wait_for` has handed out.
    taken: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl SmtpSink {
    /// Starts the sink on a free port.
    pub fn start() -> SmtpSink {
        SmtpSink::start_on(free_port())
    }

    /// Starts the sink on `port` (for tests where a client was told the port
    /// before the server existed).
    pub fn start_on(port: u16) -> SmtpSink {
        SmtpSink::start_with(port, &[])
    }

    /// A sink that speaks TLS with `cert`/`key` (PEM files): `starttls`
    /// (offered and required before any mail) or `implicit` (smtps).
    pub fn start_tls(mode: &str, cert: &std::path::Path, key: &std::path::Path) -> SmtpSink {
        let (cert, key) = (cert.to_string_lossy(), key.to_string_lossy());
        SmtpSink::start_with(
            free_port(),
            &["--tls", mode, "--cert", &cert, "--key", &key],
        )
    }

    fn start_with(port: u16, extra: &[&str]) -> SmtpSink {
        let python = tools_dir().join("venv/bin/python");
        if !python.is_file() {
            panic!(
                "{} is missing: run scripts/setup (pip install aiosmtpd in .tools/venv)",
                python.display()
            );
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let dir = super::temp_dir();
        let guard = ChildGuard::spawn(
            "smtp_sink.py",
            Command::new(&python)
                .arg(&script)
                .arg("--port")
                .arg(port.to_string())
                .arg("--dir")
                .arg(dir.path())
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null()),
        );
        wait_for_port(([127, 0, 0, 1], port).into(), "smtp_sink.py");
        SmtpSink {
            port,
            dir,
            guard,
            taken: Default::default(),
        }
    }

    /// `smtp://127.0.0.1:<port>`, for `mail.smtp_url`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The directory each message is written to, as `N.json` (for
    /// programs outside the test, like the browser tests' scripts).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The process id (to stop it early in tests).
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// Every sign-in message received so far, in order of arrival: the
    /// new-device notices latchkey sends after a sign-in are left out
    /// (they are [`SmtpSink::notices`]), so a test that signs in twice
    /// still reads links.
    pub fn messages(&self) -> Vec<Message> {
        self.all_messages()
            .into_iter()
            .filter(|m| !is_notice(m))
            .collect()
    }

    /// The new-device notices sent to `to` so far.
    pub fn notices(&self, to: &str) -> Vec<Message> {
        self.all_messages()
            .into_iter()
            .filter(|m| is_notice(m) && m.to.iter().any(|t| t.eq_ignore_ascii_case(to)))
            .collect()
    }

    /// Every message received so far, in order of arrival.
    fn all_messages(&self) -> Vec<Message> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(self.dir.path())
            .expect("read sink dir")
            .filter_map(|e| {
                let path = e.ok()?.path();
                if path.extension()? != "json" {
                    return None;
                }
                let n = path.file_stem()?.to_str()?.parse().ok()?;
                Some((n, path))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, path)| {
                let text = std::fs::read_to_string(&path).expect("read message");
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            })
            .collect()
    }

    /// Waits for the first message addressed to `to`, or panics after
    /// `timeout` listing what did arrive.
    /// The next mail to `to` that this sink has not handed out yet.
    pub async fn wait_for(&self, to: &str, timeout: Duration) -> Message {
        let deadline = Instant::now() + timeout;
        let key = to.to_ascii_lowercase();
        loop {
            let messages = self.messages();
            let seen = *self.taken.lock().unwrap().get(&key).unwrap_or(&0);
            if let Some(m) = messages
                .iter()
                .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(to)))
                .nth(seen)
            {
                self.taken.lock().unwrap().insert(key, seen + 1);
                return m.clone();
            }
            if Instant::now() >= deadline {
                let got: Vec<_> = messages.iter().map(|m| &m.to).collect();
                panic!("no mail to {to} within {timeout:?}; received: {got:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A new-device notice (latchkey's "New sign-in to ..." email).
/// A security notice: a sign-in from a new browser, or a passkey added.
fn is_notice(m: &Message) -> bool {
    m.subject.starts_with("New sign-in to ") || m.subject.starts_with("New passkey on ")
}
