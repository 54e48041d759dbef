//! Prometheus metrics: what latchkey counts and how `/metrics` renders it.
//!
//! Every label value is a closed enum known at compile time (`Route`,
//! `Outcome`, `SignInFailure`), so the whole metric set is a struct of atomic
//! arrays, indexed without hashing or locks, and the text exposition format
//! (version 0.0.4) is written here directly. Counters kept elsewhere (mail,
//! `MailStats`) and gauges read from the store at scrape time are passed to
//! `render`. One `Metrics` lives in `App`; nothing here is global.
//!
//! What is counted where: the outcome of every request in `gate::handle`,
//! decision latency in `gate::judge`, upstream latency around the proxy
//! call, sign-in events with their audit records (`audit::record`), store
//! errors where a store failure reaches a request or a sign-in task.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::obs::mail_stats::MailStats;

/// Which front door a request came through (label `flavor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Reverse proxy to an app.
    Proxy,
    /// Forward-auth, Traefik/Caddy style (`/.latchkey/auth`).
    Traefik,
    /// Forward-auth, Nginx `auth_request` (`/.latchkey/auth/request`).
    Nginx,
    /// latchkey's own pages (`/.latchkey/login`, `verify`, `me`, ...).
    Pages,
}

impl Route {
    const ALL: [Route; 4] = [Route::Proxy, Route::Traefik, Route::Nginx, Route::Pages];

    pub fn label(self) -> &'static str {
        match self {
            Route::Proxy => "proxy",
            Route::Traefik => "traefik",
            Route::Nginx => "nginx",
            Route::Pages => "pages",
        }
    }
}

/// What became of a request (label `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Let through (proxied, or a 2xx forward-auth answer); for `pages`, the
    /// page was served.
    Allowed,
    /// Sent to sign in first (redirect or 401).
    SignIn,
    /// Signed in (or anonymous) but not allowed: 403.
    Forbidden,
    /// Refused as the client's fault: malformed, unknown host, CSRF, rate
    /// limit, too large.
    BadRequest,
    /// The session store could not answer: 503.
    StoreError,
    /// The app behind latchkey failed or timed out: 502/504.
    UpstreamError,
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Allowed,
        Outcome::SignIn,
        Outcome::Forbidden,
        Outcome::BadRequest,
        Outcome::StoreError,
        Outcome::UpstreamError,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::SignIn => "sign_in",
            Outcome::Forbidden => "forbidden",
            Outcome::BadRequest => "bad_request",
            Outcome::StoreError => "store_error",
            Outcome::UpstreamError => "upstream_error",
        }
    }
}

/// Why a sign-in did not happen (label `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInFailure {
    /// The address may not sign in (not a user, signup closed), or the user
    /// was removed between asking and using the link.
    Refused,
    /// Too many links asked for this address.
    RateLimited,
    /// The link or code was unknown, used, expired or from no attempt.
    Invalid,
    /// The link was opened in a browser other than the one that asked.
    WrongBrowser,
    /// Too many wrong codes: the code and its link were voided.
    CodeVoided,
    /// A provider sign-in whose state was missing, forged, used or from
    /// another browser.
    BadState,
    /// The provider failed, refused, or sent what does not verify.
    Provider,
    /// The provider has not verified the person's email.
    UnverifiedEmail,
}

impl SignInFailure {
    const ALL: [SignInFailure; 8] = [
        SignInFailure::Refused,
        SignInFailure::RateLimited,
        SignInFailure::Invalid,
        SignInFailure::WrongBrowser,
        SignInFailure::CodeVoided,
        SignInFailure::BadState,
        SignInFailure::Provider,
        SignInFailure::UnverifiedEmail,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SignInFailure::Refused => "refused",
            SignInFailure::RateLimited => "rate_limited",
            SignInFailure::Invalid => "invalid",
            SignInFailure::WrongBrowser => "wrong_browser",
            SignInFailure::CodeVoided => "code_voided",
            SignInFailure::BadState => "bad_state",
            SignInFailure::Provider => "provider",
            SignInFailure::UnverifiedEmail => "unverified_email",
        }
    }
}

