//! The cookies latchkey sets, built in one place so their attributes agree:
//! the session cookie (`HttpOnly; SameSite=Lax; Path=/`, `Secure` on https,
//! `Domain` only with cookie_domain), the CSRF cookie of its forms, and the
//! sign-in attempt cookie that binds a magic link to the browser that asked.
//! Their attributes are compiled once (`Cookies`, by `app::settings`).
//! Reading them back: [`secrets`]; what a session cookie is worth is
//! identity's business.

use std::time::Duration;

use cookie::{Cookie, SameSite};
use http::{header::SET_COOKIE, HeaderMap, HeaderValue, Response};

use crate::http::request::cookies;
use crate::identity::secret::Secret;
use crate::Body;

/// How many cookies of one name are considered. A browser can hold more
/// than one: a host-only one and a `Domain` one (after cookie_domain was
/// set), or one another app under cookie_domain set with a longer Path,
/// which the browser sends first. Bounded, so a request cannot make
/// latchkey look up tokens without end.
pub const SAME_NAME_AT_MOST: usize = 3;

/// The values of cookie `name` that have a token's shape, in the order
/// sent (the first [`SAME_NAME_AT_MOST`]). Callers take the first that
/// holds: a stray value set beside latchkey's own does not hide it.
pub fn secrets<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = Secret> + 'a {
    cookies(headers, name)
        .filter_map(Secret::parse)
        .take(SAME_NAME_AT_MOST)
}

/// The attributes of latchkey's cookies, compiled once from `[session]`,
/// `[login]` and public_url.
/// How long a provider sign-in may take, start to callback.
/// How long a browser keeps its device cookie: 400 days, the most
/// Chromium allows.
pub const DEVICE_MAX_AGE: Duration = Duration::from_secs(400 * 24 * 3600);

pub const OAUTH_MAX_AGE: Duration = Duration::from_secs(600);

pub struct Cookies {
    /// public_url is https: `Secure`, and `__Host-` names when host-only.
    pub secure: bool,
    /// The session cookie's name as used: `__Host-` + configured name when
    /// public_url is https and no cookie_domain is set.
    pub session_name: String,
    /// `session.cookie_domain` (no leading dot): the session cookie's `Domain`.
    pub domain: Option<String>,
    /// How long the session cookie lives: as long as the session can.
    pub session_max_age: Duration,
    /// How long the attempt cookie lives: as long as the link it binds.
    pub attempt_max_age: Duration,
}

impl Cookies {
    /// The CSRF cookie's name (`__Host-` prefixed on https).
    pub fn csrf_name(&self) -> &'static str {
        if self.secure {
            "__Host-latchkey_csrf"
        } else {
            "latchkey_csrf"
        }
    }

    /// The sign-in attempt cookie's name (`__Host-` prefixed on https).
    pub fn attempt_name(&self) -> &'static str {
        if self.secure {
            "__Host-latchkey_attempt"
        } else {
            "latchkey_attempt"
        }
    }

    /// The cookie that binds a provider sign-in in flight to the browser
    /// that started it (on public_url's host, for the callback).
    pub fn oauth_name(&self) -> &'static str {
        if self.secure {
            "__Host-latchkey_oauth"
        } else {
            "latchkey_oauth"
        }
    }

    /// The cookie an app host sets when a provider sign-in starts there, so
    /// that only that browser can carry the session back to it.
    pub fn oauth_bind_name(&self) -> &'static str {
        if self.secure {
            "__Host-latchkey_oauth_bind"
        } else {
            "latchkey_oauth_bind"
        }
    }

    /// The cookie that binds a passkey ceremony's challenge to the browser
    /// it was handed to (host-only, as long as the challenge lives).
    pub fn passkey_name(&self) -> &'static str {
        if self.secure {
            "__Host-latchkey_passkey"
        } else {
            "latchkey_passkey"
        }
    }

    /// The device cookie: a random value a browser keeps for
    /// [`DEVICE_MAX_AGE`], so a sign-in can tell a browser the person used
    /// before from a new one (no fingerprinting). Sent where the session
    /// cookie is.
    pub fn device_name(&self) -> &'static str {
        "latchkey_device"
    }

    /// Every cookie name latchkey sets: stripped before a request goes upstream.
    pub fn own_names(&self) -> [&str; 7] {
        [
            &self.session_name,
            self.csrf_name(),
            self.attempt_name(),
            self.oauth_name(),
            self.oauth_bind_name(),
            self.device_name(),
            self.passkey_name(),
        ]
    }

    /// A passkey ceremony's cookie: host-only, `max_age` the challenge's life.
    pub fn passkey(&self, token: &str, max_age: Duration) -> String {
        self.build(self.passkey_name(), token, Some(max_age), false)
    }

    pub fn clear_passkey(&self) -> String {
        self.build(self.passkey_name(), "", Some(Duration::ZERO), false)
    }

    pub fn device(&self, token: &str) -> String {
        self.build(self.device_name(), token, Some(DEVICE_MAX_AGE), true)
    }

    /// A provider sign-in's cookie (`name` one of the two above): host-only,
    /// as long as the sign-in may take.
    pub fn oauth(&self, name: &str, token: &str) -> String {
        self.build(name, token, Some(OAUTH_MAX_AGE), false)
    }

    pub fn clear_oauth(&self, name: &str) -> String {
        self.build(name, "", Some(Duration::ZERO), false)
    }

    fn build(&self, name: &str, value: &str, max_age: Option<Duration>, domain: bool) -> String {
        let mut c = Cookie::build((name.to_owned(), value.to_owned()))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax);
        if let Some(age) = max_age {
            c = c.max_age(cookie::time::Duration::seconds(age.as_secs() as i64));
        }
        if domain {
            if let Some(d) = &self.domain {
                c = c.domain(d.clone());
            }
        }
        c.build().to_string()
    }

    /// The session cookie: lives as long as the session can.
    pub fn session(&self, token: &str) -> String {
        self.build(&self.session_name, token, Some(self.session_max_age), true)
    }

    pub fn clear_session(&self) -> String {
        self.build(&self.session_name, "", Some(Duration::ZERO), true)
    }

    /// The CSRF cookie: a browser-session cookie on latchkey's own host.
    pub fn csrf(&self, token: &str) -> String {
        self.build(self.csrf_name(), token, None, false)
    }

    /// The attempt cookie: as long as the link it binds. Host-only: the link
    /// points back at the host where sign-in started.
    pub fn attempt(&self, token: &str) -> String {
        self.build(
            self.attempt_name(),
            token,
            Some(self.attempt_max_age),
            false,
        )
    }

    pub fn clear_attempt(&self) -> String {
        self.build(self.attempt_name(), "", Some(Duration::ZERO), false)
    }
}

/// Appends a Set-Cookie header.
pub fn add(resp: &mut Response<Body>, set_cookie: String) {
    if let Ok(v) = HeaderValue::try_from(set_cookie) {
        resp.headers_mut().append(SET_COOKIE, v);
    }
}
