//! The rows some pages list, as plain serializable values: the sign-in
//! page's provider buttons, the account page's sessions and passkeys.
//! What they say is decided by `signin`; `pages` only renders them.

/// A provider's button on the sign-in page: a plain link (no JavaScript).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProviderButton {
    /// The label ("Sign in with Corp SSO").
    pub name: String,
    /// `oidc`, `google`, `microsoft`, `github`: the icon.
    pub kind: &'static str,
    /// `/.latchkey/oauth/{id}/start?rd=...`.
    pub href: String,
    /// false until the provider's discovery has succeeded.
    pub available: bool,
}

/// One live session on the account page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionRow {
    /// Its public id (as `latchkey sessions list` shows it).
    pub id: String,
    /// "Firefox on Linux": a summary, never the header's free text.
    pub browser: String,
    pub ip: String,
    /// "2026-12-02 14:05 UTC"
    pub started: String,
    pub last_seen: String,
    /// The session of the request showing the page.
    pub current: bool,
}

/// One passkey on the account page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PasskeyRow {
    /// The credential id (base64url): what the rename and remove forms name.
    pub id: String,
    pub name: String,
    /// "2026-12-02 14:05 UTC"
    pub created: String,
    /// A time, or "never".
    pub last_used: String,
}
