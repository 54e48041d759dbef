//! The parts of the configuration only sign-in reads: who may sign in and
//! how (`[login]`), and how often (`[limits]`). Compiled by
//! `app::settings`; read by the handlers beside this file.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// Digits in the one-time code sent beside the link.
pub const CODE_DIGITS: u32 = 6;

/// Who may sign in without being listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signup {
    /// Only users in `[[users]]` or added with `latchkey users`.
    Closed,
    /// Also any address in `login.allowed_domains`.
    Domains,
    /// Anyone with a mailbox.
    Open,
}

pub struct LoginSettings {
    pub link_ttl: Duration,
    pub same_browser: bool,
    pub signup: Signup,
    pub allowed_domains: Vec<String>,
    pub default_roles: Vec<String>,
    /// Role → path to land on after sign-in when no return address was given.
    pub landing: BTreeMap<String, String>,
    /// `[[apps]]` hosts other than public_url's: a link asked for on one of
    /// them points back at it (normalized host names).
    pub link_hosts: HashSet<String>,
    /// `login.email`: the sign-in page offers the email link.
    pub email: bool,
    /// `login.provider_timeout`: one exchange with a provider, at most.
    pub provider_timeout: Duration,
    /// `login.new_device_email`: mail the person after a sign-in from a
    /// browser they had not used.
    pub new_device_email: bool,
}

pub struct Limits {
    pub links_per_email: u64,
    pub links_per_ip: u64,
    pub link_window: Duration,
    pub verify_per_ip: u64,
    pub verify_window: Duration,
    pub code_attempts: u32,
    pub form_body_bytes: usize,
    /// Bearer tokens one user may get from `POST /.latchkey/token` per window.
    pub tokens_per_user: u64,
    pub token_window: Duration,
    /// Per-IP limits count an IPv6 client by its first this many bits (1 to
    /// 128): one /64 is one site, as one IPv4 address is.
    pub ipv6_prefix: u8,
}
