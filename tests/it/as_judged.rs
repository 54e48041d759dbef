//! One request, judged once, forwarded as judged: a property test over
//! generated raw HTTP/1.1 requests against the real binary in proxy mode,
//! in front of the echo app.
//!
//! Each request mixes what makes servers disagree about a request: method
//! case, `Host` duplicates and spellings, absolute-form targets, path
//! encodings and dot segments, upgrade headers, forged identity headers,
//! folded or oddly split header lines, and a write cut into pieces. For each
//! one, either latchkey refused it, or the `(method, host, path)` its rules
//! saw (the `judged` debug event, one per decision) is exactly what the echo
//! app received, read the way lenient apps read it (method upper-cased, host
//! without its port), and the rules would have let that reading through too.
//!
//! The seed and the number of cases are fixed (`scripts/test` runs it as
//! part of the suite); `LATCHKEY_JUDGED_SEED` and `LATCHKEY_JUDGED_CASES`
//! explore further.

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::Value;

use crate::support::latchkey::Latchkey;

const DEFAULT_SEED: u64 = 11;
const DEFAULT_CASES: u32 = 500;

/// Rules where every judged value matters: `admin.test`, `/admin/**` and
/// the writing methods are denied, `/public/**` on the rest is public and
/// everything else denied, so a request forwarded as other than judged shows
/// as a bypass.
fn config(port: u16, echo: SocketAddr) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "http://auth.test:{port}"
trusted_proxies = []

[mail]
transport = "console"
from = "Sign-in <login@example.com>"

[[apps]]
host = "app.test"
upstream = "http://{echo}"

[[apps]]
host = "admin.test"
upstream = "http://{echo}"

[[apps]]
host = "auth.test"

[access]
default = "deny"

[[rules]]
host = "admin.test"
policy = "deny"

[[rules]]
path = "/admin/**"
policy = "deny"

[[rules]]
methods = ["DELETE", "PUT", "POST", "PATCH"]
policy = "deny"

[[rules]]
path = "/public/**"
policy = "public"
"#
    )
}

/// Each part of a request is drawn from its ordinary values mostly and its
/// odd ones sometimes (`mostly`), so that many requests get through to be
/// compared and every odd value still comes up. `{p}` is latchkey's port.
const METHODS: (&[&str], &[&str]) = (
    &[
        "GET", "GET", "GET", "HEAD", "OPTIONS", "PROPFIND", "PURGE", "TRACE", "POST", "DELETE",
    ],
    &[
        "PUT", "PATCH", "CONNECT", "get", "Get", "gEt", "post", "delete", "Delete", "pUt", "patch",
        "head", "options", "propfind", "trace", "purge",
    ],
);
/// The methods a rule can name, and those the rules here deny.
const KNOWN: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "PROPFIND",
];
const DENIED_METHODS: &[&str] = &["DELETE", "PUT", "POST", "PATCH"];
/// Before the path: origin form, or absolute form with this scheme and authority.
const ABSOLUTE: (&[&str], &[&str]) = (
    &["", "", "", "", "http://app.test:{p}"],
    &[
        "http://APP.test:{p}",
        "http://app.test.",
        "http://admin.test:{p}",
        "https://app.test:{p}",
        "HTTP://app.test:{p}",
        "http://evil.test",
        "http://user@app.test:{p}",
        "http://app.test:{p}:1",
    ],
);
const FIRST: (&[&str], &[&str]) = (
    &["public"],
    &[
        "%70ublic", "Public", "PUBLIC", "admin", "%61dmin", "x", "", "..", ".", "*",
    ],
);
const SEGMENTS: (&[&str], &[&str]) = (
    &[
        "x",
        "public",
        "admin",
        "a.b",
        "~u",
        "%7Eu",
        "caf%C3%A9",
        "a%20b",
        "",
        ".",
    ],
    &[
        "..",
        "%2e%2e",
        "%2E",
        ";x=1",
        "public;x",
        "admin;",
        "%2F",
        "%5C",
        "%00",
        "%25",
        "x.",
        "..;",
        "%2e%2e;",
        "\\",
        "%EF%BC%8F",
        "*",
    ],
);
const QUERIES: (&[&str], &[&str]) = (
    &["", "", "token=SECRET"],
    &["next=/admin/&x=..", "a=%2F", "", "#frag"],
);
const HOSTS: (&[&str], &[&str]) = (
    &["app.test:{p}", "app.test", "APP.Test:{p}", "app.test.:{p}"],
    &[
        "app.test:",
        "admin.test:{p}",
        "Admin.Test.",
        "evil.test",
        "auth.test:{p}",
        "app.test:{p}, admin.test",
        "",
        "[::1]:{p}",
        "127.0.0.1:{p}",
        "app.test:{p}:1",
        "app.test:{p}/x",
        "app.test:0{p}",
        "app.test:99999",
    ],
);
const HOST_NAMES: &[&str] = &["Host", "host", "HOST"];
const CONNECTIONS: (&[&str], &[&str]) = (
    &["", "", "close", "keep-alive"],
    &["Upgrade", "upgrade, HTTP2-Settings", "keep-alive, Upgrade"],
);
const UPGRADES: &[&str] = &[
    "websocket",
    "h2c",
    "websocket, h2c",
    "WebSocket",
    "HTTP/2.0",
    "",
];
const FORGED: (&[&str], &[&str]) = (
    &[""],
    &[
        "X-Auth-Email",
        "x_auth_roles",
        "X-AUTH-USER-ID",
        "X-Auth-Assertion",
    ],
);

