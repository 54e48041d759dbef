//! A real `redis-server` on a free loopback port, without persistence
//! (or, from `start_persistent`, with an append-only file synced on every
//! write), in its own temporary directory; killed when dropped. `stop` and
//! `restart` (same port; empty data, or what the file kept) let tests play
//! a Redis outage.
#![allow(clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{free_port, require_program, temp_dir, wait_for_port, ChildGuard};

pub struct RedisServer {
    pub port: u16,
    guard: Option<ChildGuard>,
    dir: tempfile::TempDir,
    persistent: bool,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(false)
    }

    /// With `appendonly yes` and `appendfsync always`: a write Redis
    /// acknowledged survives SIGKILL and `restart`.
    pub fn start_persistent() -> RedisServer {
        Self::start_with(true)
    }

    fn start_with(persistent: bool) -> RedisServer {
        let dir = temp_dir();
        let port = free_port();
        let guard = spawn(port, dir.path(), persistent);
        RedisServer {
            port,
            guard: Some(guard),
            dir,
            persistent,
        }
    }

    /// `redis://127.0.0.1:PORT/0`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server; its port stays reserved for `restart`.
    pub fn stop(&mut self) {
        self.guard = None;
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Undoes `pause` (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let guard = self.guard.as_ref().expect("redis-server is running");
        let status = Command::new("kill")
            .args([which, &guard.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {which} failed");
    }

    /// Starts a fresh server on the same port (no data, unless persistent)
    /// and returns once it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// After `stop`: starts the server again on its port and returns once
    /// it accepts connections.
    pub fn start_again(&mut self) {
        self.guard = Some(spawn(self.port, self.dir.path(), self.persistent));
    }
}

fn spawn(port: u16, dir: &Path, persistent: bool) -> ChildGuard {
    let (appendonly, fsync) = match persistent {
        true => ("yes", "always"),
        false => ("no", "everysec"),
    };
    let program = require_program("redis-server", &[], "apt-get install redis-server");
    let guard = ChildGuard::spawn(
        "redis-server",
        Command::new(program)
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", appendonly])
            .args(["--appendfsync", fsync])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_for_port(SocketAddr::from(([127, 0, 0, 1], port)), "redis-server");
    guard
}
