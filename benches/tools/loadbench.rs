//! Helpers for `benches/load.sh` (not a test, not run in CI):
//!
//! - `upstream ADDR`: the bare hyper server, the baseline and the upstream.
//!   HTTP/1.1 keep-alive, `TCP_NODELAY`, answers every request with 200 "ok".
//! - `redis-floor ADDR REDIS_URL KEY`: the bare server plus, per request,
//!   the round trip latchkey's session lookup makes (`GET` and `PTTL` of
//!   KEY, pipelined, on redis-rs's multiplexed `ConnectionManager`). The
//!   least any answer checked against Redis costs with these libraries.
//! - `proxy-floor ADDR UPSTREAM`: the bare server forwarding every request
//!   to UPSTREAM (`http://host:port`) with hyper-util's pooled client, no
//!   auth, no header work. The least a hyper reverse proxy costs.
//! - `sessions REDIS_URL KEY_PREFIX EMAIL COUNT`: creates COUNT live sessions
//!   for EMAIL through latchkey's own store (the exact format it reads back),
//!   prints their cookie values, one a line.
//! - `ready ADDR -- CMD ARGS..`: starts CMD, prints the milliseconds until
//!   ADDR answers an HTTP request (`GET /.latchkey/me`), then kills CMD.

use std::convert::Infallible;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use latchkey::identity::secret::Secret;

use latchkey::store::records::{user_id, SessionRecord};
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
            ["redis-floor", addr, url, key] => redis_floor(addr, url, key).await,
            ["proxy-floor", addr, upstream] => proxy_floor(addr, upstream).await,
            ["sessions", url, prefix, email, count] => sessions(url, prefix, email, count).await,
            ["ready", addr, "--", cmd @ ..] if !cmd.is_empty() => ready(addr, cmd).await,
            _ => Err(
                "usage: loadbench upstream ADDR | redis-floor ADDR REDIS_URL KEY \
                      | proxy-floor ADDR UPSTREAM | sessions REDIS_URL KEY_PREFIX EMAIL COUNT \
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
    serve(addr, |_req| async {
        Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"ok")))
    })
    .await
}

/// Serves HTTP/1.1 on `addr`, like `upstream`, with `answer` per request.
async fn serve<F, Fut, B>(addr: &str, answer: F) -> Result<(), Fail>
where
    F: Fn(Request<hyper::body::Incoming>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let answer = answer.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let answer = answer.clone();
                async move { Ok::<_, Infallible>(answer(req).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn text(status: u16, body: &'static str) -> Response<latchkey::Body> {
    let mut resp = Response::new(latchkey::full(body));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    resp
}

async fn redis_floor(addr: &str, url: &str, key: &str) -> Result<(), Fail> {
    let con = redis::Client::open(url)?.get_connection_manager().await?;
    let key = std::sync::Arc::<str>::from(key);
    serve(addr, move |_req| {
        let (mut con, key) = (con.clone(), key.clone());
        async move {
            let found: redis::RedisResult<(Option<String>, i64)> = redis::pipe()
                .get(&*key)
                .pttl(&*key)
                .query_async(&mut con)
                .await;
            match found {
                Ok((Some(_), _)) => text(200, "ok"),
                Ok((None, _)) => text(401, "no such key"),
                Err(_) => text(503, "redis"),
            }
        }
    })
    .await
}

async fn proxy_floor(addr: &str, upstream: &str) -> Result<(), Fail> {
    use hyper_util::client::legacy::{connect::HttpConnector, Client};
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<_, hyper::body::Incoming> =
        Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
    let upstream = std::sync::Arc::<str>::from(upstream);
    serve(addr, move |mut req| {
        let (client, upstream) = (client.clone(), upstream.clone());
        async move {
            let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
            match format!("{upstream}{target}").parse() {
                Ok(uri) => *req.uri_mut() = uri,
                Err(_) => return text(400, "bad target"),
            }
            match client.request(req).await {
                Ok(resp) => resp.map(http_body_util::BodyExt::boxed),
                Err(_) => text(502, "upstream"),
            }
        }
    })
    .await
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
        amr: "email".into(),
        extra_roles: Vec::new(),
    };
    // latchkey's default idle_timeout: the idle end slides (and the
    // session cache reads the session again) as for a session it made.
    let idle = Duration::from_secs(15 * 60);
    let first = Secret::generate(&mut rand::rng());
    store
        .create_session(&first.hash(), &record, idle, now)
        .await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(out, "{}", first.expose())?;
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
                    .map(|()| token)
            });
        }
        while let Some(done) = tasks.join_next().await {
            writeln!(out, "{}", done??.expose())?;
        }
        made += batch;
    }
    out.flush()?;
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
