//! Access rules: `[[rules]]` and `[access]` compiled once into `Rules`, and the
//! pure decision `Rules::decide(request, roles)` the gate asks for each request.
//!
//! Compiling checks every rule and reports every problem at once, one line
//! each naming the key, the value and what is expected. Deciding does no I/O
//! and no allocation: the first rule that matches host, method and path
//! decides, otherwise `[access].default` does.
//!
//! Matching, given a host from `path::normalize_host` and a path from
//! `path::normalize_path` (this module normalizes nothing on the request side):
//! - host: exact, or `*.example.com` for any subdomain of any depth (never
//!   `example.com` itself); no host in the rule means any host.
//! - methods: exact, case-sensitive HTTP methods; none means any. `HEAD` is
//!   NOT implied by `GET`: list it when a rule for `GET` should cover it (a
//!   `HEAD` request that no rule names falls through to later rules and the
//!   default, so keep the default strict).
//! - path: segment by segment. `*` is exactly one segment, a final `/**` any
//!   number including none (`/admin/**` matches `/admin`, `/admin/` and
//!   `/admin/a/b`, never `/administrator`). Patterns are normalized like
//!   requests at compile time. Request segments are compared with their path
//!   parameters (`;x=1`, also when the `;` is encoded as `%3B`, which some
//!   upstreams decode before they cut parameters) removed, as Tomcat-like
//!   upstreams do, so `/admin;x=1/secret` and `/admin%3Bx/secret` are judged
//!   as `/admin/secret`; segments that are empty
//!   once parameters are removed do not count, and neither does a trailing
//!   slash (`/x` matches `/x/`). The caller still forwards the path as
//!   normalized, parameters included.
//! - `access.case_insensitive_paths = true` compares path segments without
//!   regard to ASCII case and, as Windows file names do, without trailing
//!   dots and spaces (`/ADMIN./x` and `/admin%20/x` are `/admin/x`), for
//!   upstreams such as IIS; otherwise paths are compared byte for byte.

//!
//! The pieces: this file holds the types and `decide`; `compile` turns
//! the config into them (and says what is wrong with it); `matching`
//! compares a request with a rule (host index, path segments); `describe`
//! is what `latchkey check` prints. What a role name may be is
//! `policy::roles`'.

mod compile;
mod describe;
mod matching;

use std::collections::HashMap;

use http::Method;

pub(crate) use compile::KNOWN_METHODS;
use matching::Segments;

/// What a rule (or the default) requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    Public,
    Authenticated,
    /// Signed in with any one of these roles.
    Roles(Vec<String>),
    Deny,
}

/// The outcome of `Rules::decide`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    SignIn,
    /// Signed in and allowed by roles, but the rule asks for a passkey
    /// (`mfa = true`) that this session has not proved.
    StepUp,
    Forbid,
}

impl Decision {
    /// Of two decisions, the one that lets less through: forbid over sign
    /// in over step-up over allow.
    pub fn stricter(self, other: Decision) -> Decision {
        let rank = |d: Decision| match d {
            Decision::Allow => 0,
            Decision::StepUp => 1,
            Decision::SignIn => 2,
            Decision::Forbid => 3,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }

    /// For logs: `allow`, `sign_in`, `step_up`, `forbid`.
    pub fn label(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::SignIn => "sign_in",
            Decision::StepUp => "step_up",
            Decision::Forbid => "forbid",
        }
    }
}

/// A decision and what made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    /// index into [[rules]], None = [access].default
    pub rule: Option<usize>,
}

/// The request as the rules see it.
pub struct Request<'a> {
    /// Already `normalize_host`'ed.
    pub host: &'a str,
    pub method: &'a Method,
    /// Already `normalize_path`'ed.
    pub path: &'a str,
}

