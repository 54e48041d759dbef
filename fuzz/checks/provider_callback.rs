// A provider's callback query and an ID token's claims. Properties: any
// query parses (`CallbackParams::from_query`), flags a parameter it reads
// twice as `repeated`, keeps the last value of each, and its `Debug` shows
// neither code nor state; any claims set that parses (`IdClaims`, as
// jsonwebtoken hands it over) and passes `check_claims` names exactly the
// expected issuer, this client among its audiences (and as `azp` when
// there are several), times within the leeway and this sign-in's nonce.
// The input is the query, a newline, then the claims' JSON.

use std::collections::BTreeMap;

use latchkey::identity::oidc::verify::{check_claims, Expected, IdClaims, LEEWAY};
use latchkey::identity::oidc::CallbackParams;
use url::form_urlencoded;

const NOW: u64 = 1_800_000_000;
const NAMES: [&str; 5] = ["code", "state", "iss", "error", "error_description"];

/// The property this target checks, for one input (also replayed by the
/// test suite over `fuzz/regressions/provider_callback/`).
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (query, claims) = text.split_once('\n').unwrap_or((&text, ""));
    check_query(query);
    check_id_claims(claims.as_bytes());
}

fn check_query(query: &str) {
    let p = CallbackParams::from_query(query);
    let mut seen: BTreeMap<&str, (usize, String)> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if let Some(name) = NAMES.iter().find(|n| **n == k) {
            let e = seen.entry(name).or_insert((0, String::new()));
            e.0 += 1;
            e.1 = v.into_owned();
        }
    }
    assert_eq!(p.repeated, seen.values().any(|(n, _)| *n > 1), "{query:?}");
    let field = |name: &str| match name {
        "code" => &p.code,
        "state" => &p.state,
        "iss" => &p.iss,
        "error" => &p.error,
        _ => &p.error_description,
    };
    for name in NAMES {
        assert_eq!(
            field(name).as_deref(),
            seen.get(name).map(|(_, v)| v.as_str()),
            "{name} of {query:?}"
        );
    }
    // Debug hides the code and the state: it reads the same with both blanked.
    let mut blank = p.clone();
    blank.code = p.code.as_ref().map(|_| String::new());
    blank.state = p.state.as_ref().map(|_| String::new());
    assert_eq!(format!("{p:?}"), format!("{blank:?}"), "{query:?}");
}

fn check_id_claims(json: &[u8]) {
    let Ok(c) = serde_json::from_slice::<IdClaims>(json) else {
        return;
    };
    let expected = Expected {
        issuer: "https://idp.example.com",
        client_id: "latchkey",
        nonce: "n-1",
        algorithms: &[],
    };
    if check_claims(&c, &expected, NOW).is_err() {
        return;
    }
    let aud = c.aud.as_slice();
    assert_eq!(c.iss, expected.issuer);
    assert!(aud.iter().any(|a| a == "latchkey"), "{aud:?}");
    assert!(
        c.azp.as_deref().map_or(aud.len() == 1, |a| a == "latchkey"),
        "{aud:?} {:?}",
        c.azp
    );
    assert!(c.exp.saturating_add(LEEWAY.as_secs()) >= NOW, "exp {}", c.exp);
    assert!(c.iat <= NOW + LEEWAY.as_secs(), "iat {}", c.iat);
    assert_eq!(c.nonce.as_deref(), Some("n-1"));
}
