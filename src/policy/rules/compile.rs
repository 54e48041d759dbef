//! Compiling `[[rules]]` and `[access]` into `Rules`: every rule checked,
//! every problem reported at once (one line each naming the key, the value
//! and what is expected), patterns normalized like requests, and the host
//! index built. Matching a request is `matching`'s.

use std::collections::HashMap;

use http::Method;

use super::{HostPattern, PathPattern, Policy, Rule, Rules, Segment};
use crate::config::{AccessConfig, RuleConfig};
use crate::policy::path::{normalize_host, normalize_path, split_host_port};
use crate::policy::roles::check_role_name;

const POLICIES: &str = "public, authenticated, roles, deny";

/// Methods a rule may name. `http::Method` accepts any token, which would let
/// a typo such as "GETT" silently never match.
pub(crate) const KNOWN_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    // WebDAV
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "REPORT",
    "SEARCH",
];

impl Rules {
    /// Compiles `[[rules]]` + `[access]`. Collects EVERY problem, each a line
    /// naming the key, the value and what is expected.
    pub fn compile(rules: &[RuleConfig], access: &AccessConfig) -> Result<Rules, Vec<String>> {
        let mut problems = Vec::new();
        let default = compile_default(&access.default, &mut problems);
        let compiled: Vec<Option<Rule>> = rules
            .iter()
            .enumerate()
            .map(|(i, r)| compile_rule(i, r, &mut problems))
            .collect();
        if !problems.is_empty() {
            return Err(problems);
        }
        let rules: Vec<Rule> = compiled.into_iter().flatten().collect();
        let default = default.unwrap_or(Policy::Deny);

        let any_host: Vec<usize> = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r.host, HostPattern::Any))
            .map(|(i, _)| i)
            .collect();
        // Each list is a superset, in order, of the rules that can match a
        // host it is used for; `matches` still checks every candidate.
        let mut by_host: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_suffix: HashMap<String, Vec<usize>> = HashMap::new();
        for rule in &rules {
            match &rule.host {
                HostPattern::Exact(h) => {
                    by_host.entry(h.clone()).or_default();
                }
                HostPattern::Subdomains(suffix) => {
                    by_suffix.entry(suffix.clone()).or_default();
                }
                HostPattern::Any => {}
            }
        }
        for (host, list) in by_host.iter_mut() {
            *list = candidates_where(&rules, |pattern| match pattern {
                HostPattern::Exact(h) => h == host,
                other => other.matches(host),
            });
        }
        for (key, list) in by_suffix.iter_mut() {
            *list = candidates_where(&rules, |pattern| match pattern {
                HostPattern::Exact(_) => false,
                HostPattern::Subdomains(suffix) => key.ends_with(suffix.as_str()),
                HostPattern::Any => true,
            });
        }
        Ok(Rules {
            rules,
            default,
            case_insensitive: access.case_insensitive_paths,
            by_host,
            by_suffix,
            any_host,
        })
    }
}

/// The indexes of `rules` whose host pattern passes `keep`, in order.
fn candidates_where(rules: &[Rule], keep: impl Fn(&HostPattern) -> bool) -> Vec<usize> {
    rules
        .iter()
        .enumerate()
        .filter(|(_, r)| keep(&r.host))
        .map(|(i, _)| i)
        .collect()
}

fn parse_policy(value: &str) -> Option<Policy> {
    match value {
        "public" => Some(Policy::Public),
        "authenticated" => Some(Policy::Authenticated),
        "roles" => Some(Policy::Roles(Vec::new())),
        "deny" => Some(Policy::Deny),
        _ => None,
    }
}

fn compile_default(value: &str, problems: &mut Vec<String>) -> Option<Policy> {
    match parse_policy(value) {
        Some(Policy::Roles(_)) => {
            problems.push(format!(
                "access.default: {value:?} cannot be the default, which has no roles; \
                 expected one of public, authenticated, deny (add a rule with path \"/**\" \
                 and policy \"roles\" instead)"
            ));
            None
        }
        Some(p) => Some(p),
        None => {
            problems.push(format!(
                "access.default: {value:?} is not a policy; expected one of public, authenticated, deny"
            ));
            None
        }
    }
}

