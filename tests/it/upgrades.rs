//! WebSockets and HTTP/2 at the connection limits (issue 16, item 4),
//! against the real binary: an upgraded WebSocket through latchkey counts
//! against `server.max_connections` and shows on `/metrics`, SIGTERM lets
//! it run through the drain time and then closes it and exits 0, and an
//! HTTP/2 (h2c, prior knowledge) connection that never finishes a HEADERS
//! frame is closed after `server.header_read_timeout`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::flow::start_echo;
use crate::ops::plain_config;
use crate::support::http::raw;
use crate::support::latchkey::Latchkey;

/// The admin listener's address from latchkey's ready file.
pub(crate) fn admin_addr(lk: &Latchkey) -> SocketAddr {
    let ready = std::fs::read_to_string(lk.dir.path().join("ready")).unwrap();
    ready
        .lines()
        .find_map(|l| l.strip_prefix("admin="))
        .unwrap_or_else(|| panic!("no admin= in {ready:?}"))
        .parse()
        .unwrap()
}

/// The value of the sample `series` (name and labels) on `/metrics`.
pub(crate) async fn metric(admin: SocketAddr, series: &str) -> Option<String> {
    let text = raw(
        admin,
        b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
    )
    .await;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
}

/// A WebSocket through latchkey to the echo app (which switches and echoes
/// bytes), its 101 read.
async fn open_websocket(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"GET /public/ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte))
            .await
            .expect("101 in time")
            .unwrap();
        assert_eq!(n, 1, "closed after {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// Sends `message` on the tunnel and reads it back.
async fn echo(ws: &mut TcpStream, message: &[u8]) -> std::io::Result<Vec<u8>> {
    ws.write_all(message).await?;
    let mut back = vec![0u8; message.len()];
    tokio::time::timeout(Duration::from_secs(10), ws.read_exact(&mut back))
        .await
        .map_err(|_| std::io::Error::other("no echo in 10 s"))??;
    Ok(back)
}

/// Whether a new connection is closed without an answer (at the limit).
async fn refused(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return true;
    };
    let _ = s
        .write_all(b"GET /public/ HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await;
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => panic!("a connection was neither answered nor closed"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_websocket_counts_against_max_connections() {
    let echo_app = start_echo().await;
    let upstream = format!("http://{echo_app}");
    let lk = Latchkey::start(|port| {
        plain_config(
            port,
            &upstream,
            "",
            "max_connections = 2\nheader_read_timeout = \"30s\"\nadmin_listen = \"127.0.0.1:0\"",
        )
    });
    let admin = admin_addr(&lk);
    let mut first = open_websocket(lk.addr).await;
    let mut second = open_websocket(lk.addr).await;
    assert_eq!(echo(&mut first, b"one").await.unwrap(), b"one");
    assert_eq!(echo(&mut second, b"two").await.unwrap(), b"two");
    assert_eq!(
        metric(admin, "latchkey_connections_open").await.as_deref(),
        Some("2")
    );
    assert!(
        refused(lk.addr).await,
        "a third connection was served while two WebSockets held both slots"
    );
    lk.wait_for_log("server.max_connections reached", Duration::from_secs(5));

    // Closing one tunnel frees its slot.
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let resp = raw(lk.addr, b"GET /public/ HTTP/1.1\r\nHost: app.test\r\n\r\n").await;
        if resp.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a closed WebSocket kept its slot"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(echo(&mut first, b"still").await.unwrap(), b"still");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_open_websocket_run_through_the_drain_then_closes_it_and_exits_0() {
    let echo_app = start_echo().await;
    let upstream = format!("http://{echo_app}");
    let grace = Duration::from_secs(3);
    let mut lk = Latchkey::start(|port| {
        plain_config(
            port,
            &upstream,
            "",
            "shutdown_grace = \"3s\"\nheader_read_timeout = \"30s\"",
        )
    });
    let mut ws = open_websocket(lk.addr).await;
    assert_eq!(echo(&mut ws, b"before").await.unwrap(), b"before");

    lk.signal("TERM");
    let signalled = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(lk.addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Well inside the drain time the tunnel still carries bytes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        echo(&mut ws, b"during the drain")
            .await
            .unwrap_or_else(|e| panic!("the WebSocket was cut at SIGTERM ({e}):\n{}", lk.log())),
        b"during the drain"
    );

    // Then it is closed (end of stream) and latchkey exits 0.
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(grace + Duration::from_secs(10), ws.read(&mut buf))
        .await
        .expect("the WebSocket was still open well after the drain time");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    let closed_after = signalled.elapsed();
    let status = lk
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("latchkey did not exit:\n{}", lk.log()));
    assert_eq!(status.code(), Some(0), "{}", lk.log());
    lk.wait_for_log("grace period over", Duration::from_secs(1));
    println!(
        "SIGTERM with an open WebSocket: it carried bytes during the drain, was closed \
         {closed_after:?} after the signal (shutdown_grace {grace:?}), and latchkey exited 0"
    );
}

/// The HTTP/2 client preface, an empty SETTINGS frame, and a HEADERS frame
/// on stream 1 without END_HEADERS (`:method: GET`, then nothing: the
/// CONTINUATION that would finish it never comes).
const H2_UNFINISHED_HEADERS: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\
    \x00\x00\x00\x04\x00\x00\x00\x00\x00\
    \x00\x00\x01\x01\x00\x00\x00\x00\x01\x82";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_that_never_finishes_its_headers_is_closed_after_header_read_timeout() {
    let echo_app = start_echo().await;
    let upstream = format!("http://{echo_app}");
    let lk = Latchkey::start(|port| {
        plain_config(
            port,
            &upstream,
            "",
            "header_read_timeout = \"1s\"\nkeepalive_timeout = \"120s\"",
        )
    });
    // h2c with prior knowledge is served: a whole request is answered.
    let tcp = TcpStream::connect(lk.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let resp = sender
        .send_request(
            Request::get(format!("http://app.test:{}/public/h2", lk.port))
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let _ = resp.into_body().collect().await.unwrap();

    let mut s = TcpStream::connect(lk.addr).await.unwrap();
    s.write_all(H2_UNFINISHED_HEADERS).await.unwrap();
    let began = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        // Far below keepalive_timeout (120 s), the only other limit.
        match tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => {} // the server's SETTINGS and its ACK
            Err(_) => panic!(
                "an HTTP/2 connection with unfinished headers was still open after {:?}",
                began.elapsed()
            ),
        }
    }
    println!(
        "HTTP/2 connection with unfinished HEADERS closed {:?} after it sent them \
         (header_read_timeout 1s)",
        began.elapsed()
    );
    lk.wait_for_log("no request head within", Duration::from_secs(5));
}