/// Ordinary values five times in six, odd ones otherwise.
fn mostly(
    values: (&'static [&'static str], &'static [&'static str]),
) -> BoxedStrategy<&'static str> {
    prop_oneof![
        5 => prop::sample::select(values.0),
        1 => prop::sample::select(values.1),
    ]
    .boxed()
}

/// How the head's lines are written.
#[derive(Debug, Clone, Copy)]
enum Lines {
    Plain,
    /// Bare `\n` line ends.
    BareLf,
    /// The first `Host` value continued on a folded line (obs-fold).
    FoldedHost,
    /// Another header folded.
    FoldedOther,
    /// `Host : value`.
    SpaceBeforeColon,
}

#[derive(Debug, Clone)]
struct Generated {
    method: &'static str,
    absolute: &'static str,
    /// Segments joined under `/` (`//` first when `double`); a first
    /// segment `*` alone is the target `*`.
    double: bool,
    segments: Vec<&'static str>,
    query: &'static str,
    hosts: Vec<(&'static str, &'static str)>,
    connection: &'static str,
    upgrades: Vec<&'static str>,
    settings: bool,
    forged: &'static str,
    lines: Lines,
    /// Byte offsets at which the write is cut (each piece sent apart).
    cuts: Vec<usize>,
}

fn generated() -> impl Strategy<Value = Generated> {
    let target = (
        mostly(METHODS),
        mostly(ABSOLUTE),
        mostly(FIRST),
        prop::collection::vec(mostly(SEGMENTS), 0..4),
        prop::bool::weighted(0.05),
        mostly(QUERIES),
    );
    let hosts = prop_oneof![
        1 => Just(0usize),
        16 => Just(1usize),
        2 => Just(2usize),
    ]
    .prop_flat_map(|n| {
        prop::collection::vec((prop::sample::select(HOST_NAMES), mostly(HOSTS)), n..=n)
    });
    let upgrade = (
        mostly(CONNECTIONS),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => prop::collection::vec(prop::sample::select(UPGRADES), 1..3),
        ],
        prop::bool::weighted(0.1),
        mostly(FORGED),
    );
    let lines = prop_oneof![
        24 => Just(Lines::Plain),
        1 => Just(Lines::BareLf),
        1 => Just(Lines::FoldedHost),
        1 => Just(Lines::FoldedOther),
        1 => Just(Lines::SpaceBeforeColon),
    ];
    (
        target,
        hosts,
        upgrade,
        lines,
        prop::collection::vec(0usize..300, 0..3),
    )
        .prop_map(
            |(
                (method, absolute, first, rest, double, query),
                hosts,
                (connection, upgrades, settings, forged),
                lines,
                cuts,
            )| Generated {
                segments: [first].into_iter().chain(rest).collect(),
                method,
                absolute,
                double,
                query,
                hosts,
                connection,
                upgrades,
                settings,
                forged,
                lines,
                cuts,
            },
        )
}