fn compile_rule(i: usize, rule: &RuleConfig, problems: &mut Vec<String>) -> Option<Rule> {
    let before = problems.len();
    let at = format!("rules[{i}]");

    let host = match &rule.host {
        None => Some(HostPattern::Any),
        Some(h) => compile_host(h)
            .map_err(|why| problems.push(format!("{at}.host: {h:?} {why}")))
            .ok(),
    };

    let methods = match &rule.methods {
        None => None,
        Some(list) if list.is_empty() => {
            problems.push(format!(
                "{at}.methods: [] names no method; expected at least one, or leave methods out for any method"
            ));
            None
        }
        Some(list) => {
            let mut out = Vec::with_capacity(list.len());
            for (j, m) in list.iter().enumerate() {
                match compile_method(m) {
                    Ok(m) => out.push(m),
                    Err(why) => problems.push(format!("{at}.methods[{j}]: {m:?} {why}")),
                }
            }
            Some(out)
        }
    };

    let path = match &rule.path {
        None => Some(PathPattern {
            text: "/**".into(),
            segments: Vec::new(),
            any_depth: true,
        }),
        Some(p) => compile_path(p)
            .map_err(|why| problems.push(format!("{at}.path: {p:?} {why}")))
            .ok(),
    };

    let policy = match parse_policy(&rule.policy) {
        Some(Policy::Roles(_)) => match &rule.roles {
            None => {
                problems.push(format!(
                    "{at}.roles: policy \"roles\" needs at least one role"
                ));
                None
            }
            Some(roles) if roles.is_empty() => {
                problems.push(format!(
                    "{at}.roles: policy \"roles\" needs at least one role"
                ));
                None
            }
            Some(roles) => {
                for (j, r) in roles.iter().enumerate() {
                    if let Err(why) = check_role_name(r) {
                        problems.push(format!("{at}.roles[{j}]: {r:?} {why}"));
                    }
                }
                Some(Policy::Roles(roles.clone()))
            }
        },
        Some(p) => {
            if let Some(roles) = &rule.roles {
                problems.push(format!(
                    "{at}.roles: {roles:?} given with policy {:?}; roles are only used with policy \"roles\"",
                    rule.policy
                ));
            }
            Some(p)
        }
        None => {
            problems.push(format!(
                "{at}.policy: {:?} is not a policy; expected one of {POLICIES}",
                rule.policy
            ));
            None
        }
    };

    if rule.mfa && matches!(policy, Some(Policy::Public | Policy::Deny)) {
        problems.push(format!(
            "{at}.mfa: true given with policy {:?}; mfa asks a signed-in person for a passkey, \
             so it goes with policy \"authenticated\" or \"roles\"",
            rule.policy
        ));
    }

    if problems.len() > before {
        return None;
    }
    Some(Rule {
        host: host?,
        methods,
        path: path?,
        policy: policy?,
        mfa: rule.mfa,
    })
}

fn compile_host(raw: &str) -> Result<HostPattern, &'static str> {
    if raw == "*" {
        return Err("is not a host; leave host out to match any host");
    }
    let (wildcard, name) = match raw.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    if name.contains('*') {
        return Err("is not a host; expected a host name, or \"*.\" followed by one");
    }
    match split_host_port(name) {
        Some((_, Some(_))) => return Err("has a port; expected a host name without port"),
        None => return Err("is not a host name; expected a name such as app.example.com"),
        Some((_, None)) => {}
    }
    let Some(host) = normalize_host(name) else {
        return Err("is not a host name; expected a name such as app.example.com");
    };
    if wildcard {
        if host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok() {
            return Err(
                "puts \"*.\" before an IP address; expected \"*.\" followed by a domain name",
            );
        }
        Ok(HostPattern::Subdomains(format!(".{host}")))
    } else {
        Ok(HostPattern::Exact(host))
    }
}

fn compile_method(raw: &str) -> Result<Method, String> {
    if KNOWN_METHODS.contains(&raw) {
        return Method::from_bytes(raw.as_bytes()).map_err(|e| e.to_string());
    }
    let upper = raw.to_ascii_uppercase();
    if KNOWN_METHODS.contains(&upper.as_str()) {
        Err(format!(
            "is not an HTTP method; methods are case-sensitive, expected {upper:?}"
        ))
    } else {
        Err(format!(
            "is not an HTTP method; expected one of {}",
            KNOWN_METHODS.join(", ")
        ))
    }
}

fn compile_path(raw: &str) -> Result<PathPattern, String> {
    if !raw.starts_with('/') {
        return Err("must start with \"/\"".into());
    }
    check_globs(raw)?;
    let normal = normalize_path(raw).map_err(|e| format!("is not a valid path: {e}"))?;
    // Dot segments may have moved a glob; check what will actually be used.
    check_globs(&normal)?;
    if normal.contains(';') {
        return Err(
            "contains \";\"; path parameters are removed from requests before matching, \
             so a pattern cannot name them"
                .into(),
        );
    }
    let mut names: Vec<&str> = normal[1..].split('/').filter(|s| !s.is_empty()).collect();
    let any_depth = names.last() == Some(&"**");
    if any_depth {
        names.pop();
    }
    let segments = names
        .into_iter()
        .map(|s| match s {
            "*" => Segment::One,
            lit => Segment::Literal(lit.to_owned()),
        })
        .collect();
    Ok(PathPattern {
        text: normal,
        segments,
        any_depth,
    })
}

/// `*` only as a whole segment, `**` only as the whole last one.
fn check_globs(path: &str) -> Result<(), String> {
    let segs: Vec<&str> = path[1..].split('/').collect();
    for (k, seg) in segs.iter().enumerate() {
        let last = k + 1 == segs.len();
        match *seg {
            "*" => {}
            "**" if last => {}
            "**" => return Err("has \"**\" before the end; expected \"**\" only as the whole last segment (\"/x/**\")".into()),
            s if s.contains('*') => {
                return Err(format!(
                    "has {s:?}; expected \"*\" only as a whole segment (\"/x/*\") and \"**\" only as the whole last one"
                ))
            }
            _ => {}
        }
    }
    Ok(())
}
