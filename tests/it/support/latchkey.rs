//! Runs the real `latchkey` binary with a config file, on a free port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use super::{free_port, temp_dir, ChildGuard};

/// The `listen=` address of a ready file latchkey wrote, once it exists.
pub fn read_ready(path: &std::path::Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("listen="))
        .and_then(|a| a.parse().ok())
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_latchkey"))
}

/// `latchkey check --config FILE`.
pub fn check(config: &std::path::Path) -> Output {
    Command::new(binary())
        .args(["check", "--config"])
        .arg(config)
        .env_remove("LATCHKEY_CONFIG")
        .output()
        .expect("run latchkey check")
}

pub struct Latchkey {
    pub addr: SocketAddr,
    pub port: u16,
    pub dir: tempfile::TempDir,
    guard: ChildGuard,
}

impl Latchkey {
    /// Starts `latchkey serve` with the config `make(port)` returns (it
    /// must listen on 127.0.0.1:port) and waits until latchkey says, in its
    /// `--ready-file`, that it serves. A port taken between choosing it and
    /// latchkey binding it is chosen again.
    pub fn start(make: impl Fn(u16) -> String) -> Latchkey {
        Latchkey::start_with_env(make, &[])
    }

    /// `start` on a given port (to restart on the same one).
    pub fn start_on(port: u16, make: impl Fn(u16) -> String) -> Latchkey {
        Latchkey::start_on_with_env(port, make, &[])
    }

    /// `start_on` with extra environment variables (as `start_with_env`).
    pub fn start_on_with_env(
        port: u16,
        make: impl Fn(u16) -> String,
        env: &[(&str, &str)],
    ) -> Latchkey {
        Latchkey::launch(port, &make, env)
            .unwrap_or_else(|log| panic!("latchkey could not listen on 127.0.0.1:{port}:\n{log}"))
    }

    /// `start` with extra environment variables, set after the defaults
    /// (so `LATCHKEY_LOG` here replaces the default `debug` filter).
    pub fn start_with_env(make: impl Fn(u16) -> String, env: &[(&str, &str)]) -> Latchkey {
        let mut last = String::new();
        for _ in 0..5 {
            match Latchkey::launch(free_port(), &make, env) {
                Ok(lk) => return lk,
                Err(log) => last = log,
            }
        }
        panic!("latchkey found no free port in 5 tries:\n{last}")
    }

    /// One start; `Err(log)` only when the port was taken meanwhile.
    fn launch(
        port: u16,
        make: &dyn Fn(u16) -> String,
        env: &[(&str, &str)],
    ) -> Result<Latchkey, String> {
        let dir = temp_dir();
        let path = dir.path().join("latchkey.toml");
        std::fs::write(&path, make(port)).expect("write config");
        let ready = dir.path().join("ready");
        let log = std::fs::File::create(dir.path().join("latchkey.log")).expect("log file");
        let mut guard = ChildGuard::spawn(
            "latchkey",
            Command::new(binary())
                .args(["serve", "--config"])
                .arg(&path)
                .arg("--ready-file")
                .arg(&ready)
                .env("LATCHKEY_LOG", "debug,hyper=info,h2=info,redis=info")
                .envs(env.iter().copied())
                .stdout(Stdio::from(log.try_clone().expect("log")))
                .stderr(Stdio::from(log)),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        let addr = loop {
            let log =
                || std::fs::read_to_string(dir.path().join("latchkey.log")).unwrap_or_default();
            if let Some(addr) = read_ready(&ready) {
                break addr;
            }
            if let Ok(Some(status)) = guard.child.try_wait() {
                let log = log();
                if log.contains("Address already in use") {
                    return Err(log);
                }
                panic!("latchkey exited ({status}) instead of serving:\n{log}");
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "latchkey did not serve on port {port} within 15s:\n{}",
                    log()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        Ok(Latchkey {
            addr,
            port: addr.port(),
            dir,
            guard,
        })
    }

    /// Everything latchkey logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("latchkey.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// The config file latchkey was started with (rewrite it, then `signal("HUP")`).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("latchkey.toml")
    }

    /// Sends a signal by name (`HUP`, `TERM`) with the system's `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// Waits for the process to exit; `None` if it still runs after `within`.
    pub fn wait_exit(&mut self, within: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.guard.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// How many audit events `event` (`sign_in_refused`, ...) latchkey has
    /// logged about `email`, with `reason` when one is given. Reads text and
    /// JSON logs alike; the address is matched by its user id, as logged.
    pub fn audit_count(&self, event: &str, reason: Option<&str>, email: &str) -> usize {
        let id = latchkey::store::records::user_id(email);
        let has = |line: &str, key: &str, value: &str| {
            line.contains(&format!("{key}=\"{value}\""))
                || line.contains(&format!("\"{key}\":\"{value}\""))
        };
        self.log()
            .lines()
            .filter(|l| l.contains("latchkey::obs::audit"))
            .filter(|l| has(l, "event", event) && has(l, "user_id", &id))
            .filter(|l| reason.is_none_or(|r| has(l, "reason", r)))
            .count()
    }

    /// Waits until `audit_count(event, reason, email)` reaches `n`, or
    /// panics showing the log.
    pub async fn wait_for_audit(
        &self,
        event: &str,
        reason: Option<&str>,
        email: &str,
        n: usize,
        within: std::time::Duration,
    ) {
        let deadline = std::time::Instant::now() + within;
        while self.audit_count(event, reason, email) < n {
            if std::time::Instant::now() > deadline {
                panic!(
                    "latchkey logged {} of {n} audit events {event} ({reason:?}) for {email} within {within:?}:\n{}",
                    self.audit_count(event, reason, email),
                    self.log()
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Waits until latchkey's log contains `text`, or panics showing the log.
    pub fn wait_for_log(&self, text: &str, within: std::time::Duration) {
        let deadline = std::time::Instant::now() + within;
        while !self.log().contains(text) {
            if std::time::Instant::now() > deadline {
                panic!(
                    "latchkey never logged {text:?} within {within:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
