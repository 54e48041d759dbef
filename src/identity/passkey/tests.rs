//! The relying party's checks against a software authenticator: honest
//! answers pass for each algorithm, and each tampered field is refused with
//! its own error.

use super::soft_authenticator::{cbor, Answer, Kind, SoftAuthenticator};
use super::*;

fn rp() -> RelyingParty {
    RelyingParty {
        id: "app.localhost".into(),
        name: "latchkey".into(),
        origin: "http://app.localhost:8080".into(),
    }
}

const CHALLENGE: &[u8] = b"0123456789abcdef0123456789abcdef";

fn registered(kind: Kind) -> (SoftAuthenticator, NewPasskey) {
    let auth = SoftAuthenticator::new(kind, "user-1");
    let answer = Answer::for_rp(&rp(), CHALLENGE, true);
    let new = verify_registration(&rp(), CHALLENGE, &auth.register(&answer)).unwrap();
    (auth, new)
}

fn assertion(auth: &SoftAuthenticator, answer: &Answer) -> AssertionResponse {
    parse_assertion(&auth.assert(answer)).unwrap()
}

#[test]
fn each_algorithm_registers_and_then_signs_in() {
    for kind in [Kind::Es256, Kind::Ed25519, Kind::Rs256] {
        let (auth, new) = registered(kind);
        assert_eq!(new.id, b64_encode(&auth.id));
        assert_eq!(new.transports, vec!["internal".to_string()]);
        assert!(new.user_verified);
        let mut answer = Answer::for_rp(&rp(), b"another challenge", false);
        answer.sign_count = 7;
        let response = assertion(&auth, &answer);
        assert_eq!(response.user_handle.as_deref(), Some("user-1"));
        assert_eq!(response.id, new.id);
        let ok = verify_assertion(&rp(), b"another challenge", &response, &new.credential, 0);
        assert_eq!(
            ok,
            Ok(Verified {
                sign_count: 7,
                user_verified: true
            })
        );
    }
}

