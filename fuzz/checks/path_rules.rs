// Path normalization + rule decision. Properties: a normalized path is
// canonical (ASCII, rooted, no empty or dot segments, idempotent, nothing
// ambiguous left), and no path that a common upstream reading (decode once,
// cut `;` parameters, resolve dot segments, skip empty segments; in IIS
// mode also fold case and drop trailing dots/spaces) puts under /admin is
// ever allowed to a member or an anonymous caller.

use std::sync::OnceLock;

use http::Method;
use latchkey::config::{AccessConfig, RuleConfig};
use latchkey::policy::path::{normalize_host, normalize_path, split_target};
use latchkey::policy::rules::{Decision, Request, Rules};

fn rule(path: &str, policy: &str, roles: Option<&[&str]>) -> RuleConfig {
    RuleConfig {
        host: None,
        path: Some(path.to_owned()),
        methods: None,
        policy: policy.to_owned(),
        roles: roles.map(|r| r.iter().map(|s| (*s).to_owned()).collect()),
        mfa: false,
    }
}

fn rules(case_insensitive: bool) -> &'static Rules {
    static SENSITIVE: OnceLock<Rules> = OnceLock::new();
    static INSENSITIVE: OnceLock<Rules> = OnceLock::new();
    let cell = if case_insensitive { &INSENSITIVE } else { &SENSITIVE };
    cell.get_or_init(|| {
        let cfg = [
            rule("/public/**", "public", None),
            rule("/admin/**", "roles", Some(&["admin"])),
        ];
        let access = AccessConfig {
            default: "authenticated".into(),
            case_insensitive_paths: case_insensitive,
        };
        Rules::compile(&cfg, &access).unwrap_or_else(|e| panic!("{e:?}"))
    })
}

fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Does a common upstream reading of `path` land under /admin?
fn reads_as_admin(path: &str, iis: bool) -> bool {
    let decoded = percent_decode(path.as_bytes());
    let mut stack: Vec<Vec<u8>> = Vec::new();
    for seg in decoded.split(|&b| b == b'/') {
        let mut seg = seg.split(|&b| b == b';').next().unwrap_or(&[]).to_vec();
        if iis {
            seg.make_ascii_lowercase();
            while seg.last().is_some_and(|&b| b == b'.' || b == b' ') && seg != b".." && seg != b"." {
                seg.pop();
            }
        }
        match seg.as_slice() {
            b"" | b"." => {}
            b".." => {
                stack.pop();
            }
            _ => stack.push(seg),
        }
    }
    stack.first().is_some_and(|s| s == b"admin")
}

/// The property this target checks, for one input (also replayed by the
/// test suite over `fuzz/regressions/path_rules/`).
pub fn check(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let iis = flags & 1 == 1;
    let text = String::from_utf8_lossy(rest);
    let _ = normalize_host(&text);
    let (raw_path, _query) = split_target(&text);
    let Ok(path) = normalize_path(raw_path) else {
        return;
    };
    assert!(path.is_ascii() && path.starts_with('/'), "{text:?} -> {path:?}");
    assert!(!path.contains("//"), "{text:?} -> {path:?}");
    assert!(!path.contains('\\') && !path.contains('#'), "{text:?} -> {path:?}");
    assert!(
        !path.split('/').any(|s| s == "." || s == ".."),
        "{text:?} -> {path:?}"
    );
    let upper = path.to_ascii_uppercase();
    for bad in ["%2F", "%5C", "%00", "%2E"] {
        assert!(!upper.contains(bad), "{text:?} -> {path:?}");
    }
    assert_eq!(normalize_path(&path).as_deref(), Ok(path.as_str()), "{text:?}");

    let r = rules(iis);
    let req = Request {
        host: "app.example.com",
        method: &Method::GET,
        path: &path,
    };
    let member = ["member".to_owned()];
    let as_member = r.decide(&req, Some(&member)).decision;
    let as_anon = r.decide(&req, None).decision;
    if reads_as_admin(&path, iis) {
        assert_eq!(as_member, Decision::Forbid, "{text:?} -> {path:?}");
        assert_ne!(as_anon, Decision::Allow, "{text:?} -> {path:?}");
    }
}
