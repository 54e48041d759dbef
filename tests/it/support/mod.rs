//! Starting real dependencies for tests: each on a free loopback port, each
//! stopped when its guard drops, each failing with an install hint when its
//! program is missing (never skipped).
#![allow(dead_code)]

pub mod flaky;
pub mod github;
pub mod http;
pub mod latchkey;
pub mod load;
pub mod oidc;
pub mod proxies;
pub mod pyjwt;
pub mod redis;
pub mod redis_ha;
pub mod smtp;
pub mod tls;
pub mod traefik;
pub mod webauthn;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A port nobody listens on right now (bound then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Where scripts/setup put its tools (`.tools/` at the repo root).
pub fn tools_dir() -> PathBuf {
    std::env::var_os("LATCHKEY_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools"))
}

/// Finds a program on PATH (or at one of `extra` paths), or panics saying
/// how to install it.
pub fn require_program(name: &str, extra: &[PathBuf], hint: &str) -> PathBuf {
    for p in extra {
        if p.is_file() {
            return p.clone();
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths).chain([PathBuf::from("/usr/sbin")]) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("`{name}` is needed by this test and was not found. Install it with `scripts/setup` ({hint}).");
}

/// A child process killed (and reaped) when dropped.
pub struct ChildGuard {
    pub child: Child,
    pub name: String,
}

impl ChildGuard {
    pub fn spawn(name: &str, cmd: &mut Command) -> ChildGuard {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {name}: {e}"));
        ChildGuard {
            child,
            name: name.to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until something accepts TCP connections on `addr`, or panics.
pub fn wait_for_port(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{what} did not start listening on {addr} within 15s");
}

/// A fresh temporary directory removed on drop.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}