impl Generated {
    fn target(&self, port: &str) -> String {
        if self.segments.first() == Some(&"*") && self.absolute.is_empty() {
            return "*".to_owned();
        }
        let mut t = self.absolute.replace("{p}", port);
        t.push_str(if self.double { "//" } else { "/" });
        t.push_str(&self.segments.join("/"));
        if !self.query.is_empty() {
            t.push('?');
            t.push_str(self.query);
        }
        t
    }

    /// The request's bytes, with `X-Request-Id: id`.
    fn bytes(&self, port: &str, id: &str) -> Vec<u8> {
        let eol = if matches!(self.lines, Lines::BareLf) {
            "\n"
        } else {
            "\r\n"
        };
        let mut lines = vec![format!("{} {} HTTP/1.1", self.method, self.target(port))];
        for (i, (name, value)) in self.hosts.iter().enumerate() {
            let value = value.replace("{p}", port);
            lines.push(match self.lines {
                Lines::FoldedHost if i == 0 => format!("{name}: {value}{eol} .evil.test"),
                Lines::SpaceBeforeColon if i == 0 => format!("{name} : {value}"),
                _ => format!("{name}: {value}"),
            });
        }
        if matches!(self.lines, Lines::FoldedOther) {
            lines.push(format!("X-Note: a{eol}\tHost: evil.test"));
        }
        lines.push(format!("X-Request-Id: {id}"));
        lines.push("Accept: application/json".to_owned());
        if !self.connection.is_empty() {
            lines.push(format!("Connection: {}", self.connection));
        }
        for u in &self.upgrades {
            lines.push(format!("Upgrade: {u}"));
        }
        if self.settings {
            lines.push("HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA".to_owned());
        }
        if !self.upgrades.is_empty() {
            lines.push("Sec-WebSocket-Version: 13".to_owned());
            lines.push("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==".to_owned());
        }
        if !self.forged.is_empty() {
            let forged = self.forged;
            lines.push(format!("{forged}: admin"));
        }
        let mut text = lines.join(eol);
        text.push_str(eol);
        text.push_str(eol);
        text.into_bytes()
    }

    /// Whether the request is a WebSocket upgrade and nothing else.
    fn is_websocket_upgrade(&self) -> bool {
        self.upgrades.len() == 1
            && self.upgrades[0].eq_ignore_ascii_case("websocket")
            && self
                .connection
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    }
}

/// One response, as far as the test reads it.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Writes `bytes` in pieces cut at `cuts` and reads one response: to the
/// end of its body by `Content-Length`, to the last chunk, to the end of
/// the head for a 101 or an answer to `HEAD`, or to the close.
fn exchange(addr: SocketAddr, bytes: &[u8], cuts: &[usize], head_only: bool) -> Answer {
    let mut s = TcpStream::connect(addr).expect("connect to latchkey");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    s.set_nodelay(true).expect("nodelay");
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % bytes.len().max(1)).collect();
    cuts.sort_unstable();
    let mut from = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        if cut > from {
            // The server may answer (and close) before the last piece.
            if s.write_all(&bytes[from..cut]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
            from = cut;
        }
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let body = got.len() - end - 4;
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if head.starts_with("http/1.1 101")
                || head_only
                || length.is_some_and(|n| body >= n)
                || got.ends_with(b"\r\n0\r\n\r\n")
            {
                break;
            }
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "reading an answer: {e}; so far {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

/// What the rules saw for one request.
#[derive(Debug)]
struct Judged {
    method: String,
    host: String,
    path: String,
    decision: String,
}

/// The `judged` events, and whether any line leaked the query's token.
fn judged_in(log: &str, id: &str) -> (Vec<Judged>, bool) {
    let mut judged = Vec::new();
    let mut leaked = false;
    for line in log.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v["span"]["request_id"] != id {
            continue;
        }
        leaked |= line.contains("SECRET");
        if v["message"] == "judged" {
            let field = |k: &str| v[k].as_str().unwrap_or("").to_owned();
            judged.push(Judged {
                method: field("method"),
                host: field("host"),
                path: field("path"),
                decision: field("decision"),
            });
        }
    }
    (judged, leaked)
}

