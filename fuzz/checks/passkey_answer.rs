// A browser's answer to a passkey ceremony. The first byte picks the form:
// 0, the rest is a registration's attestationObject (CBOR) behind an honest
// clientDataJSON; 1, the rest is an assertion's authenticatorData behind an
// honest clientDataJSON, checked against a fixed ES256 credential; anything
// else, the rest is the whole JSON of a registration and of an assertion.
// Properties: nothing panics; a registration that passes gives a credential
// id of 1 to 1023 bytes and a stored key an assertion can be checked with
// (a wrong signature is `BadSignature`, never `BadKey`); an assertion that
// parses names a non-empty credential id; none of these made-up assertions
// passes (none carries a signature by the fixed key).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey::identity::passkey::{
    parse_assertion, verify_assertion, verify_registration, PasskeyError, RelyingParty,
};

const CHALLENGE: &[u8] = b"fuzz-challenge-0123456789abcdef!";
/// A COSE ES256 key (the P-256 generator point), stored the way
/// `verify_registration` stores one.
const STORED: &str = "cose1:pQECAyYgASFYIGsX0fLhLEJH-Lzm5WOkQPJ3A32BLeszoPShOUXYmMKWIlggT-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU";

fn rp() -> RelyingParty {
    RelyingParty {
        id: "app.localhost".into(),
        name: "fuzz".into(),
        origin: "http://app.localhost:8080".into(),
    }
}

fn client_data(kind: &str) -> String {
    let json = format!(
        r#"{{"type":"{kind}","challenge":"{}","origin":"http://app.localhost:8080"}}"#,
        URL_SAFE_NO_PAD.encode(CHALLENGE)
    );
    URL_SAFE_NO_PAD.encode(json)
}

/// The property this target checks, for one input (also replayed by the
/// test suite over `fuzz/regressions/passkey_answer/`).
pub fn check(data: &[u8]) {
    let Some((&form, rest)) = data.split_first() else {
        return;
    };
    let b64 = URL_SAFE_NO_PAD.encode(rest);
    match form {
        0 => registration(
            format!(
                r#"{{"id":"AA","type":"public-key","response":{{"clientDataJSON":"{}","attestationObject":"{b64}"}}}}"#,
                client_data("webauthn.create")
            )
            .as_bytes(),
        ),
        1 => assertion(
            format!(
                r#"{{"id":"AA","type":"public-key","response":{{"clientDataJSON":"{}","authenticatorData":"{b64}","signature":"MEQCIA"}}}}"#,
                client_data("webauthn.get")
            )
            .as_bytes(),
        ),
        _ => {
            registration(rest);
            assertion(rest);
        }
    }
}

fn registration(json: &[u8]) {
    let Ok(new) = verify_registration(&rp(), CHALLENGE, json) else {
        return;
    };
    let id = URL_SAFE_NO_PAD.decode(&new.id).expect("the id is base64url");
    assert!((1..=1023).contains(&id.len()), "id of {} bytes", id.len());
    let honest = format!(
        r#"{{"id":"{}","type":"public-key","response":{{"clientDataJSON":"{}","authenticatorData":"{}","signature":"MEQCIA"}}}}"#,
        new.id,
        client_data("webauthn.get"),
        URL_SAFE_NO_PAD.encode(flags_only())
    );
    let parsed = parse_assertion(honest.as_bytes()).expect("a well-formed assertion parses");
    let got = verify_assertion(&rp(), CHALLENGE, &parsed, &new.credential, 0);
    assert_eq!(got, Err(PasskeyError::BadSignature), "stored key unusable");
}

fn assertion(json: &[u8]) {
    let Ok(parsed) = parse_assertion(json) else {
        return;
    };
    assert!(!parsed.id.is_empty());
    let got = verify_assertion(&rp(), CHALLENGE, &parsed, STORED, 0);
    assert!(got.is_err(), "a made-up assertion passed: {got:?}");
}

/// authenticatorData for app.localhost with only the user-present flag.
fn flags_only() -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut out = Sha256::digest(b"app.localhost").to_vec();
    out.extend_from_slice(&[0x01, 0, 0, 0, 1]);
    out
}