#[test]
fn options_carry_the_challenge_rp_user_and_exclusions() {
    let create = creation_options(
        &rp(),
        CHALLENGE,
        "user-1",
        "bob@example.com",
        &["abc".into()],
    );
    assert_eq!(create["rp"]["id"], "app.localhost");
    assert_eq!(create["challenge"], b64_encode(CHALLENGE));
    assert_eq!(create["user"]["id"], b64_encode(b"user-1"));
    assert_eq!(create["user"]["name"], "bob@example.com");
    assert_eq!(create["excludeCredentials"][0]["id"], "abc");
    assert_eq!(create["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(create["attestation"], "none");
    let get = request_options(&rp(), CHALLENGE, &[]);
    assert_eq!(get["rpId"], "app.localhost");
    assert_eq!(get["allowCredentials"], serde_json::json!([]));
}

#[test]
fn a_tampered_registration_is_refused_with_its_own_error() {
    let rp = rp();
    let auth = SoftAuthenticator::new(Kind::Es256, "user-1");
    let honest = Answer::for_rp(&rp, CHALLENGE, true);
    let cases: Vec<(&str, Answer, PasskeyError)> = vec![
        (
            "get instead of create",
            Answer {
                kind: "webauthn.get".into(),
                ..honest.clone()
            },
            PasskeyError::WrongType,
        ),
        (
            "another challenge",
            Answer {
                challenge: b"stale".to_vec(),
                ..honest.clone()
            },
            PasskeyError::ChallengeMismatch,
        ),
        (
            "another origin",
            Answer {
                origin: "http://evil.localhost:8080".into(),
                ..honest.clone()
            },
            PasskeyError::OriginMismatch,
        ),
        (
            "in a cross-origin frame",
            Answer {
                cross_origin: true,
                ..honest.clone()
            },
            PasskeyError::CrossOrigin,
        ),
        (
            "another RP id",
            Answer {
                rp_id: "localhost".into(),
                ..honest.clone()
            },
            PasskeyError::RpIdMismatch,
        ),
        (
            "user not present",
            Answer {
                flags: 0x04,
                ..honest.clone()
            },
            PasskeyError::UserNotPresent,
        ),
        (
            "backed up, not eligible",
            Answer {
                flags: 0x01 | 0x10,
                ..honest.clone()
            },
            PasskeyError::Malformed("backed up but not backup eligible"),
        ),
    ];
    for (name, answer, want) in cases {
        let got = verify_registration(&rp, CHALLENGE, &auth.register(&answer));
        assert_eq!(got, Err(want), "{name}");
    }
}

#[test]
fn a_registration_whose_parts_disagree_or_do_not_parse_is_malformed() {
    let rp = rp();
    let auth = SoftAuthenticator::new(Kind::Es256, "user-1");
    let honest = Answer::for_rp(&rp, CHALLENGE, true);
    let good: serde_json::Value = serde_json::from_slice(&auth.register(&honest)).unwrap();
    type Edit = fn(&mut serde_json::Value);
    let edits: Vec<(&str, Edit)> = vec![
        ("id differs", |v| v["id"] = "AAAA".into()),
        ("rawId differs", |v| v["rawId"] = "AAAA".into()),
        ("not base64", |v| {
            v["response"]["attestationObject"] = "%%%".into()
        }),
        ("not CBOR", |v| {
            v["response"]["attestationObject"] = "AAEC".into()
        }),
        ("clientData not JSON", |v| {
            v["response"]["clientDataJSON"] = "AAEC".into()
        }),
        ("no response", |v| v["response"] = serde_json::Value::Null),
        ("type", |v| v["type"] = "password".into()),
    ];
    for (name, edit) in edits {
        let mut v = good.clone();
        edit(&mut v);
        let got = verify_registration(&rp, CHALLENGE, &serde_json::to_vec(&v).unwrap());
        assert!(
            matches!(
                got,
                Err(PasskeyError::Malformed(_) | PasskeyError::WrongType)
            ),
            "{name}: {got:?}"
        );
    }
    assert!(matches!(
        verify_registration(&rp, CHALLENGE, b"\xff not json"),
        Err(PasskeyError::Malformed(_))
    ));
}

#[test]
fn an_attestation_statement_with_fmt_none_is_refused() {
    let auth = SoftAuthenticator::new(Kind::Es256, "user-1");
    let answer = Answer::for_rp(&rp(), CHALLENGE, true);
    let attestation = ciborium::Value::Map(vec![
        ("fmt".into(), "none".into()),
        (
            "attStmt".into(),
            ciborium::Value::Map(vec![("sig".into(), ciborium::Value::Bytes(vec![1]))]),
        ),
        (
            "authData".into(),
            ciborium::Value::Bytes(auth.auth_data(&answer, true)),
        ),
    ]);
    let mut v: serde_json::Value = serde_json::from_slice(&auth.register(&answer)).unwrap();
    v["response"]["attestationObject"] = b64_encode(&cbor(&attestation)).into();
    let got = verify_registration(&rp(), CHALLENGE, &serde_json::to_vec(&v).unwrap());
    assert_eq!(
        got,
        Err(PasskeyError::Malformed(
            "attestation statement with fmt none"
        ))
    );
}

#[test]
fn an_unsupported_algorithm_or_a_point_off_the_curve_is_refused() {
    let i = |n: i64| ciborium::Value::Integer(n.into());
    let es384 = cbor(&ciborium::Value::Map(vec![
        (i(1), i(2)),
        (i(3), i(-35)),
        (i(-1), i(2)),
        (i(-2), ciborium::Value::Bytes(vec![1; 48])),
        (i(-3), ciborium::Value::Bytes(vec![1; 48])),
    ]));
    let off_curve = cbor(&ciborium::Value::Map(vec![
        (i(1), i(2)),
        (i(3), i(-7)),
        (i(-1), i(1)),
        (i(-2), ciborium::Value::Bytes(vec![1; 32])),
        (i(-3), ciborium::Value::Bytes(vec![2; 32])),
    ]));
    assert!(matches!(
        cose::PublicKey::from_cose(&es384),
        Err(PasskeyError::UnsupportedAlgorithm)
    ));
    assert!(matches!(
        cose::PublicKey::from_cose(&off_curve),
        Err(PasskeyError::BadKey)
    ));
}

#[test]
fn a_tampered_assertion_is_refused_with_its_own_error() {
    let rp = rp();
    let (auth, new) = registered(Kind::Es256);
    let mut honest = Answer::for_rp(&rp, CHALLENGE, false);
    honest.sign_count = 5;
    let check = |answer: &Answer| {
        verify_assertion(
            &rp,
            CHALLENGE,
            &assertion(&auth, answer),
            &new.credential,
            4,
        )
    };
    assert!(check(&honest).is_ok());
    let cases: Vec<(&str, Answer, PasskeyError)> = vec![
        (
            "create instead of get",
            Answer {
                kind: "webauthn.create".into(),
                ..honest.clone()
            },
            PasskeyError::WrongType,
        ),
        (
            "replayed with another challenge",
            Answer {
                challenge: b"old".to_vec(),
                ..honest.clone()
            },
            PasskeyError::ChallengeMismatch,
        ),
        (
            "another origin",
            Answer {
                origin: "http://localhost:8080".into(),
                ..honest.clone()
            },
            PasskeyError::OriginMismatch,
        ),
        (
            "another RP id",
            Answer {
                rp_id: "evil.localhost".into(),
                ..honest.clone()
            },
            PasskeyError::RpIdMismatch,
        ),
        (
            "counter went back",
            Answer {
                sign_count: 3,
                ..honest.clone()
            },
            PasskeyError::ClonedAuthenticator { stored: 4, got: 3 },
        ),
        (
            "counter stood still",
            Answer {
                sign_count: 4,
                ..honest.clone()
            },
            PasskeyError::ClonedAuthenticator { stored: 4, got: 4 },
        ),
        (
            "counter dropped to zero",
            Answer {
                sign_count: 0,
                ..honest.clone()
            },
            PasskeyError::ClonedAuthenticator { stored: 4, got: 0 },
        ),
    ];
    for (name, answer, want) in cases {
        assert_eq!(check(&answer), Err(want), "{name}");
    }
}

#[test]
fn an_authenticator_without_a_counter_may_keep_it_at_zero() {
    let (auth, new) = registered(Kind::Ed25519);
    let answer = Answer::for_rp(&rp(), CHALLENGE, false);
    let got = verify_assertion(
        &rp(),
        CHALLENGE,
        &assertion(&auth, &answer),
        &new.credential,
        0,
    );
    assert_eq!(got.map(|v| v.sign_count), Ok(0));
}

#[test]
fn a_signature_by_another_key_or_over_other_bytes_is_refused() {
    let rp = rp();
    let (auth, new) = registered(Kind::Es256);
    let (other, _) = registered(Kind::Es256);
    let answer = Answer::for_rp(&rp, CHALLENGE, false);
    let by_other = assertion(&other, &answer);
    assert_eq!(
        verify_assertion(&rp, CHALLENGE, &by_other, &new.credential, 0),
        Err(PasskeyError::BadSignature)
    );
    let mut flipped = assertion(&auth, &answer);
    flipped.signature[10] ^= 1;
    assert_eq!(
        verify_assertion(&rp, CHALLENGE, &flipped, &new.credential, 0),
        Err(PasskeyError::BadSignature)
    );
    let mut uv_added = assertion(
        &auth,
        &Answer {
            flags: 0x01,
            ..answer.clone()
        },
    );
    uv_added.authenticator_data[32] |= 0x04;
    assert_eq!(
        verify_assertion(&rp, CHALLENGE, &uv_added, &new.credential, 0),
        Err(PasskeyError::BadSignature)
    );
    assert_eq!(
        verify_assertion(&rp, CHALLENGE, &assertion(&auth, &answer), "garbage", 0),
        Err(PasskeyError::BadKey)
    );
}

#[test]
fn extensions_after_the_key_are_read_and_trailing_bytes_refused() {
    let rp = rp();
    let auth = SoftAuthenticator::new(Kind::Es256, "user-1");
    let answer = Answer::for_rp(&rp, CHALLENGE, true);
    let mut with_ext = auth.auth_data(&answer, true);
    with_ext[32] |= 0x80;
    with_ext.extend_from_slice(&cbor(&ciborium::Value::Map(vec![(
        "credProtect".into(),
        ciborium::Value::Integer(1.into()),
    )])));
    assert!(authenticator_data::parse(&with_ext, &rp).is_ok());
    let mut trailing = auth.auth_data(&answer, true);
    trailing.push(0);
    assert_eq!(
        authenticator_data::parse(&trailing, &rp).map(|_| ()),
        Err(PasskeyError::Malformed("bytes after authenticatorData"))
    );
}

#[test]
fn every_truncation_of_an_answer_is_an_error_not_a_panic() {
    let rp = rp();
    let auth = SoftAuthenticator::new(Kind::Rs256, "user-1");
    let answer = Answer::for_rp(&rp, CHALLENGE, true);
    let auth_data = auth.auth_data(&answer, true);
    for end in 0..auth_data.len() {
        assert!(
            authenticator_data::parse(&auth_data[..end], &rp).is_err(),
            "{end}"
        );
    }
    let json = auth.register(&answer);
    for end in 0..json.len() {
        assert!(verify_registration(&rp, CHALLENGE, &json[..end]).is_err());
    }
    let key = auth.cose_key();
    for end in 0..key.len() {
        assert!(cose::PublicKey::from_cose(&key[..end]).is_err());
    }
}
