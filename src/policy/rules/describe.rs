//! What `latchkey check` prints about the rules: one line per rule (index,
//! host, methods, path, policy) and the default. The rest of the `check`
//! report is the settings'.

use std::fmt::Write as _;

use http::Method;

use super::{HostPattern, Policy, Rules};

impl Rules {
    /// Human-readable listing of the compiled rules for `latchkey check`: one
    /// line per rule (index, host, methods, path, policy, roles) and the default.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let host = match &rule.host {
                HostPattern::Any => "*".to_owned(),
                HostPattern::Exact(h) => h.clone(),
                HostPattern::Subdomains(s) => format!("*{s}"),
            };
            let methods = match &rule.methods {
                None => "*".to_owned(),
                Some(m) => m.iter().map(Method::as_str).collect::<Vec<_>>().join(","),
            };
            let _ = writeln!(
                out,
                "rules[{i}]  host {host}  methods {methods}  path {}  → {}",
                rule.path.text,
                describe_policy(&rule.policy)
            );
        }
        let _ = writeln!(
            out,
            "default   → {}{}",
            describe_policy(&self.default),
            if self.case_insensitive {
                "  (paths compared without regard to ASCII case)"
            } else {
                ""
            }
        );
        out
    }
}

fn describe_policy(policy: &Policy) -> String {
    match policy {
        Policy::Public => "public".into(),
        Policy::Authenticated => "authenticated".into(),
        Policy::Roles(r) => format!("roles {}", r.join(",")),
        Policy::Deny => "deny".into(),
    }
}
