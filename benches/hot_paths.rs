//! Micro-benchmarks of the per-request work that does no I/O: the rule
//! decision (10, 100 and 1,000 rules), path normalization, cookie and
//! header parsing, and identity header injection.
//!
//! Run: `cargo bench --bench hot_paths` (add `-- rules` to run one group).
//! Each line is the time of one call; the `rules/*` groups show how the
//! decision grows with the rule count.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use latchkey::config::{AccessConfig, HeadersConfig, RuleConfig};
use latchkey::http::request::cookie;
use latchkey::policy::path::normalize_path;
use latchkey::policy::rules::{Request, Rules};
use latchkey::upstream::{remove_hop_by_hop, strip_cookie, strip_cookies, IdentityHeaders};

/// `n` rules as a big deployment writes them: a third bound to one exact
/// host, a third to a wildcard (`*.tN.example.com`), a third to any host;
/// paths mix literals, `*` and `/**`; some name methods. The last rules are
/// the catch-alls the benchmark requests land on, so every decision walks
/// the whole candidate list before it matches.
fn rule_set(n: usize) -> Rules {
    let mut rules = Vec::with_capacity(n);
    for i in 0..n.saturating_sub(3) {
        let host = match i % 3 {
            0 => Some(format!("app{i}.example.com")),
            1 => Some(format!("*.t{i}.example.com")),
            _ => None,
        };
        let path = match i % 4 {
            0 => format!("/svc{i}/**"),
            1 => format!("/api/*/item{i}"),
            2 => format!("/static{i}/*/x/**"),
            _ => format!("/exact/{i}"),
        };
        let (policy, roles) = if i % 5 == 0 {
            ("roles", Some(vec![format!("role{i}")]))
        } else {
            ("public", None)
        };
        rules.push(RuleConfig {
            host,
            path: Some(path),
            methods: (i % 2 == 0).then(|| vec!["GET".into(), "POST".into()]),
            policy: policy.into(),
            roles,
            mfa: false,
        });
    }
    rules.push(RuleConfig {
        host: Some("*.example.org".into()),
        path: Some("/admin/**".into()),
        methods: None,
        policy: "roles".into(),
        roles: Some(vec!["admin".into()]),
        mfa: false,
    });
    rules.push(RuleConfig {
        host: Some("app.example.net".into()),
        path: Some("/public/**".into()),
        methods: None,
        policy: "public".into(),
        roles: None,
        mfa: false,
    });
    rules.push(RuleConfig {
        host: None,
        path: Some("/**".into()),
        methods: None,
        policy: "authenticated".into(),
        roles: None,
        mfa: false,
    });
    let access = AccessConfig {
        default: "deny".into(),
        case_insensitive_paths: false,
    };
    match Rules::compile(&rules, &access) {
        Ok(r) => r,
        Err(problems) => panic!("benchmark rules do not compile: {problems:?}"),
    }
}

fn rules(c: &mut Criterion) {
    let roles = vec!["member".to_owned(), "admin".to_owned()];
    let cases: [(&str, &str, &str); 3] = [
        // A host no rule names exactly: walks every rule not bound to one host.
        ("other_host", "other.example.com", "/api/v1/items/42"),
        // A wildcard host near the end.
        ("wildcard_host", "x.y.example.org", "/admin/users/7"),
        // An exact host named by a rule near the end.
        ("exact_host", "app.example.net", "/public/css/site.css"),
    ];
    for (label, host, path) in cases {
        let mut group = c.benchmark_group(format!("rules/{label}"));
        for n in [10usize, 100, 1000] {
            let set = rule_set(n);
            let req = Request {
                host,
                method: &Method::GET,
                path,
            };
            group.bench_with_input(BenchmarkId::from_parameter(n), &set, |b, set| {
                b.iter(|| black_box(set.decide(black_box(&req), Some(&roles))))
            });
        }
        group.finish();
    }
}

fn paths(c: &mut Criterion) {
    let mut group = c.benchmark_group("normalize_path");
    for (label, raw) in [
        ("normal", "/api/v1/users/42/profile"),
        (
            "dots_and_escapes",
            "/api/./v1//users/%7Ealice/../bob/%41%2a",
        ),
        (
            "long_normal",
            "/a/very/long/path/with/many/segments/and/a/file.name.tar.gz",
        ),
    ] {
        group.bench_function(label, |b| b.iter(|| normalize_path(black_box(raw))));
    }
    group.finish();
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.append(k, v);
        }
    }
    h
}

/// A browser's request as latchkey receives it.
fn browser_request() -> HeaderMap {
    headers(&[
        ("host", "app.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
        ),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("accept-language", "en-US,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br"),
        ("connection", "keep-alive"),
        (
            "cookie",
            "_ga=GA1.1.123456789.1700000000; theme=dark; \
             latchkey_session=Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5; \
             latchkey_csrf=abc; app_sid=s%3A0123456789abcdef",
        ),
        ("upgrade-insecure-requests", "1"),
    ])
}

/// latchkey's own cookies, removed before forwarding.
const OWN_COOKIES: [&str; 3] = ["latchkey_session", "latchkey_csrf", "latchkey_attempt"];

fn cookies(c: &mut Criterion) {
    let req = browser_request();
    let mut group = c.benchmark_group("cookies");
    group.bench_function("request::cookie", |b| {
        b.iter(|| black_box(cookie(black_box(&req), "latchkey_session")))
    });
    group.bench_function("request::cookie/absent", |b| {
        b.iter(|| black_box(cookie(black_box(&req), "nope")))
    });
    group.bench_function("proxy::strip_cookie/own_three", |b| {
        b.iter_batched_ref(
            || req.clone(),
            |h| strip_cookies(h, &OWN_COOKIES),
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("proxy::strip_cookie/absent", |b| {
        b.iter_batched_ref(
            || req.clone(),
            |h| strip_cookie(h, "not_there"),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn identity(c: &mut Criterion) {
    let ids = match IdentityHeaders::from_config(&HeadersConfig::default()) {
        Ok(ids) => ids,
        Err(p) => panic!("default headers: {p:?}"),
    };
    let roles = vec!["admin".to_owned(), "member".to_owned()];
    let who = Some((
        "4b1d0c9a2f3e5d6c7b8a9f0e",
        "alice@example.com",
        roles.as_slice(),
    ));
    let clean = browser_request();
    let mut forged = browser_request();
    forged.append(
        "x-auth-email",
        HeaderValue::from_static("mallory@example.com"),
    );
    forged.append("X_Auth_Roles", HeaderValue::from_static("admin"));

    let mut group = c.benchmark_group("identity_headers");
    group.bench_function("strip/clean", |b| {
        b.iter_batched_ref(
            || clean.clone(),
            |h| ids.strip(h),
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("strip/forged", |b| {
        b.iter_batched_ref(
            || forged.clone(),
            |h| ids.strip(h),
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("set/signed_in", |b| {
        b.iter_batched_ref(
            || clean.clone(),
            |h| ids.set(h, black_box(who)),
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("set/anonymous", |b| {
        b.iter_batched_ref(
            || clean.clone(),
            |h| ids.set(h, None),
            criterion::BatchSize::SmallInput,
        )
    });
    // Everything proxy mode does to the request headers, minus X-Forwarded-*.
    group.bench_function("forward_rewrite", |b| {
        b.iter_batched_ref(
            || forged.clone(),
            |h| {
                remove_hop_by_hop(h);
                ids.strip(h);
                strip_cookies(h, &OWN_COOKIES);
                ids.set(h, black_box(who));
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, rules, paths, cookies, identity);
criterion_main!(benches);
