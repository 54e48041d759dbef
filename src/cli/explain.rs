//! `latchkey check --explain URL`: which rule decides a request and why,
//! for a caller described on the command line (`--user EMAIL` from
//! `[[users]]`, or `--roles a,b`; `--amr passkey` for a session that proved
//! a passkey; neither: anonymous). The URL is normalized as a request's
//! would be, so what is printed is what the gateway would do. Like
//! Authelia's `access-control check-policy`.

use std::fmt::Write as _;

use http::Method;

use crate::app::settings::Settings;
use crate::policy::path::{normalize_host, normalize_path};
use crate::policy::rules::{Decision, Policy, Request};
use crate::store::records::normalize_email;

/// Who is asking, as given on the command line.
pub struct Caller<'a> {
    pub user: Option<&'a str>,
    pub roles: Option<&'a str>,
    pub amr: Option<&'a str>,
}

/// The report, or what is wrong with the arguments.
pub fn explain(
    settings: &Settings,
    url: &str,
    method: &str,
    caller: &Caller<'_>,
) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| {
        format!("--explain: {url:?} is not an absolute URL ({e}); expected e.g. https://app.example.com/admin")
    })?;
    let host_port = match (parsed.host_str(), parsed.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => return Err(format!("--explain: {url:?} has no host")),
    };
    let host = normalize_host(&host_port)
        .ok_or_else(|| format!("--explain: {host_port:?} is not a host latchkey accepts"))?;
    let method: Method = method
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| format!("--method: {method:?} is not an HTTP method"))?;
    // The raw path, as sent: `Url` already resolves dot segments, so take
    // it from the text to judge exactly what a request would carry.
    let raw_path = raw_path(url);
    let path = match normalize_path(raw_path) {
        Ok(p) => p,
        Err(e) => {
            return Ok(format!(
                "request:  {method} {host}{raw_path}\ndecision: refused (400)\nwhy:      {e}; latchkey refuses ambiguous paths before any rule\n"
            ))
        }
    };

    let amr = caller.amr.unwrap_or("email");
    let (who, roles): (String, Option<Vec<String>>) = match (caller.user, caller.roles) {
        (Some(_), Some(_)) => return Err("give --user or --roles, not both".into()),
        (Some(email), None) => {
            let norm = normalize_email(email)
                .ok_or_else(|| format!("--user: {email:?} is not an email address"))?;
            let user = settings.users.get(&norm).ok_or_else(|| {
                format!("--user: {norm} is not in [[users]] (stored users are not read here; give --roles instead)")
            })?;
            (
                format!("{norm} (roles {})", list(&user.roles)),
                Some(user.roles.clone()),
            )
        }
        (None, Some(r)) => {
            let roles: Vec<String> = r
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            (format!("someone with roles {}", list(&roles)), Some(roles))
        }
        (None, None) if caller.amr.is_some() => {
            return Err("--amr describes a session: give --user or --roles too".into())
        }
        (None, None) => ("an anonymous caller".into(), None),
    };
    let passkey = amr == "passkey";
    let rules = &settings.rules;
    let req = Request {
        host: &host,
        method: &method,
        path: &path,
    };
    let verdict = rules.decide_with(&req, roles.as_deref(), passkey);
    let policy = rules.policy(&verdict);
    let signed_in = match roles {
        Some(_) => format!("{who}, signed in by {amr}"),
        None => who,
    };
    let why = match (verdict.decision, policy) {
        (Decision::Allow, Policy::Public) => "the rule is public: anyone may pass".to_owned(),
        (Decision::Allow, Policy::Authenticated) => {
            format!("{signed_in}; the rule lets in anyone signed in")
        }
        (Decision::Allow, Policy::Roles(want)) => {
            format!("{signed_in}; the rule lets in roles {}", list(want))
        }
        (Decision::SignIn, _) => format!("{signed_in}; the rule needs a signed-in person"),
        (Decision::StepUp, _) => format!(
            "{signed_in}; the rule asks for a passkey (mfa = true) that this session has not proved: the step-up page"
        ),
        (Decision::Forbid, Policy::Deny) => "the rule denies everyone".to_owned(),
        (Decision::Forbid, Policy::Roles(want)) => format!(
            "{signed_in}; the rule lets in only roles {}",
            list(want)
        ),
        (d, _) => format!("{signed_in}; {}", d.label()),
    };
    let decision = match verdict.decision {
        Decision::Allow => "allow",
        Decision::SignIn => "sign in",
        Decision::StepUp => "step up",
        Decision::Forbid => "forbid",
    };
    let mut out = String::new();
    let _ = writeln!(out, "request:  {method} {host}{path}");
    let _ = writeln!(out, "rule:     {}", rules.describe_one(verdict.rule));
    let _ = writeln!(out, "decision: {decision}");
    let _ = writeln!(out, "why:      {why}");
    Ok(out)
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items.join(",")
    }
}

/// The path part of an absolute URL as written (before `?` or `#`).
fn raw_path(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}
