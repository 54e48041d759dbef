//! `[[login.providers]]` compiled: every key checked once, presets expanded
//! into the issuer or endpoints they stand for, the client secret read from
//! its file. After this nothing looks at `ProviderConfig` again.
//!
//! It lives in `identity/` (not `signin/`) because the OIDC client beside it
//! runs on these settings, and `identity` may not reach up into `signin`;
//! `signin` (the buttons, the two URLs) and `app` (the one compile step) sit
//! above and use it. `compile_providers` collects every problem, each naming
//! its key (`login.providers[1].issuer: ...`), in the shape `Settings::compile`
//! gathers (`Result<_, Vec<String>>`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

use crate::config::ProviderConfig;

/// Google's issuer (discovery gives the endpoints).
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// GitHub's OAuth 2 endpoints and API (GitHub has no OpenID discovery for
/// people signing in).
pub const GITHUB_AUTHORIZE: &str = "https://github.com/login/oauth/authorize";
pub const GITHUB_TOKEN: &str = "https://github.com/login/oauth/access_token";
pub const GITHUB_USER: &str = "https://api.github.com/user";
pub const GITHUB_EMAILS: &str = "https://api.github.com/user/emails";
pub const GITHUB_ORGS: &str = "https://api.github.com/user/orgs";

/// Microsoft's issuer for one tenant.
pub fn microsoft_issuer(tenant: &str) -> String {
    format!("https://login.microsoftonline.com/{tenant}/v2.0")
}

/// One provider, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderSettings {
    pub id: String,
    /// The button's label.
    pub name: String,
    pub kind: ProviderKind,
    pub protocol: Protocol,
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub scopes: Vec<String>,
    pub roles_claim: Option<String>,
    /// Claim value -> latchkey roles.
    pub role_map: BTreeMap<String, BTreeSet<String>>,
    /// Claims any one of which, when `true`, vouches for the email. The
    /// standard `email_verified`; Microsoft, which never sends that, vouches
    /// with `xms_edov` (an optional claim the app registration must add).
    pub verified_email_claims: Vec<&'static str>,
    /// RP-initiated logout at the provider when it advertises it.
    pub logout: bool,
}

/// What the config said, kept for the page (icons) and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    Oidc,
    Google,
    Microsoft { tenant: String },
    GitHub,
}

impl ProviderKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ProviderKind::Oidc => "oidc",
            ProviderKind::Google => "google",
            ProviderKind::Microsoft { .. } => "microsoft",
            ProviderKind::GitHub => "github",
        }
    }
}

/// How latchkey talks to the provider.
#[derive(Debug, Clone, PartialEq)]
pub enum Protocol {
    /// OpenID Connect: endpoints from discovery at `issuer`, which is kept
    /// exactly as written (it must equal the `iss` the provider sends).
    OpenIdConnect { issuer: String },
    /// GitHub's OAuth 2 (no ID token): the verified primary address from
    /// the emails API.
    GitHub(Box<GitHubEndpoints>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct GitHubEndpoints {
    pub authorize: Url,
    pub token: Url,
    pub user: Url,
    pub emails: Url,
    pub orgs: Url,
    /// Empty: any GitHub account (subject to the signup policy).
    pub allowed_orgs: Vec<String>,
}

/// A client secret: no `Display`, `Debug` prints `ClientSecret(..)`.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(value: impl Into<String>) -> ClientSecret {
        ClientSecret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(..)")
    }
}

const KINDS: &str = "oidc, google, microsoft, github";
/// Microsoft's multi-tenant endpoints name no one issuer, so tokens from
/// them cannot be checked against one.
const MULTI_TENANT: [&str; 3] = ["common", "organizations", "consumers"];

