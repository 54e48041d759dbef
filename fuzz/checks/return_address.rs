// Return-address validation. Property: whatever `ReturnPolicy::check`
// accepts, a browser on an app page resolving it as a Location goes only
// to public_url's host, an app host or inside cookie_domain, over https.

use std::sync::OnceLock;

use latchkey::policy::redirect::ReturnPolicy;
use url::Url;

fn policy() -> &'static ReturnPolicy {
    static POLICY: OnceLock<ReturnPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let public = Url::parse("https://auth.example.com").unwrap_or_else(|e| panic!("{e}"));
        ReturnPolicy::new(&public, &["app.example.com".to_owned()], Some("example.org"))
    })
}

/// The property this target checks, for one input (also replayed by the
/// test suite over `fuzz/regressions/return_address/`).
pub fn check(data: &[u8]) {
    let rd = String::from_utf8_lossy(data);
    let Some(out) = policy().check(&rd) else {
        return;
    };
    assert!(
        !out.bytes().any(|b| b.is_ascii_control() || b == b'\\'),
        "{rd:?} -> {out:?}"
    );
    let base = Url::parse("https://app.example.com/.latchkey/verify").unwrap_or_else(|e| panic!("{e}"));
    let Ok(to) = base.join(&out) else {
        panic!("{rd:?} -> {out:?} does not resolve");
    };
    // One trailing dot names the same host (the policy ignores it on purpose).
    let host = to.host_str().unwrap_or("");
    let host = host.strip_suffix('.').unwrap_or(host);
    let home = host == "auth.example.com"
        || host == "app.example.com"
        || host == "example.org"
        || host.ends_with(".example.org");
    assert!(
        to.scheme() == "https" && home && to.username().is_empty() && to.password().is_none(),
        "{rd:?} -> {out:?} leads to {to}"
    );
}
