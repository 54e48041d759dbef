//! `[login]` and `[limits]`: who may sign in, how long a link lives, where
//! people land, and how often one may ask, guess and mint. The types are
//! signin's (`signin::settings`), which is the only layer that reads them;
//! this file checks and compiles them.

use std::collections::{BTreeMap, HashSet};

use super::problems::Problems;
use super::users::check_roles;
use crate::config::{LimitsConfig, LoginConfig};
use crate::policy::path::normalize_host;
use crate::signin::settings::{Limits, LoginSettings, Signup};

/// `link_hosts` comes from `[[apps]]`, compiled later: the assembly fills it in.
pub(super) fn compile(p: &mut Problems, l: &LoginConfig) -> LoginSettings {
    let signup = match l.signup.as_str() {
        "closed" => Signup::Closed,
        "domains" => Signup::Domains,
        "open" => Signup::Open,
        other => {
            p.add(format!(
                "login.signup: {other:?} is not a signup mode; expected one of closed, domains, open"
            ));
            Signup::Closed
        }
    };
    let mut allowed_domains = Vec::new();
    for (i, d) in l.allowed_domains.iter().enumerate() {
        match normalize_host(d.trim_start_matches('@')) {
            Some(h) if h.contains('.') => allowed_domains.push(h),
            _ => p.add(format!(
                "login.allowed_domains[{i}]: {d:?} is not a domain; expected like \"example.com\""
            )),
        }
    }
    if signup == Signup::Domains && allowed_domains.is_empty() {
        p.add("login.allowed_domains: empty while login.signup = \"domains\"; expected at least one domain".into());
    }
    check_roles(p, "login.default_roles", &l.default_roles);
    let mut landing = BTreeMap::new();
    for (role, path) in &l.landing {
        if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') {
            landing.insert(role.clone(), path.clone());
        } else {
            p.add(format!(
                "login.landing.{role}: {path:?} is not a path on this site; expected like \"/admin\""
            ));
        }
    }
    LoginSettings {
        link_ttl: p.duration("login.link_ttl", &l.link_ttl),
        same_browser: l.same_browser,
        signup,
        allowed_domains,
        default_roles: l.default_roles.clone(),
        landing,
        link_hosts: HashSet::new(),
        email: l.email,
        provider_timeout: p.duration("login.provider_timeout", &l.provider_timeout),
        new_device_email: l.new_device_email,
    }
}

pub(super) fn compile_limits(p: &mut Problems, l: &LimitsConfig) -> Limits {
    let limits = Limits {
        links_per_email: u64::from(l.links_per_email),
        links_per_ip: u64::from(l.links_per_ip),
        link_window: p.duration("limits.link_window", &l.link_window),
        verify_per_ip: u64::from(l.verify_per_ip),
        verify_window: p.duration("limits.verify_window", &l.verify_window),
        code_attempts: l.code_attempts.max(1),
        form_body_bytes: l.form_body_bytes as usize,
        tokens_per_user: u64::from(l.tokens_per_user),
        token_window: p.duration("limits.token_window", &l.token_window),
        ipv6_prefix: u8::try_from(l.ipv6_prefix)
            .ok()
            .filter(|b| (1..=128).contains(b))
            .unwrap_or(64),
    };
    if l.code_attempts == 0 {
        p.add("limits.code_attempts: 0 would void every code; expected 1 or more".into());
    }
    if !(1..=128).contains(&l.ipv6_prefix) {
        p.add(format!(
            "limits.ipv6_prefix: {} is out of range; expected 1 to 128 (the leading bits of an IPv6 address counted as one client, like 64)",
            l.ipv6_prefix
        ));
    }
    limits
}