/// Checks and compiles every `[[login.providers]]`, or returns every
/// problem found, each naming its key.
pub fn compile_providers(list: &[ProviderConfig]) -> Result<Vec<ProviderSettings>, Vec<String>> {
    let mut problems = Vec::new();
    let mut out = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, p) in list.iter().enumerate() {
        let at = format!("login.providers[{i}]");
        if let Some(first) = seen.get(p.id.as_str()) {
            problems.push(format!(
                "{at}.id: {:?} is already the id of login.providers[{first}]; ids must differ",
                p.id
            ));
        } else {
            seen.insert(&p.id, i);
        }
        if let Some(s) = compile_one(&at, p, &mut problems) {
            out.push(s);
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn compile_one(
    at: &str,
    p: &ProviderConfig,
    problems: &mut Vec<String>,
) -> Option<ProviderSettings> {
    let before = problems.len();
    let mut bad = |line: String| problems.push(line);

    let id_ok = !p.id.is_empty()
        && p.id.len() <= 32
        && p.id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !id_ok {
        bad(format!(
            "{at}.id: {:?} is not a provider id; expected 1 to 32 of a-z, 0-9 and -, like \"corp\"",
            p.id
        ));
    }
    if p.client_id.trim().is_empty() {
        bad(format!(
            "{at}.client_id: missing; expected the client id the provider issued"
        ));
    }
    let secret = match (&p.client_secret, &p.client_secret_file) {
        (Some(s), None) if !s.is_empty() => Some(ClientSecret::new(s.clone())),
        (Some(_), None) => {
            bad(format!("{at}.client_secret: empty"));
            None
        }
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) if !text.trim().is_empty() => Some(ClientSecret::new(text.trim().to_owned())),
            Ok(_) => {
                bad(format!("{at}.client_secret_file: {path:?} is empty"));
                None
            }
            Err(e) => {
                bad(format!(
                    "{at}.client_secret_file: {path:?} cannot be read: {e}"
                ));
                None
            }
        },
        (Some(_), Some(_)) => {
            bad(format!(
                "{at}: both client_secret and client_secret_file are set; expected exactly one"
            ));
            None
        }
        (None, None) => {
            bad(format!(
                "{at}: neither client_secret nor client_secret_file is set; expected exactly one"
            ));
            None
        }
    };

    let kind = match p.kind.as_str() {
        "oidc" => Some(ProviderKind::Oidc),
        "google" => Some(ProviderKind::Google),
        "github" => Some(ProviderKind::GitHub),
        "microsoft" => match p.tenant.as_deref().map(str::trim) {
            Some(t) if MULTI_TENANT.contains(&t) => {
                bad(format!(
                    "{at}.tenant: {t:?} is a multi-tenant endpoint whose tokens name no one issuer; expected your directory (tenant) id or domain"
                ));
                None
            }
            Some(t)
                if !t.is_empty()
                    && t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') =>
            {
                Some(ProviderKind::Microsoft {
                    tenant: t.to_owned(),
                })
            }
            Some(t) => {
                bad(format!("{at}.tenant: {t:?} is not a tenant id or domain"));
                None
            }
            None => {
                bad(format!(
                    "{at}.tenant: missing; the microsoft kind needs your directory (tenant) id or domain"
                ));
                None
            }
        },
        other => {
            bad(format!(
                "{at}.kind: {other:?} is not a provider kind; expected one of {KINDS}"
            ));
            None
        }
    };
    if p.tenant.is_some() && !matches!(p.kind.as_str(), "microsoft") {
        bad(format!("{at}.tenant: only the microsoft kind has a tenant"));
    }
    if p.allowed_orgs.is_some() && p.kind != "github" {
        bad(format!(
            "{at}.allowed_orgs: only the github kind has allowed_orgs"
        ));
    }
    if p.enterprise_url.is_some() && p.kind != "github" {
        bad(format!(
            "{at}.enterprise_url: only the github kind has enterprise_url"
        ));
    }
    if p.kind == "github" {
        if let Some(orgs) = &p.allowed_orgs {
            if let Some(o) = orgs.iter().find(|o| !is_github_login(o)) {
                bad(format!(
                    "{at}.allowed_orgs: {o:?} is not a GitHub organization name"
                ));
            }
        }
        if let Some(c) = p.roles_claim.as_deref().filter(|c| *c != "orgs") {
            bad(format!(
                "{at}.roles_claim: {c:?}; the github kind has one: \"orgs\" (the person's organizations)"
            ));
        }
    }
    if p.issuer.is_some() && p.kind != "oidc" && kind.is_some() {
        bad(format!(
            "{at}.issuer: the {} kind sets its own issuer; remove the key",
            p.kind
        ));
    }

    let protocol = match &kind {
        Some(ProviderKind::Oidc) => match p.issuer.as_deref() {
            None => {
                bad(format!(
                    "{at}.issuer: missing; the oidc kind needs the provider's issuer, like \"https://idp.example.com\""
                ));
                None
            }
            Some(issuer) => match check_issuer(issuer) {
                Ok(()) => Some(Protocol::OpenIdConnect {
                    issuer: issuer.to_owned(),
                }),
                Err(why) => {
                    bad(format!("{at}.issuer: {issuer:?} {why}"));
                    None
                }
            },
        },
        Some(ProviderKind::Google) => Some(Protocol::OpenIdConnect {
            issuer: GOOGLE_ISSUER.to_owned(),
        }),
        Some(ProviderKind::Microsoft { tenant }) => Some(Protocol::OpenIdConnect {
            issuer: microsoft_issuer(tenant),
        }),
        Some(ProviderKind::GitHub) => {
            let base = match p.enterprise_url.as_deref() {
                None => None,
                Some(u) => {
                    match check_issuer(u).and_then(|()| Url::parse(u).map_err(|_| "is not a URL")) {
                        Ok(url) => Some(url),
                        Err(why) => {
                            bad(format!("{at}.enterprise_url: {u:?} {why}"));
                            None
                        }
                    }
                }
            };
            match (p.enterprise_url.is_some(), base) {
                (true, None) => None,
                (_, base) => github_endpoints(base, p.allowed_orgs.clone().unwrap_or_default()),
            }
        }
        None => None,
    };

    let is_oidc = matches!(
        kind,
        Some(ProviderKind::Oidc | ProviderKind::Google | ProviderKind::Microsoft { .. })
    );
    let scopes = match &p.scopes {
        Some(s) => s.clone(),
        None if p.kind == "github" => {
            let mut s = vec!["read:user".to_owned(), "user:email".to_owned()];
            if p.allowed_orgs.as_ref().is_some_and(|o| !o.is_empty())
                || p.roles_claim.as_deref() == Some("orgs")
            {
                s.push("read:org".to_owned());
            }
            s
        }
        None => vec!["openid".into(), "email".into(), "profile".into()],
    };
    if is_oidc && !scopes.iter().any(|s| s == "openid") {
        bad(format!(
            "{at}.scopes: {scopes:?} lacks \"openid\"; OpenID Connect needs it"
        ));
    }
    if let Some(s) = scopes
        .iter()
        .find(|s| s.is_empty() || s.contains(char::is_whitespace))
    {
        bad(format!(
            "{at}.scopes: {s:?} is not a scope (empty or with spaces)"
        ));
    }
    if !p.role_map.is_empty() && p.roles_claim.is_none() {
        bad(format!("{at}.role_map: set, but roles_claim is not; expected the claim whose values it maps, like \"groups\""));
    }
    if let Some(claim) = p.roles_claim.as_deref().filter(|c| c.trim().is_empty()) {
        bad(format!("{at}.roles_claim: {claim:?} is empty"));
    }
    let mut role_map = BTreeMap::new();
    for (value, roles) in &p.role_map {
        if let Some(r) = roles
            .iter()
            .find(|r| r.trim().is_empty() || r.contains(','))
        {
            bad(format!("{at}.role_map.{value}: {r:?} is not a role name"));
        }
        role_map.insert(value.clone(), roles.iter().cloned().collect());
    }
    if p.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        bad(format!("{at}.name: empty; expected the button's label"));
    }
    let name = match (&p.name, &kind) {
        (Some(n), _) => n.clone(),
        (None, Some(ProviderKind::Google)) => "Google".into(),
        (None, Some(ProviderKind::Microsoft { .. })) => "Microsoft".into(),
        (None, Some(ProviderKind::GitHub)) => "GitHub".into(),
        (None, _) => p.id.clone(),
    };
    if p.logout && p.kind == "github" {
        bad(format!(
            "{at}.logout: GitHub has no logout endpoint for other sites"
        ));
    }

    if problems.len() > before {
        return None;
    }
    let verified_email_claims = match kind {
        Some(ProviderKind::Microsoft { .. }) => vec!["email_verified", "xms_edov"],
        _ => vec!["email_verified"],
    };
    Some(ProviderSettings {
        id: p.id.clone(),
        name,
        kind: kind?,
        protocol: protocol?,
        client_id: p.client_id.trim().to_owned(),
        client_secret: secret?,
        scopes,
        roles_claim: p.roles_claim.clone(),
        role_map,
        verified_email_claims,
        logout: p.logout,
    })
}

