//! Real Redis topologies on loopback ports: Sentinel (a master, a replica
//! and one sentinel, `redis-server --sentinel`), a 3-master Cluster
//! (`redis-server --cluster-enabled yes` ×3 joined by `redis-cli --cluster
//! create`), or 3 masters with a replica each, one of which can be killed, and a TLS server with a CA made here by `openssl`. Every
//! process is killed when its value drops.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, require_program, temp_dir, wait_for_port, ChildGuard};

fn redis_server() -> PathBuf {
    require_program("redis-server", &[], "apt-get install redis-server")
}

/// Runs `redis-cli -p PORT args...` and returns its stdout.
pub fn cli(port: u16, args: &[&str]) -> String {
    let program = require_program("redis-cli", &[], "apt-get install redis-tools");
    let out = Command::new(program)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn spawn(name: &str, dir: &Path, args: &[String]) -> ChildGuard {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log");
    ChildGuard::spawn(
        name,
        Command::new(redis_server())
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log)),
    )
}

fn plain_args(port: u16, dir: &Path) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir.display().to_string(),
    ]
    .map(String::from)
    .to_vec()
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A master, one replica and one sentinel watching them as `mymaster`
/// (quorum 1, down after 1 s).
pub struct SentinelSetup {
    pub master_port: u16,
    pub replica_port: u16,
    pub sentinel_port: u16,
    master: Option<ChildGuard>,
    _replica: ChildGuard,
    _sentinel: ChildGuard,
    pub dir: tempfile::TempDir,
}

impl SentinelSetup {
    pub fn start() -> SentinelSetup {
        let dir = temp_dir();
        let (mp, rp, sp) = (free_port(), free_port(), free_port());
        let mdir = dir.path().join("master");
        let rdir = dir.path().join("replica");
        std::fs::create_dir_all(&mdir).unwrap();
        std::fs::create_dir_all(&rdir).unwrap();
        let master = spawn("master", &mdir, &plain_args(mp, &mdir));
        wait_for_port(SocketAddr::from(([127, 0, 0, 1], mp)), "redis master");
        let mut replica_args = plain_args(rp, &rdir);
        replica_args.extend(["--replicaof", "127.0.0.1", &mp.to_string()].map(String::from));
        let replica = spawn("replica", &rdir, &replica_args);
        wait_for_port(SocketAddr::from(([127, 0, 0, 1], rp)), "redis replica");
        wait_until("the replica to sync", Duration::from_secs(15), || {
            cli(rp, &["info", "replication"]).contains("master_link_status:up")
        });
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {sp}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor mymaster 127.0.0.1 {mp} 1\n\
                 sentinel down-after-milliseconds mymaster 1000\n\
                 sentinel failover-timeout mymaster 5000\n\
                 sentinel parallel-syncs mymaster 1\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let sentinel = spawn(
            "sentinel",
            dir.path(),
            &[conf.display().to_string(), "--sentinel".into()],
        );
        wait_for_port(SocketAddr::from(([127, 0, 0, 1], sp)), "redis sentinel");
        wait_until(
            "the sentinel to see the replica",
            Duration::from_secs(15),
            || cli(sp, &["sentinel", "replicas", "mymaster"]).contains(&rp.to_string()),
        );
        SentinelSetup {
            master_port: mp,
            replica_port: rp,
            sentinel_port: sp,
            master: Some(master),
            _replica: replica,
            _sentinel: sentinel,
            dir,
        }
    }

    /// The `[redis]` table for latchkey.
    pub fn toml(&self) -> String {
        format!(
            "[redis]\nsentinel = {{ master = \"mymaster\", nodes = [\"redis://127.0.0.1:{}\"] }}",
            self.sentinel_port
        )
    }

    /// Waits until the replica has everything the master wrote.
    pub fn sync(&self) {
        let acked = cli(self.master_port, &["wait", "1", "5000"]);
        assert_eq!(acked.trim(), "1", "replica acknowledged the writes");
    }

    /// Kills the master (SIGKILL): the sentinel must promote the replica.
    pub fn kill_master(&mut self) {
        self.master = None;
    }
}

/// The port the sentinel on `sentinel_port` names as master now.
pub fn current_master(sentinel_port: u16) -> u16 {
    let out = cli(
        sentinel_port,
        &["sentinel", "get-master-addr-by-name", "mymaster"],
    );
    out.lines()
        .nth(1)
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0)
}

