//! A real `redis-server` on a free loopback port, without persistence, in
//! its own temporary directory; killed when dropped. `stop` and `restart`
//! (same port, empty data) let tests play a Redis outage.
#![allow(clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{free_port, require_program, temp_dir, wait_for_port, ChildGuard};

pub struct RedisServer {
    pub port: u16,
    guard: Option<ChildGuard>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let dir = temp_dir();
        let port = free_port();
        let guard = spawn(port, dir.path());
        RedisServer {
            port,
            guard: Some(guard),
            dir,
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

    /// Starts a fresh server (no data) on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.guard = Some(spawn(self.port, self.dir.path()));
    }
}

fn spawn(port: u16, dir: &Path) -> ChildGuard {
    let program = require_program("redis-server", &[], "apt-get install redis-server");
    let guard = ChildGuard::spawn(
        "redis-server",
        Command::new(program)
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_for_port(SocketAddr::from(([127, 0, 0, 1], port)), "redis-server");
    guard
}