/// The compiled `[[rules]]` and `[access]`.
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<Rule>,
    default: Policy,
    case_insensitive: bool,
    /// For each host named exactly by some rule: the indexes of the rules that
    /// can match it (its exact rules, the wildcards covering it and the rules
    /// for any host), in order.
    by_host: HashMap<String, Vec<usize>>,
    /// For each wildcard suffix (".example.com" of `*.example.com`): the
    /// rules that can match a host under it that no rule names exactly (the
    /// wildcards whose suffix ends this one, and the rules for any host), in
    /// order. A host looks up its longest suffix found here.
    by_suffix: HashMap<String, Vec<usize>>,
    /// Indexes of the rules for any host, in order: the candidates of a host
    /// that no rule names or covers.
    any_host: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Rule {
    host: HostPattern,
    methods: Option<Vec<Method>>,
    path: PathPattern,
    policy: Policy,
    /// `mfa = true`: a passkey must have been proved.
    mfa: bool,
}

#[derive(Debug, Clone)]
enum HostPattern {
    Any,
    Exact(String),
    /// `*.example.com`, kept as ".example.com".
    Subdomains(String),
}

#[derive(Debug, Clone)]
struct PathPattern {
    /// As written after normalization, for `describe`.
    text: String,
    segments: Vec<Segment>,
    /// Ends in `/**`.
    any_depth: bool,
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    /// `*`
    One,
}

impl Rules {
    /// Pure: first matching rule decides, else the default. `roles == None`
    /// means anonymous. A signed-in caller is taken not to have proved a
    /// passkey (see [`Rules::decide_with`]).
    pub fn decide(&self, req: &Request<'_>, roles: Option<&[String]>) -> Verdict {
        self.decide_with(req, roles, false)
    }

    /// As `decide`, knowing whether the caller's session proved a passkey
    /// (`mfa = true` rules admit only such a one).
    pub fn decide_with(
        &self,
        req: &Request<'_>,
        roles: Option<&[String]>,
        passkey: bool,
    ) -> Verdict {
        let segments = Segments::split(req.path, self.case_insensitive);
        let segments = segments.as_ref().map(Segments::as_slice);
        let rule = if req.host.ends_with('.') || req.host.bytes().any(|b| b.is_ascii_uppercase()) {
            // Not normalized as promised: the host index would miss it, so
            // look at every rule rather than skip an exact-host one.
            (0..self.rules.len()).find(|&i| self.matches(i, req, segments))
        } else {
            self.candidates(req.host)
                .iter()
                .copied()
                .find(|&i| self.matches(i, req, segments))
        };
        let (policy, mfa) = match rule {
            Some(i) => (&self.rules[i].policy, self.rules[i].mfa),
            None => (&self.default, false),
        };
        let decision = match judge(policy, roles) {
            Decision::Allow if mfa && roles.is_some() && !passkey => Decision::StepUp,
            d => d,
        };
        Verdict { decision, rule }
    }

    /// The decision for `req`, and for `req` as method `also` when given
    /// (a method override the app may honour): the stricter of the two.
    pub fn decide_as(
        &self,
        req: &Request<'_>,
        also: Option<&Method>,
        roles: Option<&[String]>,
        passkey: bool,
    ) -> Decision {
        let first = self.decide_with(req, roles, passkey).decision;
        match also {
            Some(method) if method != req.method => {
                let other = Request { method, ..*req };
                first.stricter(self.decide_with(&other, roles, passkey).decision)
            }
            _ => first,
        }
    }

    /// Whether the rule that made `verdict` asks for a passkey.
    pub fn mfa(&self, verdict: &Verdict) -> bool {
        verdict
            .rule
            .and_then(|i| self.rules.get(i))
            .is_some_and(|r| r.mfa)
    }