fn header<'a>(seen: &'a Value, name: &str) -> Vec<&'a str> {
    seen["headers"]
        .as_array()
        .map(|hs| {
            hs.iter()
                .filter(|p| p[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
                .filter_map(|p| p[1].as_str())
                .collect()
        })
        .unwrap_or_default()
}

/// The path as a lenient app reads it: decoded once, `;` parameters cut,
/// dot and empty segments resolved.
fn app_segments(path: &str) -> Vec<String> {
    let mut decoded = Vec::new();
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                decoded.push(v);
                i += 3;
            }
            (c, _) => {
                decoded.push(c);
                i += 1;
            }
        }
    }
    let text = String::from_utf8_lossy(&decoded).replace('\\', "/");
    let mut stack: Vec<String> = Vec::new();
    for seg in text.split('/') {
        match seg.split(';').next().unwrap_or("") {
            "" | "." => {}
            ".." => {
                stack.pop();
            }
            s => stack.push(s.to_owned()),
        }
    }
    stack
}

/// Checks one forwarded request: what the app received is what was judged.
fn check_forwarded(judged: &Judged, answer: &Answer) -> Result<(), String> {
    let seen: Value = serde_json::from_str(&answer.body).map_err(|e| {
        format!(
            "a 200 that is not the echo app's JSON ({e}): {}",
            answer.body
        )
    })?;
    let method = seen["method"].as_str().unwrap_or("");
    let uri = seen["uri"].as_str().unwrap_or("");
    let path = uri.split('?').next().unwrap_or("");
    if method != judged.method {
        return Err(format!(
            "judged method {:?}, the app received {method:?}",
            judged.method
        ));
    }
    if KNOWN
        .iter()
        .any(|k| k.eq_ignore_ascii_case(method) && *k != method)
    {
        return Err(format!(
            "the app received {method:?}, which it reads as {:?}",
            method.to_ascii_uppercase()
        ));
    }
    if path != judged.path {
        return Err(format!(
            "judged path {:?}, the app received {uri:?}",
            judged.path
        ));
    }
    let hosts = header(&seen, "host");
    let [host] = hosts.as_slice() else {
        return Err(format!("the app received Host {hosts:?}"));
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => name,
        _ => host,
    };
    if name != judged.host {
        return Err(format!(
            "judged host {:?}, the app received Host {host:?}",
            judged.host
        ));
    }
    if header(&seen, "x-forwarded-host") != [*host] {
        return Err(format!(
            "X-Forwarded-Host {:?} is not Host {host:?}",
            header(&seen, "x-forwarded-host")
        ));
    }
    for hop in ["upgrade", "http2-settings", "connection"] {
        if !header(&seen, hop).is_empty() {
            return Err(format!("the app received {hop}: {:?}", header(&seen, hop)));
        }
    }
    for id in [
        "x-auth-email",
        "x-auth-roles",
        "x-auth-user-id",
        "x-auth-assertion",
    ] {
        let values = header(&seen, id);
        if values != [""] && !values.is_empty() {
            return Err(format!("the app received {id}: {values:?}"));
        }
    }
    // And the app's reading of it passes the rules too.
    let segments = app_segments(path);
    let first = segments.first().map(String::as_str);
    if name
        .trim_end_matches('.')
        .eq_ignore_ascii_case("admin.test")
        || DENIED_METHODS.contains(&method.to_ascii_uppercase().as_str())
        || first == Some("admin")
        || first != Some("public")
    {
        return Err(format!(
            "the app runs {method} {host} {path}, which the rules deny"
        ));
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    forwarded: Cell<u32>,
    switched: Cell<u32>,
    refused: Cell<u32>,
    /// Status -> count, for the summary line.
    statuses: RefCell<std::collections::BTreeMap<u16, u32>>,
}

#[test]
fn every_request_is_refused_or_forwarded_as_judged() {
    let seed: u64 = std::env::var("LATCHKEY_JUDGED_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let cases: u32 = std::env::var("LATCHKEY_JUDGED_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let echo = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind echo");
        let addr = l.local_addr().expect("echo addr");
        tokio::spawn(latchkey::cli::echo::serve(l, std::future::pending()));
        addr
    });
    let lk = Latchkey::start_with_env(
        |port| config(port, echo),
        &[
            ("LATCHKEY_LOG_FORMAT", "json"),
            ("LATCHKEY_LOG", "debug,hyper=info,h2=info"),
        ],
    );
    let port = lk.port.to_string();
    let n = Cell::new(0u32);
    let read = RefCell::new(0usize);
    let tally = Tally::default();

    let mut key = [0u8; 32];
    for chunk in key.chunks_mut(8) {
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 256,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &key),
    );
    let result = runner.run(&generated(), |g| {
        n.set(n.get() + 1);
        let id = format!("judged-{}", n.get());
        let bytes = g.bytes(&port, &id);
        let answer = exchange(lk.addr, &bytes, &g.cuts, g.method == "HEAD");
        let log = lk.log();
        let new = log.get(*read.borrow()..).unwrap_or("").to_owned();
        *read.borrow_mut() = log.len();
        let (judged, leaked) = judged_in(&new, &id);
        let request = String::from_utf8_lossy(&bytes).into_owned();
        let fail = |why: String| {
            Err(TestCaseError::fail(format!(
                "{why}\nrequest:\n{request}\nanswer: {} {}\njudged: {judged:?}",
                answer.status, answer.body
            )))
        };
        if leaked {
            return fail("the query's token reached the log".into());
        }
        if answer.status == 0 || answer.status >= 500 {
            return fail(format!("answered {}", answer.status));
        }
        if judged.len() > 1 {
            return fail(format!("judged {} times", judged.len()));
        }
        *tally
            .statuses
            .borrow_mut()
            .entry(answer.status)
            .or_default() += 1;
        let allowed = judged.first().filter(|j| j.decision == "allow");
        match (answer.status, allowed) {
            (101, Some(_)) if g.is_websocket_upgrade() => {
                if !answer.head.contains("\r\nupgrade: websocket") {
                    return fail("a 101 to another protocol than websocket".into());
                }
                tally.switched.set(tally.switched.get() + 1);
            }
            (101, _) => return fail("switched protocols".into()),
            (200, None) => return fail("the app answered a request not allowed".into()),
            (200, Some(_)) if g.method == "HEAD" => {}
            (200, Some(j)) => {
                if let Err(why) = check_forwarded(j, &answer) {
                    return fail(why);
                }
                tally.forwarded.set(tally.forwarded.get() + 1);
            }
            _ => tally.refused.set(tally.refused.get() + 1),
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("seed {seed}: {e}");
    }
    let (forwarded, switched, refused) = (
        tally.forwarded.get(),
        tally.switched.get(),
        tally.refused.get(),
    );
    eprintln!(
        "seed {seed}, {cases} cases: {forwarded} forwarded, {switched} switched, {refused} refused; \
         statuses {:?}",
        tally.statuses.borrow()
    );
    // Not vacuous: plenty of requests got through to be compared.
    assert!(
        forwarded * 5 >= cases,
        "only {forwarded} of {cases} forwarded"
    );
}