/// A latency histogram with fixed bucket bounds (seconds).
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket, not cumulative; one more than `bounds` for `+Inf`.
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        header(out, name, help, "histogram");
        let mut cumulative = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            match self.bounds.get(i) {
                Some(le) => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// Deciding takes a store round trip: sub-millisecond to a second.
const DECISION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Apps answer in milliseconds to tens of seconds.
const UPSTREAM_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Everything latchkey counts.
pub struct Metrics {
    /// `[route][outcome]`.
    requests: [[AtomicU64; Outcome::ALL.len()]; Route::ALL.len()],
    pub decision: Histogram,
    pub upstream: Histogram,
    sign_ins_requested: AtomicU64,
    sign_ins_completed: AtomicU64,
    sign_ins_failed: [AtomicU64; SignInFailure::ALL.len()],
    store_errors: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Values read from elsewhere at scrape time.
pub struct Scraped<'a> {
    pub mail: &'a MailStats,
    /// Live sessions, when the store can count them cheaply.
    pub active_sessions: Option<u64>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            requests: Default::default(),
            decision: Histogram::new(DECISION_BUCKETS),
            upstream: Histogram::new(UPSTREAM_BUCKETS),
            sign_ins_requested: AtomicU64::new(0),
            sign_ins_completed: AtomicU64::new(0),
            sign_ins_failed: Default::default(),
            store_errors: AtomicU64::new(0),
        }
    }

    pub fn request(&self, route: Route, outcome: Outcome) {
        self.requests[route as usize][outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn sign_in_requested(&self) {
        self.sign_ins_requested.fetch_add(1, Ordering::Relaxed);
    }

    pub fn sign_in_completed(&self) {
        self.sign_ins_completed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn sign_in_failed(&self, why: SignInFailure) {
        self.sign_ins_failed[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn store_error(&self) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition format (0.0.4).
    pub fn render(&self, scraped: &Scraped<'_>) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let name = "latchkey_requests_total";
        header(
            &mut out,
            name,
            "Requests answered, by front door (flavor) and what became of them (outcome).",
            "counter",
        );
        for route in Route::ALL {
            for outcome in Outcome::ALL {
                let n = self.requests[route as usize][outcome as usize].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "{name}{{flavor=\"{}\",outcome=\"{}\"}} {n}",
                    route.label(),
                    outcome.label()
                );
            }
        }
        self.decision.render(
            &mut out,
            "latchkey_decision_duration_seconds",
            "Time to decide a request: session lookup plus rules.",
        );
        self.upstream.render(
            &mut out,
            "latchkey_upstream_duration_seconds",
            "Time until an app's response head arrived (or the proxy gave up).",
        );
        counter(
            &mut out,
            "latchkey_sign_ins_requested_total",
            "Sign-in links sent out (to addresses that may sign in).",
            self.sign_ins_requested.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "latchkey_sign_ins_completed_total",
            "Sign-ins that created a session.",
            self.sign_ins_completed.load(Ordering::Relaxed),
        );
        let name = "latchkey_sign_ins_failed_total";
        header(
            &mut out,
            name,
            "Sign-ins that did not happen, by reason.",
            "counter",
        );
        for why in SignInFailure::ALL {
            let n = self.sign_ins_failed[why as usize].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{reason=\"{}\"}} {n}", why.label());
        }
        let mail = scraped.mail;
        counter(
            &mut out,
            "latchkey_mails_sent_total",
            "Sign-in mails the transport accepted.",
            mail.sent.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "latchkey_mails_failed_total",
            "Failed attempts to send a sign-in mail (each retry counts).",
            mail.failed.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "latchkey_mails_abandoned_total",
            "Sign-in mails given up on after the last retry or a permanent error.",
            mail.abandoned.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "latchkey_mails_dropped_total",
            "Sign-in mails not queued because the queue was full.",
            mail.dropped.load(Ordering::Relaxed),
        );
        let name = "latchkey_mail_transport_down";
        header(
            &mut out,
            name,
            "1 while the mail server cannot be reached (connection-level failures), else 0.",
            "gauge",
        );
        let _ = writeln!(out, "{name} {}", u8::from(mail.transport_down()));
        counter(
            &mut out,
            "latchkey_store_errors_total",
            "Session store operations that failed on behalf of a request or a sign-in.",
            self.store_errors.load(Ordering::Relaxed),
        );
        if let Some(n) = scraped.active_sessions {
            let name = "latchkey_active_sessions";
            header(
                &mut out,
                name,
                "Live sessions in the in-memory store.",
                "gauge",
            );
            let _ = writeln!(out, "{name} {n}");
        }
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, help, "counter");
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
    }

    #[test]
    fn counters_render_under_their_labels() {
        let m = Metrics::new();
        m.request(Route::Nginx, Outcome::Forbidden);
        m.request(Route::Nginx, Outcome::Forbidden);
        m.request(Route::Proxy, Outcome::Allowed);
        m.sign_in_failed(SignInFailure::WrongBrowser);
        let mail = MailStats::default();
        mail.sent.fetch_add(3, Ordering::Relaxed);
        let text = m.render(&Scraped {
            mail: &mail,
            active_sessions: None,
        });
        let cases = [
            (
                "latchkey_requests_total{flavor=\"nginx\",outcome=\"forbidden\"}",
                "2",
            ),
            (
                "latchkey_requests_total{flavor=\"proxy\",outcome=\"allowed\"}",
                "1",
            ),
            (
                "latchkey_requests_total{flavor=\"pages\",outcome=\"store_error\"}",
                "0",
            ),
            (
                "latchkey_sign_ins_failed_total{reason=\"wrong_browser\"}",
                "1",
            ),
            ("latchkey_mails_sent_total", "3"),
        ];
        for (series, want) in cases {
            assert_eq!(
                sample(&text, series).as_deref(),
                Some(want),
                "{series}\n{text}"
            );
        }
        assert!(!text.contains("latchkey_active_sessions"));
        let with_gauge = m.render(&Scraped {
            mail: &mail,
            active_sessions: Some(7),
        });
        assert_eq!(
            sample(&with_gauge, "latchkey_active_sessions").as_deref(),
            Some("7")
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::new();
        m.decision.observe(Duration::from_micros(300)); // ≤ 0.0005
        m.decision.observe(Duration::from_millis(3)); // ≤ 0.005
        m.decision.observe(Duration::from_secs(9)); // +Inf
        let text = m.render(&Scraped {
            mail: &MailStats::default(),
            active_sessions: None,
        });
        let h = "latchkey_decision_duration_seconds";
        let cases = [
            (format!("{h}_bucket{{le=\"0.0005\"}}"), "1"),
            (format!("{h}_bucket{{le=\"0.0025\"}}"), "1"),
            (format!("{h}_bucket{{le=\"0.005\"}}"), "2"),
            (format!("{h}_bucket{{le=\"2.5\"}}"), "2"),
            (format!("{h}_bucket{{le=\"+Inf\"}}"), "3"),
            (format!("{h}_count"), "3"),
            (format!("{h}_sum"), "9.0033"),
        ];
        for (series, want) in cases {
            assert_eq!(
                sample(&text, &series).as_deref(),
                Some(want),
                "{series}\n{text}"
            );
        }
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap_or(("", ""));
            assert!(value.parse::<f64>().is_ok(), "bad sample line {line:?}");
        }
    }
}