    /// The policy that made `verdict` (a rule's or the default).
    pub fn policy(&self, verdict: &Verdict) -> &Policy {
        verdict
            .rule
            .and_then(|i| self.rules.get(i))
            .map_or(&self.default, |r| &r.policy)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

fn judge(policy: &Policy, roles: Option<&[String]>) -> Decision {
    match (policy, roles) {
        (Policy::Public, _) => Decision::Allow,
        (Policy::Deny, _) => Decision::Forbid,
        (_, None) => Decision::SignIn,
        (Policy::Authenticated, Some(_)) => Decision::Allow,
        (Policy::Roles(wanted), Some(have)) => {
            if have.iter().any(|r| wanted.contains(r)) {
                Decision::Allow
            } else {
                Decision::Forbid
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matching::MAX_SEGMENTS;
    use super::*;
    use crate::config::{AccessConfig, RuleConfig};

    fn rule(
        host: Option<&str>,
        path: Option<&str>,
        methods: Option<&[&str]>,
        policy: &str,
        roles: Option<&[&str]>,
    ) -> RuleConfig {
        RuleConfig {
            host: host.map(Into::into),
            path: path.map(Into::into),
            methods: methods.map(|m| m.iter().map(|s| s.to_string()).collect()),
            policy: policy.into(),
            roles: roles.map(|r| r.iter().map(|s| s.to_string()).collect()),
            mfa: false,
        }
    }

    fn access(default: &str, case_insensitive_paths: bool) -> AccessConfig {
        AccessConfig {
            default: default.into(),
            case_insensitive_paths,
        }
    }

    fn sample() -> Rules {
        let rules = [
            // 0
            rule(None, Some("/health"), None, "public", None),
            // 1
            rule(
                Some("app.example.com"),
                Some("/admin/**"),
                None,
                "roles",
                Some(&["admin"]),
            ),
            // 2
            rule(
                Some("app.example.com"),
                Some("/public/**"),
                Some(&["GET"]),
                "public",
                None,
            ),
            // 3
            rule(
                Some("*.example.com"),
                Some("/reports/*"),
                None,
                "roles",
                Some(&["member", "admin"]),
            ),
            // 4
            rule(None, Some("/internal/**"), None, "deny", None),
            // 5: shadowed for app.example.com by rule 1
            rule(None, Some("/admin/open"), None, "public", None),
            // 6
            rule(Some("static.example.com"), None, None, "public", None),
            // 7
            rule(
                None,
                Some("/api/*/items"),
                Some(&["POST", "DELETE"]),
                "authenticated",
                None,
            ),
            // 8
            rule(Some("App.Example.COM."), Some("/"), None, "public", None),
            // 9
            rule(Some("[::1]"), Some("/**"), None, "deny", None),
        ];
        match Rules::compile(&rules, &access("authenticated", false)) {
            Ok(r) => r,
            Err(e) => panic!("{e:#?}"),
        }
    }

    /// host, method, path, roles, expected decision, expected rule
    type Case<'a> = (
        &'a str,
        &'a Method,
        &'a str,
        Option<&'a [String]>,
        Decision,
        Option<usize>,
    );

    /// The host index and the pre-split path pick exactly the rule a plain
    /// scan of every rule would, for hosts that are named, covered by one or
    /// several nested wildcards, or unknown, and paths short and long.
    #[test]
    fn an_mfa_rule_asks_a_signed_in_caller_for_a_passkey_and_nothing_more() {
        let mut vault = rule(None, Some("/vault/**"), None, "roles", Some(&["ops"]));
        vault.mfa = true;
        let rules = Rules::compile(&[vault], &access("authenticated", false)).unwrap();
        let get = Method::GET;
        let at = |path| Request {
            host: "a.example.com",
            method: &get,
            path,
        };
        let ops = ["ops".to_owned()];
        let member = ["member".to_owned()];
        let decide = |path, roles: Option<&[String]>, passkey| {
            rules.decide_with(&at(path), roles, passkey).decision
        };
        assert_eq!(decide("/vault/x", None, false), Decision::SignIn);
        assert_eq!(decide("/vault/x", Some(&ops), false), Decision::StepUp);
        assert_eq!(decide("/vault/x", Some(&ops), true), Decision::Allow);
        // The roles still decide first: a passkey does not let a member in.
        assert_eq!(decide("/vault/x", Some(&member), true), Decision::Forbid);
        assert_eq!(decide("/vault/x", Some(&member), false), Decision::Forbid);
        // Elsewhere the passkey is not asked for; `decide` assumes none.
        assert_eq!(decide("/other", Some(&member), false), Decision::Allow);
        assert_eq!(
            rules.decide(&at("/vault/x"), Some(&ops)).decision,
            Decision::StepUp
        );
        // Of two methods, the stricter: step-up is stricter than allow only.
        assert_eq!(Decision::Allow.stricter(Decision::StepUp), Decision::StepUp);
        assert_eq!(
            Decision::StepUp.stricter(Decision::SignIn),
            Decision::SignIn
        );
        assert_eq!(
            Decision::Forbid.stricter(Decision::StepUp),
            Decision::Forbid
        );
    }

    #[test]
    fn indexed_decision_equals_a_full_scan() {
        let hosts = [
            Some("a.example.com"),
            Some("*.example.com"),
            Some("*.deep.example.com"),
            Some("deep.example.com"),
            Some("*.example.org"),
            Some("example.org"),
            None,
        ];
        let paths = ["/**", "/a/**", "/a/*", "/a/b", "/*/b/**", "/b", "/a/b/"];
        let mut configs = Vec::new();
        for (i, host) in hosts.iter().enumerate() {
            for (j, path) in paths.iter().enumerate() {
                if (i * 7 + j) % 3 == 0 {
                    continue;
                }
                let policy = ["public", "deny", "authenticated"][(i + j) % 3];
                let methods: Option<&[&str]> = ((i + j) % 4 == 0).then_some(&["POST"][..]);
                configs.push(rule(*host, Some(path), methods, policy, None));
            }
        }
        let rules = match Rules::compile(&configs, &access("deny", false)) {
            Ok(r) => r,
            Err(e) => panic!("{e:#?}"),
        };
        let long = format!("/a{}", "/x".repeat(MAX_SEGMENTS + 3));
        let request_hosts = [
            "a.example.com",
            "b.example.com",
            "x.deep.example.com",
            "y.x.deep.example.com",
            "deep.example.com",
            "example.com",
            "example.org",
            "w.example.org",
            "other.net",
            "com",
            "[::1]",
        ];
        let request_paths = ["/", "/a", "/a/", "/a/b", "/a;p=1/b", "/c/b/d", "/b", &long];
        for host in request_hosts {
            for path in request_paths {
                for method in [&Method::GET, &Method::POST] {
                    let req = Request { host, method, path };
                    let scan = (0..rules.len()).find(|&i| rules.matches(i, &req, None));
                    assert_eq!(rules.decide(&req, None).rule, scan, "{method} {host}{path}");
                }
            }
        }
    }

    #[test]
    fn decide_table() {
        use Decision::*;
        let rules = sample();
        let anon: Option<&[String]> = None;
        let member_roles = vec!["member".to_string()];
        let admin_roles = vec!["admin".to_string()];
        let no_roles: Vec<String> = Vec::new();
        let member = Some(member_roles.as_slice());
        let admin = Some(admin_roles.as_slice());
        let nobody = Some(no_roles.as_slice());
        let (get, post, head, delete) = (Method::GET, Method::POST, Method::HEAD, Method::DELETE);

        #[rustfmt::skip]
        let cases: &[Case] = &[
            // public rule, any host
            ("app.example.com", &get, "/health", anon, Allow, Some(0)),
            ("other.org", &post, "/health", anon, Allow, Some(0)),
            ("other.org", &get, "/health/", anon, Allow, Some(0)),
            ("other.org", &get, "/health/x", anon, SignIn, None),
            ("other.org", &get, "/healthz", anon, SignIn, None),
            // roles rule: anonymous / member / admin
            ("app.example.com", &get, "/admin", anon, SignIn, Some(1)),
            ("app.example.com", &get, "/admin", member, Forbid, Some(1)),
            ("app.example.com", &get, "/admin", admin, Allow, Some(1)),
            ("app.example.com", &get, "/admin", nobody, Forbid, Some(1)),
            ("app.example.com", &get, "/admin/", admin, Allow, Some(1)),
            ("app.example.com", &post, "/admin/a/b/c", member, Forbid, Some(1)),
            ("app.example.com", &get, "/administrator", member, Allow, None),
            ("app.example.com", &get, "/administrator", anon, SignIn, None),
            // path parameters do not hide a segment
            ("app.example.com", &get, "/admin;x=1/secret", member, Forbid, Some(1)),
            ("app.example.com", &get, "/;x/admin/secret", anon, SignIn, Some(1)),
            ("app.example.com", &get, "/admin;/", member, Forbid, Some(1)),
            // paths are case-sensitive by default
            ("app.example.com", &get, "/ADMIN", member, Allow, None),
            // first match: rule 1 shadows rule 5 on app.example.com
            ("app.example.com", &get, "/admin/open", anon, SignIn, Some(1)),
            ("other.org", &get, "/admin/open", anon, Allow, Some(5)),
            // methods
            ("app.example.com", &get, "/public/x", anon, Allow, Some(2)),
            ("app.example.com", &head, "/public/x", anon, SignIn, None),
            ("app.example.com", &post, "/public/x", anon, SignIn, None),
            ("app.example.com", &get, "/public", anon, Allow, Some(2)),
            ("other.example.com", &get, "/public/x", anon, SignIn, None),
            // wildcard host, one-segment glob
            ("app.example.com", &get, "/reports/q1", member, Allow, Some(3)),
            ("a.b.example.com", &get, "/reports/q1", admin, Allow, Some(3)),
            ("x.example.com", &get, "/reports/q1", anon, SignIn, Some(3)),
            ("x.example.com", &get, "/reports/q1", nobody, Forbid, Some(3)),
            ("example.com", &get, "/reports/q1", member, Allow, None),
            ("evilexample.com", &get, "/reports/q1", anon, SignIn, None),
            ("example.com.evil.org", &get, "/reports/q1", anon, SignIn, None),
            ("x.example.com", &get, "/reports", member, Allow, None),
            ("x.example.com", &get, "/reports/", member, Allow, None),
            ("x.example.com", &get, "/reports/q1/detail", anon, SignIn, None),
            // deny beats everyone, anonymous included
            ("app.example.com", &get, "/internal", anon, Forbid, Some(4)),
            ("app.example.com", &get, "/internal/x", admin, Forbid, Some(4)),
            ("other.org", &get, "/internal/a/b", member, Forbid, Some(4)),
            ("other.org", &get, "/internalx", member, Allow, None),
            // exact host without path: everything on it
            ("static.example.com", &get, "/", anon, Allow, Some(6)),
            ("static.example.com", &delete, "/a/b", anon, Allow, Some(6)),
            ("static2.example.com", &get, "/", anon, SignIn, None),
            // inner glob with methods
            ("other.org", &post, "/api/v1/items", anon, SignIn, Some(7)),
            ("other.org", &post, "/api/v1/items", nobody, Allow, Some(7)),
            ("other.org", &delete, "/api/v2/items/", member, Allow, Some(7)),
            ("other.org", &get, "/api/v1/items", anon, SignIn, None),
            ("other.org", &post, "/api/items", anon, SignIn, None),
            ("other.org", &post, "/api/v1/x/items", anon, SignIn, None),
            // rule host normalized at compile time; exact root path
            ("app.example.com", &get, "/", anon, Allow, Some(8)),
            ("app.example.com", &get, "/;jsessionid=1", anon, Allow, Some(8)),
            ("App.Example.com", &get, "/", anon, Allow, Some(8)),
            ("App.Example.com", &get, "/admin", member, Forbid, Some(1)),
            ("app.example.com.", &get, "/admin", member, Forbid, Some(1)),
            ("x.example.com.", &get, "/reports/q1", anon, SignIn, Some(3)),
            // IPv6 literal host
            ("[::1]", &get, "/anything", admin, Forbid, Some(9)),
            // default
            ("other.org", &get, "/", anon, SignIn, None),
            ("other.org", &get, "/", member, Allow, None),
            ("other.org", &get, "/", nobody, Allow, None),
        ];
        assert!(cases.len() >= 40);
        for (host, method, path, roles, decision, rule) in cases {
            let req = Request { host, method, path };
            let got = rules.decide(&req, *roles);
            assert_eq!(
                got,
                Verdict {
                    decision: *decision,
                    rule: *rule
                },
                "{host} {method} {path} as {roles:?}"
            );
        }
    }

    #[test]
    fn default_policies() {
        let admin_roles = vec!["admin".to_string()];
        let req = Request {
            host: "h",
            method: &Method::GET,
            path: "/",
        };
        for (default, anon, signed) in [
            ("public", Decision::Allow, Decision::Allow),
            ("authenticated", Decision::SignIn, Decision::Allow),
            ("deny", Decision::Forbid, Decision::Forbid),
        ] {
            let rules = Rules::compile(&[], &access(default, false)).map_err(|e| e.join("\n"));
            let Ok(rules) = rules else {
                panic!("{default}: {rules:?}")
            };
            assert!(rules.is_empty());
            assert_eq!(
                rules.decide(&req, None),
                Verdict {
                    decision: anon,
                    rule: None
                }
            );
            assert_eq!(
                rules.decide(&req, Some(&admin_roles)),
                Verdict {
                    decision: signed,
                    rule: None
                }
            );
        }
    }

    #[test]
    fn case_insensitive_paths() {
        let cfg = [rule(None, Some("/Admin/**"), None, "deny", None)];
        let Ok(insensitive) = Rules::compile(&cfg, &access("public", true)) else {
            panic!()
        };
        let Ok(sensitive) = Rules::compile(&cfg, &access("public", false)) else {
            panic!()
        };
        for path in [
            "/admin",
            "/ADMIN/x",
            "/aDmIn;x/y",
            "/admin./x",
            "/ADMIN%20/x",
            "/Admin.%20./x",
        ] {
            let req = Request {
                host: "h",
                method: &Method::GET,
                path,
            };
            assert_eq!(
                insensitive.decide(&req, None).decision,
                Decision::Forbid,
                "{path}"
            );
            assert_eq!(
                sensitive.decide(&req, None).decision,
                Decision::Allow,
                "{path}"
            );
        }
        let req = Request {
            host: "h",
            method: &Method::GET,
            path: "/Admin/x",
        };
        assert_eq!(sensitive.decide(&req, None).decision, Decision::Forbid);
        assert!(insensitive.describe().contains("ASCII case"));
        // Case-sensitive: "admin." is another name.
        let req = Request {
            host: "h",
            method: &Method::GET,
            path: "/Admin./x",
        };
        assert_eq!(sensitive.decide(&req, None).decision, Decision::Allow);
    }

    #[test]
    fn encoded_semicolons_start_parameters_too() {
        let cfg = [rule(None, Some("/admin/**"), None, "deny", None)];
        let Ok(rules) = Rules::compile(&cfg, &access("public", false)) else {
            panic!()
        };
        for (path, want) in [
            ("/admin%3Bx/y", Decision::Forbid),
            ("/admin%3b/y", Decision::Forbid),
            ("/admin;a%3Bb/y", Decision::Forbid),
            ("/%3Bx/admin/y", Decision::Forbid),
            ("/admin%3/y", Decision::Allow),
            ("/admin%33B/y", Decision::Allow),
        ] {
            let req = Request {
                host: "h",
                method: &Method::GET,
                path,
            };
            assert_eq!(rules.decide(&req, None).decision, want, "{path}");
        }
    }

    #[test]
    fn pattern_normalization() {
        let cfg = [
            rule(None, Some("/a/./b/../%7Euser/**"), None, "deny", None),
            rule(None, Some("//x//y/"), None, "deny", None),
        ];
        let Ok(rules) = Rules::compile(&cfg, &access("public", false)) else {
            panic!()
        };
        let d = |path| {
            rules.decide(
                &Request {
                    host: "h",
                    method: &Method::GET,
                    path,
                },
                None,
            )
        };
        assert_eq!(d("/a/~user/z").rule, Some(0));
        assert_eq!(d("/x/y").rule, Some(1));
        assert_eq!(d("/x/y/").rule, Some(1));
        assert_eq!(d("/x").rule, None);
    }

    #[test]
    fn compile_reports_every_problem() {
        let cfg = [
            rule(None, Some("/a"), None, "roles", None),
            rule(None, Some("admin/**"), None, "public", None),
            rule(None, None, None, "rolez", None),
            rule(None, None, Some(&["GET", "GETT", "get"]), "public", None),
            rule(None, None, None, "public", Some(&["admin"])),
            rule(None, Some("/a/**/b"), None, "deny", None),
            rule(None, Some("/a/x*"), None, "deny", None),
            rule(None, Some("/a/b**"), None, "deny", None),
            rule(Some("*"), None, None, "deny", None),
            rule(Some("app.example.com:8080"), None, None, "deny", None),
            rule(Some("a.*.example.com"), None, None, "deny", None),
            rule(Some("bad host"), None, None, "deny", None),
            rule(None, Some("/a%2Fb"), None, "deny", None),
            rule(None, Some("/../a"), None, "deny", None),
            rule(None, None, Some(&[]), "deny", None),
            rule(None, None, None, "roles", Some(&[])),
            rule(None, None, None, "roles", Some(&["ok", "", "a,b"])),
            rule(None, Some("/a;v=1/b"), None, "deny", None),
            rule(Some("*.10.0.0.1"), None, None, "deny", None),
            rule(None, Some("/a/**/.."), None, "deny", None),
        ];
        let Err(problems) = Rules::compile(&cfg, &access("roles", false)) else {
            panic!()
        };
        let expected: &[&str] = &[
            "access.default: \"roles\" cannot be the default",
            "rules[0].roles: policy \"roles\" needs at least one role",
            "rules[1].path: \"admin/**\" must start with \"/\"",
            "rules[2].policy: \"rolez\" is not a policy; expected one of public, authenticated, roles, deny",
            "rules[3].methods[1]: \"GETT\" is not an HTTP method",
            "rules[3].methods[2]: \"get\" is not an HTTP method; methods are case-sensitive, expected \"GET\"",
            "rules[4].roles: [\"admin\"] given with policy \"public\"",
            "rules[5].path: \"/a/**/b\" has \"**\" before the end",
            "rules[6].path: \"/a/x*\" has \"x*\"",
            "rules[7].path: \"/a/b**\" has \"b**\"",
            "rules[8].host: \"*\" is not a host",
            "rules[9].host: \"app.example.com:8080\" has a port",
            "rules[10].host: \"a.*.example.com\" is not a host",
            "rules[11].host: \"bad host\" is not a host name",
            "rules[12].path: \"/a%2Fb\" is not a valid path: the path contains an encoded slash",
            "rules[13].path: \"/../a\" is not a valid path: the path climbs above the root",
            "rules[14].methods: [] names no method",
            "rules[15].roles: policy \"roles\" needs at least one role",
            "rules[16].roles[1]: \"\" is empty",
            "rules[16].roles[2]: \"a,b\" is not a role name",
            "rules[17].path: \"/a;v=1/b\" contains \";\"",
            "rules[18].host: \"*.10.0.0.1\" puts \"*.\" before an IP address",
            "rules[19].path: \"/a/**/..\" has \"**\" before the end",
        ];
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
        for (got, want) in problems.iter().zip(expected) {
            assert!(got.starts_with(want), "got {got:?}\nwant {want:?}");
        }
    }

    #[test]
    fn bad_default_policy() {
        let Err(p) = Rules::compile(&[], &access("Public", false)) else {
            panic!()
        };
        assert_eq!(
            p,
            vec!["access.default: \"Public\" is not a policy; expected one of public, authenticated, deny".to_string()]
        );
    }

    #[test]
    fn describe_lists_rules_and_default() {
        let text = sample().describe();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 11);
        assert_eq!(
            lines[1],
            "rules[1]  host app.example.com  methods *  path /admin/**  → roles admin"
        );
        assert_eq!(
            lines[3],
            "rules[3]  host *.example.com  methods *  path /reports/*  → roles member,admin"
        );
        assert_eq!(
            lines[7],
            "rules[7]  host *  methods POST,DELETE  path /api/*/items  → authenticated"
        );
        assert_eq!(lines[10], "default   → authenticated");
    }

    #[test]
    fn policy_of_verdict() {
        let rules = sample();
        let v = Verdict {
            decision: Decision::Forbid,
            rule: Some(4),
        };
        assert_eq!(rules.policy(&v), &Policy::Deny);
        let v = Verdict {
            decision: Decision::SignIn,
            rule: None,
        };
        assert_eq!(rules.policy(&v), &Policy::Authenticated);
        assert_eq!(rules.len(), 10);
    }
}
