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
        for i in 0..self.rules.len() {
            let _ = writeln!(out, "{}", self.describe_one(Some(i)));
        }
        let _ = writeln!(
            out,
            "{}{}",
            self.describe_one(None),
            if self.case_insensitive {
                "  (paths compared without regard to ASCII case)"
            } else {
                ""
            }
        );
        out
    }

    /// One line of `describe`: rule `i`, or the default for `None`.
    pub fn describe_one(&self, i: Option<usize>) -> String {
        let Some((i, rule)) = i.and_then(|i| Some((i, self.rules.get(i)?))) else {
            return format!("default   → {}", describe_policy(&self.default));
        };
        let host = match &rule.host {
            HostPattern::Any => "*".to_owned(),
            HostPattern::Exact(h) => h.clone(),
            HostPattern::Subdomains(s) => format!("*{s}"),
        };
        let methods = match &rule.methods {
            None => "*".to_owned(),
            Some(m) => m.iter().map(Method::as_str).collect::<Vec<_>>().join(","),
        };
        format!(
            "rules[{i}]  host {host}  methods {methods}  path {}  → {}{}",
            rule.path.text,
            describe_policy(&rule.policy),
            if rule.mfa { " + passkey (mfa)" } else { "" }
        )
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
