//! An independent JWT verifier: Python's PyJWT (with `cryptography`), from
//! the venv scripts/setup makes under `.tools/`. It knows nothing of
//! latchkey: it gets a JWKS document and tokens, and says for each whether
//! it verifies (signature by the key its `kid` names, `aud`, `iss`, `exp`),
//! with the claims and header, or which PyJWT error refused it.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use super::{require_program, tools_dir};

const VERIFY: &str = r#"
import json, sys
import jwt

req = json.load(sys.stdin)
keys = jwt.PyJWKSet.from_dict(req["jwks"])
out = []
for case in req["cases"]:
    try:
        header = jwt.get_unverified_header(case["token"])
        jwk = keys[header["kid"]]
        claims = jwt.decode(
            case["token"],
            jwk.key,
            algorithms=[jwk.algorithm_name],
            audience=case["aud"],
            issuer=case["iss"],
            leeway=case.get("leeway", 0),
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
        out.append({"ok": True, "claims": claims, "header": header})
    except Exception as e:
        out.append({"ok": False, "error": type(e).__name__, "detail": str(e)})
print(json.dumps(out))
"#;

/// One token to check: against audience `aud` and issuer `iss`, allowing
/// `leeway` seconds of clock skew on `exp` (0: none).
pub struct Case<'a> {
    pub token: &'a str,
    pub aud: &'a str,
    pub iss: &'a str,
    pub leeway: u64,
}

/// Verifies every case against `jwks`; one result per case:
/// `{"ok":true,"claims":{..},"header":{..}}` or `{"ok":false,"error":"ExpiredSignatureError",..}`.
pub fn verify(jwks: &Value, cases: &[Case<'_>]) -> Vec<Value> {
    let python = require_program(
        "python-with-pyjwt",
        &[tools_dir().join("venv/bin/python")],
        "pip install pyjwt cryptography into .tools/venv",
    );
    let cases: Vec<Value> = cases
        .iter()
        .map(|c| json!({ "token": c.token, "aud": c.aud, "iss": c.iss, "leeway": c.leeway }))
        .collect();
    let input = json!({ "jwks": jwks, "cases": cases }).to_string();
    let mut child = Command::new(&python)
        .args(["-c", VERIFY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", python.display()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write to python");
    let out = child.wait_with_output().expect("python output");
    assert!(
        out.status.success(),
        "PyJWT verifier failed (is pyjwt installed? run scripts/setup):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "PyJWT verifier printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