/// `https://...`, or `http://` on a loopback address; no query or fragment.
fn check_issuer(issuer: &str) -> Result<(), &'static str> {
    let url = Url::parse(issuer)
        .map_err(|_| "is not a URL; expected like \"https://idp.example.com\"")?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("has a query, fragment or user name; an issuer has none");
    }
    match (url.scheme(), url.host()) {
        ("https", Some(_)) => Ok(()),
        ("http", Some(host)) if is_loopback(&host) => Ok(()),
        ("http", Some(_)) => {
            Err("is plain http:// on a host that is not loopback; expected https://")
        }
        _ => Err("is not an http(s) URL; expected like \"https://idp.example.com\""),
    }
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
        Host::Domain(d) => *d == "localhost",
    }
}

/// GitHub's login names: letters, digits and single hyphens.
fn is_github_login(s: &str) -> bool {
    !s.is_empty() && s.len() <= 39 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// github.com's endpoints, or a GitHub Enterprise Server's at `base`
/// (`{base}/login/oauth/...`, the API under `{base}/api/v3`).
fn github_endpoints(base: Option<Url>, allowed_orgs: Vec<String>) -> Option<Protocol> {
    let (authorize, token, user, emails, orgs) = match base {
        None => (
            Url::parse(GITHUB_AUTHORIZE).ok()?,
            Url::parse(GITHUB_TOKEN).ok()?,
            Url::parse(GITHUB_USER).ok()?,
            Url::parse(GITHUB_EMAILS).ok()?,
            Url::parse(GITHUB_ORGS).ok()?,
        ),
        Some(base) => {
            let root = base.as_str().trim_end_matches('/');
            let at = |path: &str| Url::parse(&format!("{root}{path}")).ok();
            (
                at("/login/oauth/authorize")?,
                at("/login/oauth/access_token")?,
                at("/api/v3/user")?,
                at("/api/v3/user/emails")?,
                at("/api/v3/user/orgs")?,
            )
        }
    };
    Some(Protocol::GitHub(Box::new(GitHubEndpoints {
        authorize,
        token,
        user,
        emails,
        orgs,
        allowed_orgs,
    })))
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
