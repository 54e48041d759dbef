//! `[session]`: how long a session lives (`identity::SessionSettings`) and
//! the cookies that carry it (`http::cookies::Cookies`, whose attributes
//! also depend on public_url's scheme and the link lifetime). Looking
//! sessions up is identity's; setting cookies is http's.

use std::time::Duration;

use super::problems::Problems;
use crate::config::SessionConfig;
use crate::http::cookies::Cookies;
use crate::identity::session::SessionSettings;
use crate::policy::path::normalize_host;

/// `[session]` compiled: the session's lifetimes, and its cookie's name
/// and domain, which [`SessionSection::cookies`] joins with the rest of
/// the cookie attributes once `[login]` is compiled.
pub(super) struct SessionSection {
    pub session: SessionSettings,
    /// The name actually used: `__Host-` + configured name when public_url
    /// is https and no cookie_domain is set.
    pub cookie_name: String,
    pub cookie_domain: Option<String>,
}

impl SessionSection {
    /// `secure`: public_url is https. `link_ttl`: how long the attempt
    /// cookie lives (as long as the link it binds).
    pub fn cookies(&self, secure: bool, link_ttl: Duration) -> Cookies {
        Cookies {
            secure,
            session_name: self.cookie_name.clone(),
            domain: self.cookie_domain.clone(),
            session_max_age: self.session.max_lifetime,
            attempt_max_age: link_ttl,
        }
    }
}

/// `secure`: public_url is https (the session cookie gets `__Host-`).
pub(super) fn compile(p: &mut Problems, s: &SessionConfig, secure: bool) -> SessionSection {
    if s.cookie_name.is_empty()
        || !s
            .cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        p.add(format!(
            "session.cookie_name: {:?} is not a cookie name; expected letters, digits, '_' or '-'",
            s.cookie_name
        ));
    }
    let cookie_domain = s.cookie_domain.as_deref().and_then(|d| {
        let d = d.trim_start_matches('.');
        match normalize_host(d) {
            Some(h) if h.contains('.') && !h.starts_with('[') => Some(h),
            _ => {
                p.add(format!(
                    "session.cookie_domain: {d:?} is not a domain; expected like \"example.com\""
                ));
                None
            }
        }
    });
    let idle_timeout = p.duration("session.idle_timeout", &s.idle_timeout);
    let max_lifetime = p.duration("session.max_lifetime", &s.max_lifetime);
    if idle_timeout > max_lifetime {
        p.add(format!(
            "session.idle_timeout: {:?} is longer than session.max_lifetime {:?}; expected idle_timeout <= max_lifetime",
            s.idle_timeout, s.max_lifetime
        ));
    }
    let cookie_name = if secure && cookie_domain.is_none() {
        format!("__Host-{}", s.cookie_name)
    } else {
        s.cookie_name.clone()
    };
    // `local_cache` (at most a second of staleness) is replaced by the
    // coherent cache (on by default): still accepted, App warns.
    if let Some(v) = s.local_cache.as_deref() {
        p.duration("session.local_cache", v);
    }
    if s.cache_entries == 0 {
        p.add("session.cache_entries: 0; expected at least 1 (or session.cache = false)".into());
    }
    let cache = s.cache.then_some(s.cache_entries);
    SessionSection {
        session: SessionSettings {
            idle_timeout,
            max_lifetime,
            cache,
            local_cache_alias: s.local_cache.is_some(),
        },
        cookie_name,
        cookie_domain,
    }
}