/// The ports of the cluster nodes that serve slots now as masters (not
/// failed), as the node on `node` sees the cluster.
pub fn serving_masters(node: u16) -> Vec<u16> {
    let mut masters: Vec<u16> = cli(node, &["cluster", "nodes"])
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let flags = f.get(2)?;
            let serving = flags.contains("master") && !flags.contains("fail") && f.len() > 8;
            serving.then(|| f[1].split(['@', ':']).nth(1)?.parse().ok())?
        })
        .collect();
    masters.sort_unstable();
    masters
}

/// Three masters, slots split evenly, with `replicas` replicas each.
pub struct Cluster {
    pub ports: Vec<u16>,
    nodes: Vec<Option<ChildGuard>>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub fn start() -> Cluster {
        Cluster::start_with_replicas(0)
    }

    pub fn start_with_replicas(replicas: usize) -> Cluster {
        let dir = temp_dir();
        let ports: Vec<u16> = (0..3 * (1 + replicas)).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for &p in &ports {
            let d = dir.path().join(p.to_string());
            std::fs::create_dir_all(&d).unwrap();
            let mut args = plain_args(p, &d);
            args.extend(
                [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                ]
                .map(String::from),
            );
            nodes.push(Some(spawn("cluster-node", &d, &args)));
            wait_for_port(SocketAddr::from(([127, 0, 0, 1], p)), "redis cluster node");
        }
        let program = require_program("redis-cli", &[], "apt-get install redis-tools");
        let out = Command::new(program)
            .args(["--cluster", "create"])
            .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        for &p in &ports {
            wait_until("the cluster to be ok", Duration::from_secs(20), || {
                cli(p, &["cluster", "info"]).contains("cluster_state:ok")
            });
        }
        let cluster = Cluster {
            ports,
            nodes,
            _dir: dir,
        };
        if replicas > 0 {
            wait_until("every replica in sync", Duration::from_secs(20), || {
                cluster.ports.iter().all(|&p| {
                    let info = cli(p, &["info", "replication"]);
                    info.contains("role:master") || info.contains("master_link_status:up")
                })
            });
        }
        cluster
    }

    /// Kills (SIGKILL) the node on `port`.
    pub fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|&p| p == port).expect("a node");
        self.nodes[i] = None;
    }

    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The `[redis]` table for latchkey.
    pub fn toml(&self) -> String {
        let nodes: Vec<String> = self.urls().iter().map(|u| format!("\"{u}\"")).collect();
        format!("[redis]\ncluster = [{}]", nodes.join(", "))
    }

    /// How many keys each node holds.
    pub fn keys_per_node(&self) -> Vec<u64> {
        self.ports
            .iter()
            .map(|&p| cli(p, &["dbsize"]).trim().parse().unwrap_or(0))
            .collect()
    }
}

/// A redis-server speaking only TLS, with a certificate for 127.0.0.1
/// signed by a CA made for this test.
pub struct TlsRedis {
    pub port: u16,
    pub ca_file: PathBuf,
    _server: ChildGuard,
    _dir: tempfile::TempDir,
}

impl TlsRedis {
    pub fn start() -> TlsRedis {
        let dir = temp_dir();
        let d = dir.path();
        let openssl = require_program("openssl", &[], "apt-get install openssl");
        let run = |args: &[&str]| {
            let out = Command::new(&openssl)
                .args(args)
                .current_dir(d)
                .output()
                .expect("openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=latchkey test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(d.join("ext.cnf"), "subjectAltName = IP:127.0.0.1\n").unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ]);
        let port = free_port();
        let mut args = plain_args(0, d);
        args.extend(
            [
                "--tls-port",
                &port.to_string(),
                "--tls-cert-file",
                "server.pem",
                "--tls-key-file",
                "server.key",
                "--tls-ca-cert-file",
                "ca.pem",
                "--tls-auth-clients",
                "no",
            ]
            .map(String::from),
        );
        let server = spawn("tls-redis", d, &args);
        wait_for_port(
            SocketAddr::from(([127, 0, 0, 1], port)),
            "redis-server (TLS)",
        );
        TlsRedis {
            port,
            ca_file: d.join("ca.pem"),
            _server: server,
            _dir: dir,
        }
    }
}
