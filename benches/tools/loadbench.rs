//! Helpers for `benches/load.sh` (not a test, not run in CI):
//!
//! - `upstream ADDR`: the bare hyper server, the baseline and the upstream.
//!   HTTP/1.1 keep-alive, `TCP_NODELAY`, answers every request with 200 "ok".
//! - `sessions REDIS_URL KEY_PREFIX EMAIL COUNT`: creates COUNT live sessions
//!   for EMAIL through latchkey's own store (the exact format it reads back),
//!   prints the first one's cookie value.
//! - `ready ADDR -- CMD ARGS..`: starts CMD, prints the milliseconds until
//!   ADDR answers an HTTP request (`GET /.latchkey/me`), then kills CMD.

use std::convert::Infallible;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use latchkey::session::{user_id, Secret, SessionRecord};
use latchkey::store::{RedisStore, Store};

type Fail = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadbench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match args
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["upstream", addr] => upstream(addr).await,
            ["sessions", url, prefix, email, count] => sessions(url, prefix, email, count).await,
            ["ready", addr, "--", cmd @ ..] if !cmd.is_empty() => ready(addr, cmd).await,
            _ => Err(
                "usage: loadbench upstream ADDR | sessions REDIS_URL KEY_PREFIX EMAIL COUNT \
                      | ready ADDR -- CMD ARGS.."
                    .into(),
            ),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadbench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn upstream(addr: &str) -> Result<(), Fail> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
                Ok::<_, Infallible>(Response::new(http_body_util::Full::new(
                    bytes::Bytes::from_static(b"ok"),
                )))
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn sessions(url: &str, prefix: &str, email: &str, count: &str) -> Result<(), Fail> {
    let count: usize = count.parse()?;
    let store = std::sync::Arc::new(RedisStore::new(url, prefix)?);
    let now = latchkey::unix_ms(std::time::SystemTime::now());
    let record = SessionRecord {
        user_id: user_id(email),
        email: email.to_owned(),
        created_at: now,
        expires_at: now + 12 * 3600 * 1000,
        ip: "127.0.0.1".into(),
        user_agent: "loadbench".into(),
    };
    let idle = Duration::from_secs(3600);
    let first = Secret::generate(&mut rand::rng());
    store
        .create_session(&first.hash(), &record, idle, now)
        .await?;
    let mut made = 1;
    while made < count {
        let batch = (count - made).min(2000);
        let mut tasks = JoinSet::new();
        for _ in 0..batch {
            let store = store.clone();
            let record = record.clone();
            tasks.spawn(async move {
                let token = Secret::generate(&mut rand::rng());
                store
                    .create_session(&token.hash(), &record, idle, now)
                    .await
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        made += batch;
    }
    println!("{}", first.expose());
    Ok(())
}

async fn ready(addr: &str, cmd: &[&str]) -> Result<(), Fail> {
    let start = Instant::now();
    let mut child = tokio::process::Command::new(cmd[0])
        .args(&cmd[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let deadline = start + Duration::from_secs(10);
    let result = loop {
        if answers(addr).await {
            break Ok(start.elapsed());
        }
        if Instant::now() > deadline {
            break Err(format!("{addr} did not answer within 10s"));
        }
        if let Some(status) = child.try_wait()? {
            break Err(format!("{} exited with {status}", cmd[0]));
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    };
    let _ = child.kill().await;
    let elapsed = result?;
    println!("{:.1}", elapsed.as_secs_f64() * 1000.0);
    Ok(())
}

/// Whether `addr` answers an HTTP request with a status line.
async fn answers(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return false;
    };
    let req = b"GET /.latchkey/me HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n";
    if s.write_all(req).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    let mut got = 0;
    while got < 9 {
        match s.read(&mut buf[got..]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    buf.starts_with(b"HTTP/1.1 ")
}
