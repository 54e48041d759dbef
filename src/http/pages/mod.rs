//! Every HTML page latchkey shows, and the sign-in email.
//!
//! Templates are minijinja files embedded in the binary (`templates/`). When
//! `branding.template_dir` is set, a file there with the same name replaces
//! the built-in one, file by file; other `.html`, `.txt` and `.css` files there
//! can be `{% include %}`d. All templates are loaded, compiled and test-rendered
//! once in [`Pages::new`], so a broken or missing template is a start-up error
//! naming the file, never a failed request.
//!
//! `.html` templates are auto-escaped. The pages' CSS lives in `style.css`; it
//! is rendered once with the branding colours and allowed by a hash in the
//! Content-Security-Policy, so a custom `base.html` must keep
//! `<style>{{ css }}</style>` and use no other inline styles.
//!
//! Here: the pages (`Page`), loading them (`Pages::new`), rendering and
//! answering with them; which files there are and how they are read and
//! escaped is `templates`'s, the rows some pages list `rows`'s, the
//! colours derived from the accent `colours`'s, the new-device email
//! `notice`'s, the one-line summary of a User-Agent `user_agent`'s. The security headers are `response`'s.
//!
//! This module only turns values into text and responses. What a page says is
//! decided by `login` and `gate`; sending the email is `mail`'s job.

mod colours;
mod notice;
mod rows;
mod templates;
mod user_agent;

use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine as _;
use http::header::HeaderValue;
use http::{Response, StatusCode};
use minijinja::{context, Environment, Value};
use sha2::{Digest, Sha256};

use crate::config::BrandingConfig;
use crate::http::response::{self, Referrer};
use colours::{Colours, Rgb};
pub use notice::NewDeviceEmail;
pub use rows::{PasskeyRow, ProviderButton, SessionRow};
use templates::{escape_formatter, escape_html, load_dir, BUILTIN};
pub use user_agent::describe_user_agent;

/// Shown if a page cannot be rendered at all (templates are test-rendered at
/// start-up, so this should never be seen).
const FALLBACK_PAGE: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
<title>Error</title><p>Something went wrong while showing this page. Please try again.</p></html>";

/// A page latchkey shows. Borrowed values are escaped when rendered.
#[derive(Debug, Clone, Copy)]
pub enum Page<'a> {
    /// The email field; POST `/.latchkey/login` (fields `email`, `rd`, `csrf`).
    Login {
        csrf: &'a str,
        rd: &'a str,
        error: Option<&'a str>,
        /// One button per `[[login.providers]]`, above the email form.
        providers: &'a [ProviderButton],
        /// `login.email`: show the email form.
        email: bool,
    },
    /// "Check your email", the same whatever the address, with a form for the
    /// code; POST `/.latchkey/code` (fields `code`, `csrf`).
    CheckEmail {
        csrf: &'a str,
        code_digits: u32,
        expires_in: &'a str,
        /// Shown above the code field (a wrong code).
        error: Option<&'a str>,
        /// The mail transport is known to be down: say the email may not
        /// arrive. The same for every address, known or not.
        mail_down: bool,
        /// "Try again": the sign-in page, keeping the return address.
        retry_url: &'a str,
    },
    /// GET verify: a button; POST `/.latchkey/verify` (fields `token`, `csrf`).
    Confirm {
        csrf: &'a str,
        token: &'a str,
    },
    /// The link was opened in a browser other than the one that asked.
    /// `requested_agent` is the raw User-Agent; only a summary is shown.
    WrongBrowser {
        requested_ip: &'a str,
        requested_agent: &'a str,
        /// "Sign in on this browser": the sign-in page, keeping the link's
        /// return address.
        retry_url: &'a str,
    },
    /// The link expired or was already used.
    LinkInvalid,
    /// POST `/.latchkey/logout` (field `csrf`).
    LogoutConfirm {
        csrf: &'a str,
    },
    SignedOut {
        login_url: &'a str,
    },
    /// `/.latchkey/account`: who is signed in and their live sessions,
    /// each with a form ending it (POST `/.latchkey/account/sessions`,
    /// fields `session` or `all` = `others`, and `csrf`).
    Account {
        csrf: &'a str,
        email: &'a str,
        roles: &'a [String],
        /// How this session was made, in words ("an email link").
        how: &'a str,
        sessions: &'a [SessionRow],
        /// Their passkeys, each with a rename and a remove form (POST
        /// `/.latchkey/account/passkeys`, fields `id` and `name` or
        /// `remove` = `1`, and `csrf`).
        passkeys: &'a [PasskeyRow],
        /// A line to show above the list ("Session ended.").
        notice: Option<&'a str>,
    },
    /// A rule asks for a passkey this session has not proved; `rd` is
    /// the (validated) address to return to once it has.
    StepUp {
        csrf: &'a str,
        email: &'a str,
        rd: &'a str,
        /// How many passkeys the person has (0: say how to add one).
        passkeys: usize,
    },
    /// Signed in, but the rules do not allow this request.
    Forbidden {
        email: &'a str,
    },
    Error {
        status: u16,
        title: &'a str,
        message: &'a str,
    },
}

impl Page<'static> {
    /// A generic error page for `status` (title and message in plain words).
    pub fn for_status(status: StatusCode) -> Page<'static> {
        let (title, message) = match status.as_u16() {
            400 => (
                "Bad request",
                "This request could not be understood. Go back and try again.",
            ),
            403 => ("Forbidden", "You may not open this page."),
            404 => ("Not found", "There is nothing at this address."),
            405 => ("Method not allowed", "This address does not accept that kind of request."),
            413 => ("Request too large", "The request was larger than allowed."),
            429 => (
                "Too many attempts",
                "Please wait a few minutes before trying again.",
            ),
            502 => (
                "Bad gateway",
                "The application behind this sign-in did not answer properly. Try again in a moment.",
            ),
            503 => (
                "Temporarily unavailable",
                "Sign-in is unavailable right now. Try again in a moment; you have not been signed out.",
            ),
            504 => (
                "Gateway timeout",
                "The application behind this sign-in took too long to answer. Try again in a moment.",
            ),
            _ => (
                "Something went wrong",
                "Please try again in a moment.",
            ),
        };
        Page::Error {
            status: status.as_u16(),
            title,
            message,
        }
    }
}

impl Page<'_> {
    fn template(&self) -> &'static str {
        match self {
            Page::Login { .. } => "login.html",
            Page::CheckEmail { .. } => "check_email.html",
            Page::Confirm { .. } => "confirm.html",
            Page::WrongBrowser { .. } => "wrong_browser.html",
            Page::LinkInvalid => "link_invalid.html",
            Page::LogoutConfirm { .. } => "logout_confirm.html",
            Page::SignedOut { .. } => "signed_out.html",
            Page::Account { .. } => "account.html",
            Page::StepUp { .. } => "step_up.html",
            Page::Forbidden { .. } => "forbidden.html",
            Page::Error { .. } => "error.html",
        }
    }

    fn context(&self) -> Value {
        match *self {
            Page::Login {
                csrf,
                rd,
                error,
                providers,
                email,
            } => context! { csrf, rd, error, providers, email },
            Page::CheckEmail {
                csrf,
                code_digits,
                expires_in,
                error,
                mail_down,
                retry_url,
            } => context! { csrf, code_digits, expires_in, error, mail_down, retry_url },
            Page::Confirm { csrf, token } => context! { csrf, token },
            Page::WrongBrowser {
                requested_ip,
                requested_agent,
                retry_url,
            } => context! {
                requested_ip,
                requested_agent,
                retry_url,
                requested_browser => describe_user_agent(requested_agent),
            },
            Page::LinkInvalid => context! {},
            Page::LogoutConfirm { csrf } => context! { csrf },
            Page::SignedOut { login_url } => context! { login_url },
            Page::Account {
                csrf,
                email,
                roles,
                how,
                sessions,
                passkeys,
                notice,
            } => context! { csrf, email, roles, how, sessions, passkeys, notice },
            Page::StepUp {
                csrf,
                email,
                rd,
                passkeys,
            } => context! { csrf, email, rd, passkeys },
            Page::Forbidden { email } => context! { email },
            Page::Error {
                status,
                title,
                message,
            } => context! { status, title, message },
        }
    }
}

/// What the sign-in email says. `user_agent` is the raw header of the
/// request that asked; the email shows only a summary of it, so a requester
/// cannot put words of their choosing into someone else's inbox.
#[derive(Debug, Clone, Copy)]
pub struct LinkEmail<'a> {
    pub link: &'a str,
    pub code: &'a str,
    /// "10 minutes"
    pub expires_in: &'a str,
    /// "14:05 UTC"
    pub expires_at: &'a str,
    pub ip: &'a str,
    pub user_agent: &'a str,
    /// The host being signed in to, e.g. "app.example.com".
    pub site: &'a str,
}

/// The loaded templates and branding, ready to render.
pub struct Pages {
    env: Environment<'static>,
    brand: Value,
    /// The rendered `style.css`, as a safe string for `<style>{{ css }}</style>`.
    css: Value,
    /// The accent colours for the email (which cannot use CSS variables).
    colours: Colours,
    csp: HeaderValue,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages").finish_non_exhaustive()
    }
}

impl Pages {
    /// Loads, compiles and test-renders the templates. Problems come back as
    /// lines naming the key and, for templates, the file, e.g.
    /// `branding.template_dir: "/x": no such directory` or
    /// `branding.accent_color: "red;" is not a #rrggbb colour`.
    pub fn new(branding: &BrandingConfig) -> Result<Pages, Vec<String>> {
        let mut problems = Vec::new();

        let accent = match Rgb::parse(&branding.accent_color) {
            Some(c) => Some(c),
            None => {
                problems.push(format!(
                    "branding.accent_color: {:?} is not a #rrggbb colour (or #rgb)",
                    branding.accent_color
                ));
                None
            }
        };
        if let Some(logo) = &branding.logo_url {
            if !(logo.starts_with("https://") || logo.starts_with("data:image/")) {
                problems.push(format!(
                    "branding.logo_url: {logo:?} must be an https:// or data:image/ URL \
                     (the pages' Content-Security-Policy allows only those)"
                ));
            } else if logo.chars().any(|c| c.is_whitespace() || c.is_control()) {
                problems.push(format!(
                    "branding.logo_url: {logo:?} must not contain spaces or control characters"
                ));
            }
        }

        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
        env.set_formatter(escape_formatter);

        // Files from template_dir first: the built-in one is added only when
        // no file of that name was there.
        let mut overridden = BTreeSet::new();
        let dir = branding.template_dir.as_deref();
        if let Some(dir) = dir {
            load_dir(&mut env, dir, &mut overridden, &mut problems);
        }
        for (name, source) in BUILTIN {
            if !overridden.contains(*name) {
                if let Err(e) = env.add_template(name, source) {
                    problems.push(format!("built-in template {name}: {e}"));
                }
            }
        }

        let Some(accent) = accent else {
            return Err(problems);
        };
        if !problems.is_empty() {
            return Err(problems);
        }

        let colours = Colours::from_accent(accent);
        let file_of = |name: Option<&str>| -> String {
            match (name, dir) {
                (Some(n), Some(d)) if overridden.contains(n) => {
                    format!("branding.template_dir: {:?}", Path::new(d).join(n))
                }
                (Some(n), _) => format!("template {n}"),
                (None, _) => "templates".to_owned(),
            }
        };

        let css = match env
            .get_template("style.css")
            .and_then(|t| t.render(colours.context()))
        {
            Ok(css) => css.replace("\r\n", "\n").replace('\r', "\n"),
            Err(e) => return Err(vec![format!("{}: {e}", file_of(e.name()))]),
        };
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(css.as_bytes()));
        let csp = format!(
            "default-src 'none'; style-src 'sha256-{hash}'; img-src https: data:; \
             script-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
        );
        let csp = match HeaderValue::from_str(&csp) {
            Ok(v) => v,
            Err(e) => return Err(vec![format!("Content-Security-Policy: {e}")]),
        };

        let pages = Pages {
            env,
            brand: context! {
                title => branding.title.clone(),
                // The default title "Sign in" is not a name worth showing
                // above a heading that says the same.
                name => brand_name(&branding.title),
                logo_url => branding.logo_url.clone(),
            },
            css: Value::from_safe_string(css),
            colours,
            csp,
        };

        // Render everything once with awkward values, so a template that
        // fails at run time (unknown filter, missing include) fails now.
        let mut seen = BTreeSet::new();
        for page in sample_pages() {
            if let Err(e) = pages.try_render(&page) {
                let line = format!("{}: {e}", file_of(e.name()));
                if seen.insert(line.clone()) {
                    problems.push(line);
                }
            }
        }
        if let Err(e) =
            pages.try_new_device(&notice::SAMPLE_NOTICE, "New sign-in to auth.example.com")
        {
            let line = format!("{}: {e}", file_of(e.name()));
            if seen.insert(line.clone()) {
                problems.push(line);
            }
        }
        if let Err(e) = pages.try_email(&SAMPLE_EMAIL) {
            let line = format!("{}: {e}", file_of(e.name()));
            if seen.insert(line.clone()) {
                problems.push(line);
            }
        }
        if problems.is_empty() {
            Ok(pages)
        } else {
            Err(problems)
        }
    }

    /// The page as HTML. A template error (only possible if start-up checks
    /// missed it) is logged and gives a minimal generic page.
    pub fn render(&self, page: &Page<'_>) -> String {
        match self.try_render(page) {
            Ok(html) => html,
            Err(e) => {
                tracing::error!(template = page.template(), error = %e, "could not render page");
                FALLBACK_PAGE.to_owned()
            }
        }
    }

    fn try_render(&self, page: &Page<'_>) -> Result<String, minijinja::Error> {
        let ctx = page.context();
        self.env.get_template(page.template())?.render(context! {
            brand => self.brand.clone(),
            css => self.css.clone(),
            ..ctx
        })
    }

    /// The page as a complete HTML response, with the security headers of
    /// every answer (`response`) and the pages' own policy.
    pub fn respond(&self, status: StatusCode, page: &Page<'_>) -> Response<crate::Body> {
        // Pages reached through a link token in the URL send no referrer at
        // all; other pages keep "same-origin" so their POSTs state their
        // origin.
        let referrer = match page {
            Page::Confirm { .. } | Page::LinkInvalid => Referrer::NoReferrer,
            _ => Referrer::SameOrigin,
        };
        response::html(status, self.render(page), &self.csp, referrer)
    }

    /// The sign-in email: (subject, plain text, html).
    pub fn email(&self, mail: &LinkEmail<'_>) -> (String, String, String) {
        match self.try_email(mail) {
            Ok(parts) => parts,
            Err(e) => {
                tracing::error!(error = %e, "could not render the sign-in email; sending a plain one");
                let text = format!(
                    "Open this link to sign in to {}:\n\n{}\n\nOr type this code: {}\n\n\
                     If you did not ask to sign in, ignore this email.\n",
                    mail.site, mail.link, mail.code
                );
                let html = format!(
                    "<p><a href=\"{}\">Sign in</a></p><p>Code: {}</p>",
                    escape_html(mail.link),
                    escape_html(mail.code)
                );
                (format!("Your sign-in link for {}", mail.site), text, html)
            }
        }
    }

    fn try_email(
        &self,
        mail: &LinkEmail<'_>,
    ) -> Result<(String, String, String), minijinja::Error> {
        let ctx = context! {
            brand => self.brand.clone(),
            link => mail.link,
            code => mail.code,
            expires_in => mail.expires_in,
            expires_at => mail.expires_at,
            ip => mail.ip,
            user_agent => mail.user_agent,
            browser => describe_user_agent(mail.user_agent),
            site => mail.site,
            ..self.colours.context()
        };
        let subject = self.env.get_template("email_subject.txt")?.render(&ctx)?;
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let text = self.env.get_template("email.txt")?.render(&ctx)?;
        let html = self.env.get_template("email.html")?.render(&ctx)?;
        Ok((subject, text + "\n", html))
    }
}

fn brand_name(title: &str) -> Option<String> {
    let title = title.trim();
    let default = BrandingConfig::default().title;
    (!title.is_empty() && title != default).then(|| title.to_owned())
}

/// One of each page, with values that exercise escaping and optional parts.
fn sample_pages() -> Vec<Page<'static>> {
    const HOSTILE: &str = "<script>alert(\"x\")</script>'&";
    vec![
        Page::Login {
            csrf: "csrf",
            rd: HOSTILE,
            error: Some(HOSTILE),
            providers: &[],
            email: true,
        },
        Page::Login {
            csrf: "csrf",
            rd: "",
            error: None,
            providers: &[],
            email: true,
        },
        Page::CheckEmail {
            csrf: "csrf",
            code_digits: 6,
            expires_in: "10 minutes",
            error: None,
            mail_down: false,
            retry_url: "/.latchkey/login",
        },
        Page::Confirm {
            csrf: "csrf",
            token: HOSTILE,
        },
        Page::WrongBrowser {
            requested_ip: "2001:db8::1",
            requested_agent: HOSTILE,
            retry_url: "/.latchkey/login",
        },
        Page::LinkInvalid,
        Page::LogoutConfirm { csrf: "csrf" },
        Page::SignedOut {
            login_url: "/.latchkey/login",
        },
        Page::Forbidden { email: HOSTILE },
        Page::Account {
            csrf: "csrf",
            email: HOSTILE,
            roles: &[],
            how: "an email link",
            sessions: &[],
            passkeys: &[],
            notice: Some(HOSTILE),
        },
        Page::StepUp {
            csrf: "csrf",
            email: HOSTILE,
            rd: HOSTILE,
            passkeys: 1,
        },
        Page::for_status(StatusCode::TOO_MANY_REQUESTS),
    ]
}

const SAMPLE_EMAIL: LinkEmail<'static> = LinkEmail {
    link: "https://auth.example.com/.latchkey/verify?token=abc",
    code: "123456",
    expires_in: "10 minutes",
    expires_at: "14:05 UTC",
    ip: "192.0.2.1",
    user_agent: "<script>",
    site: "auth.example.com",
};

#[cfg(test)]
mod tests {
    use super::*;

    fn pages() -> Pages {
        Pages::new(&BrandingConfig::default()).unwrap()
    }

    const XSS: &str = "<script>alert(1)</script>";

    #[test]
    fn login_has_form_fields_and_escapes_rd_and_error() {
        let html = pages().render(&Page::Login {
            csrf: "tok-123",
            rd: "/x\"><script>alert(1)</script>",
            error: Some(XSS),
            providers: &[],
            email: true,
        });
        assert!(html.contains("action=\"/.latchkey/login\""));
        assert!(html.contains("name=\"email\""));
        assert!(html.contains("autocomplete=\"username webauthn\""));
        assert!(html.contains("name=\"csrf\" value=\"tok-123\""));
        assert!(html.contains("name=\"rd\" value=\"/x&quot;&gt;&lt;script&gt;"));
        assert!(html.contains("role=\"alert\""));
        assert!(html.contains("<label for=\"email\">"));
        assert!(html.contains("lang=\"en\""));
        assert!(html.contains("name=\"viewport\""));
        assert!(!html.contains("<script>"), "{html}");
    }

    #[test]
    fn preset_buttons_carry_their_icon_and_a_custom_one_none() {
        let button = |kind: &'static str, available: bool| ProviderButton {
            name: format!("<{kind}>"),
            kind,
            href: format!("/.latchkey/oauth/{kind}/start?rd="),
            available,
        };
        let buttons = [
            button("github", true),
            button("google", false),
            button("microsoft", true),
            button("oidc", true),
        ];
        let html = pages().render(&Page::Login {
            csrf: "c",
            rd: "",
            error: None,
            providers: &buttons,
            email: true,
        });
        assert_eq!(
            html.matches("<svg aria-hidden=\"true\"").count(),
            3,
            "{html}"
        );
        for kind in ["github", "google", "microsoft"] {
            let at = html.find(&format!("provider-{kind}")).unwrap();
            let end = at + html[at..].find("Sign in with").unwrap();
            assert!(html[at..end].contains("<svg"), "{kind}: {html}");
        }
        let oidc = html.find("provider-oidc").unwrap();
        assert!(!html[oidc..].contains("<svg"), "{html}");
        // The names are escaped; the icons are not.
        assert!(html.contains("Sign in with &lt;github&gt;"), "{html}");
        assert!(!html.contains("&lt;svg"), "{html}");
    }

    #[test]
    fn login_without_error_has_no_alert() {
        let html = pages().render(&Page::Login {
            csrf: "c",
            rd: "",
            error: None,
            providers: &[],
            email: true,
        });
        assert!(!html.contains("role=\"alert\""));
        assert!(!html.contains("aria-invalid=\"true\""));
        assert!(
            !html.contains("<header"),
            "the default title is not shown as a brand"
        );
        assert!(html.contains("name=\"rd\" value=\"\""));
    }

    #[test]
    fn check_email_has_code_form() {
        let html = pages().render(&Page::CheckEmail {
            csrf: "c1",
            code_digits: 6,
            expires_in: "10 minutes",
            error: None,
            mail_down: false,
            retry_url: "/.latchkey/login",
        });
        assert!(html.contains("Check your email"));
        assert!(html.contains("action=\"/.latchkey/code\""));
        assert!(html.contains("name=\"code\""));
        assert!(html.contains("inputmode=\"numeric\""));
        assert!(html.contains("autocomplete=\"one-time-code\""));
        assert!(html.contains("maxlength=\"6\""));
        assert!(html.contains("name=\"csrf\" value=\"c1\""));
        assert!(html.contains("10 minutes"));
    }

    #[test]
    fn confirm_posts_token() {
        let html = pages().render(&Page::Confirm {
            csrf: "c2",
            token: "abc<def",
        });
        assert!(html.contains("action=\"/.latchkey/verify\""));
        assert!(html.contains("method=\"post\""));
        assert!(html.contains("name=\"token\" value=\"abc&lt;def\""));
        assert!(html.contains("name=\"csrf\" value=\"c2\""));
        assert!(html.contains("Continue signing in"));
    }

    #[test]
    fn wrong_browser_summarises_the_agent() {
        let html = pages().render(&Page::WrongBrowser {
            requested_ip: "203.0.113.9",
            requested_agent:
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            retry_url: "/.latchkey/login?rd=%2Freports%3Fa%3D1%26b%3D2",
        });
        assert!(html.contains("203.0.113.9"));
        assert!(html.contains("Firefox on Linux"));
        assert!(
            html.contains("href=\"/.latchkey/login?rd=%2Freports%3Fa%3D1%26b%3D2\""),
            "the retry link keeps the return address: {html}"
        );

        let html = pages().render(&Page::WrongBrowser {
            requested_ip: "1.2.3.4",
            requested_agent: XSS,
            retry_url: "/.latchkey/login",
        });
        assert!(!html.contains("<script>"));
        assert!(
            !html.contains("alert(1)"),
            "free text of the agent is not repeated"
        );
    }

    #[test]
    fn other_pages_render_their_key_content() {
        let p = pages();
        let html = p.render(&Page::LinkInvalid);
        assert!(html.contains("href=\"/.latchkey/login\""));
        let html = p.render(&Page::LogoutConfirm { csrf: "c3" });
        assert!(html.contains("action=\"/.latchkey/logout\""));
        assert!(html.contains("name=\"csrf\" value=\"c3\""));
        let html = p.render(&Page::SignedOut {
            login_url: "/.latchkey/login?rd=%2F",
        });
        assert!(html.contains("href=\"/.latchkey/login?rd=%2F\""));
        let html = p.render(&Page::Forbidden { email: XSS });
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("href=\"/.latchkey/logout\""));
        assert!(!html.contains("<script>"));
        let html = p.render(&Page::Error {
            status: 503,
            title: "Unavailable",
            message: XSS,
        });
        assert!(html.contains("503"));
        assert!(html.contains("Unavailable"));
        assert!(!html.contains("<script>"));
        let html = p.render(&Page::for_status(StatusCode::TOO_MANY_REQUESTS));
        assert!(html.contains("Too many attempts"));
    }

    const PASSKEY_SCRIPT_TAG: &str = "<script src=\"/.latchkey/passkey.js\" defer></script>";

    #[test]
    fn the_account_page_lists_passkeys_escaped_with_rename_and_remove_forms() {
        let rows = [PasskeyRow {
            id: "Y3JlZA".into(),
            name: XSS.into(),
            created: "2026-12-02 14:05 UTC".into(),
            last_used: "never".into(),
        }];
        let html = pages().render(&Page::Account {
            csrf: "tok",
            email: "a@b.c",
            roles: &[],
            how: "a passkey",
            sessions: &[],
            passkeys: &rows,
            notice: None,
        });
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains(XSS));
        assert_eq!(
            html.matches("action=\"/.latchkey/account/passkeys\"")
                .count(),
            2
        );
        assert!(html.contains("name=\"id\" value=\"Y3JlZA\""));
        assert!(html.contains("name=\"remove\" value=\"1\""));
        assert!(html.contains("last used never"));
        // "Add a passkey" waits, hidden, for the script.
        assert!(html.contains("<form id=\"passkey-add\" class=\"passkey-add\" hidden>"));
        assert!(html.contains(PASSKEY_SCRIPT_TAG));
    }

    #[test]
    fn every_form_carries_csrf() {
        let p = pages();
        for page in sample_pages() {
            let html = p.render(&page);
            let forms = html.matches("<form").count();
            let csrf = html.matches("name=\"csrf\"").count();
            assert_eq!(forms, csrf, "{}", page.template());
            // No inline script: at most the one same-origin file.
            assert_eq!(
                html.matches("<script").count(),
                html.matches(PASSKEY_SCRIPT_TAG).count(),
                "{}",
                page.template()
            );
        }
    }

    #[test]
    fn respond_sets_security_headers() {
        let p = pages();
        let r = p.respond(StatusCode::FORBIDDEN, &Page::Forbidden { email: "a@b.c" });
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let h = r.headers();
        assert_eq!(h["content-type"], "text/html; charset=utf-8");
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
        let csp = h["content-security-policy"].to_str().unwrap();
        for part in [
            "default-src 'none'",
            "style-src 'sha256-",
            "img-src https: data:",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{csp}");
        }
        assert!(!csp.contains("form-action"), "{csp}");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
    }

    #[test]
    fn csp_hash_matches_the_style_element() {
        let p = pages();
        let html = p.render(&Page::LinkInvalid);
        let start = html.find("<style>").unwrap() + "<style>".len();
        let end = html.find("</style>").unwrap();
        let hash = base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(&html.as_bytes()[start..end]));
        let r = p.respond(StatusCode::OK, &Page::LinkInvalid);
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains(&format!("'sha256-{hash}'")), "{csp}");
    }

    #[test]
    fn email_has_link_code_and_details() {
        let (subject, text, html) = pages().email(&LinkEmail {
            link: "https://app.example.com/.latchkey/verify?token=AbC_d-1&x=y",
            code: "042917",
            expires_in: "10 minutes",
            expires_at: "14:05 UTC",
            ip: "198.51.100.7",
            user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            site: "app.example.com",
        });
        assert_eq!(subject, "Your sign-in link for app.example.com");
        assert!(text
            .lines()
            .any(|l| l == "https://app.example.com/.latchkey/verify?token=AbC_d-1&x=y"));
        assert!(text.contains("042917"));
        assert!(text.contains("10 minutes (at 14:05 UTC)"));
        assert!(text.contains("198.51.100.7"));
        assert!(text.contains("Safari on iPhone"));
        assert!(text.contains("ignore this email"));
        assert!(html
            .contains("href=\"https://app.example.com/.latchkey/verify?token=AbC_d-1&amp;x=y\""));
        assert!(html.contains(">042917<"));
        assert!(html.contains("Safari on iPhone"));
        assert!(html.contains("ignore this email"));
        assert!(html.contains("<table role=\"presentation\""));
    }

    #[test]
    fn email_does_not_repeat_a_hostile_user_agent() {
        let (_, text, html) = pages().email(&LinkEmail {
            user_agent: "<script>Visit https://evil.example now</script>",
            ..SAMPLE_EMAIL
        });
        assert!(!text.contains("evil"));
        assert!(!html.contains("evil"));
        assert!(text.contains("an unrecognised browser"));
    }

    #[test]
    fn branding_shows_title_logo_and_accent() {
        let p = Pages::new(&BrandingConfig {
            title: "Acme <Corp>".into(),
            logo_url: Some("https://cdn.example.com/logo.svg".into()),
            accent_color: "#0a7".into(),
            template_dir: None,
        })
        .unwrap();
        let html = p.render(&Page::LinkInvalid);
        assert!(html
            .contains("<img src=\"https://cdn.example.com/logo.svg\" alt=\"Acme &lt;Corp&gt;\">"));
        assert!(html.contains("--accent: #00aa77;"));
    }

    #[test]
    fn bad_branding_is_refused_naming_the_key() {
        for bad in ["red;", "#12", "#1234567", "#ggg", "", "blue", "#12345g"] {
            let err = Pages::new(&BrandingConfig {
                accent_color: bad.into(),
                ..BrandingConfig::default()
            })
            .unwrap_err();
            assert_eq!(err.len(), 1, "{err:?}");
            assert!(err[0].starts_with("branding.accent_color: "), "{err:?}");
            assert!(err[0].contains("is not a #rrggbb colour"), "{err:?}");
        }
        let err = Pages::new(&BrandingConfig {
            logo_url: Some("http://x/logo.png".into()),
            ..BrandingConfig::default()
        })
        .unwrap_err();
        assert!(
            err[0].starts_with("branding.logo_url: \"http://x/logo.png\""),
            "{err:?}"
        );
    }

    #[test]
    fn template_dir_overrides_file_by_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("link_invalid.html"),
            "{% extends \"base.html\" %}{% block content %}<p>Custom {{ brand.title }}</p>{% include \"note.html\" %}{% endblock %}",
        )
        .unwrap();
        std::fs::write(dir.path().join("note.html"), "<small>note</small>").unwrap();
        let p = Pages::new(&BrandingConfig {
            template_dir: Some(dir.path().to_str().unwrap().into()),
            ..BrandingConfig::default()
        })
        .unwrap();
        let html = p.render(&Page::LinkInvalid);
        assert!(
            html.contains("<p>Custom Sign in</p><small>note</small>"),
            "{html}"
        );
        assert!(html.contains("<style>"), "still uses the built-in base");
        let html = p.render(&Page::SignedOut { login_url: "/l" });
        assert!(html.contains("You are signed out"), "others stay built in");
    }

    #[test]
    fn template_dir_errors_name_the_file() {
        let err = Pages::new(&BrandingConfig {
            template_dir: Some("/nonexistent/latchkey-templates".into()),
            ..BrandingConfig::default()
        })
        .unwrap_err();
        assert_eq!(
            err,
            vec!["branding.template_dir: \"/nonexistent/latchkey-templates\": no such directory"]
        );

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("login.html"), "{% if %}broken").unwrap();
        let err = Pages::new(&BrandingConfig {
            template_dir: Some(dir.path().to_str().unwrap().into()),
            ..BrandingConfig::default()
        })
        .unwrap_err();
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(err[0].starts_with("branding.template_dir: "), "{err:?}");
        assert!(err[0].contains("login.html"), "{err:?}");

        // Compiles, but includes a file that is not there.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("confirm.html"),
            "{% include \"missing.html\" %}",
        )
        .unwrap();
        let err = Pages::new(&BrandingConfig {
            template_dir: Some(dir.path().to_str().unwrap().into()),
            ..BrandingConfig::default()
        })
        .unwrap_err();
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(err[0].contains("confirm.html"), "{err:?}");
        assert!(err[0].contains("missing.html"), "{err:?}");

        // Prints a variable that does not exist.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("email.txt"), "{{ lnk }}").unwrap();
        let err = Pages::new(&BrandingConfig {
            template_dir: Some(dir.path().to_str().unwrap().into()),
            ..BrandingConfig::default()
        })
        .unwrap_err();
        assert!(err[0].contains("email.txt"), "{err:?}");
    }

    /// Writes every page and the email to `$LATCHKEY_PAGES_OUT` for looking
    /// at in a browser: `LATCHKEY_PAGES_OUT=/tmp/pages cargo test --lib
    /// pages::tests::write_samples -- --ignored`.
    #[test]
    #[ignore]
    fn write_samples() {
        let out = std::path::PathBuf::from(std::env::var("LATCHKEY_PAGES_OUT").unwrap());
        std::fs::create_dir_all(&out).unwrap();
        let p = pages();
        let pages = [
            Page::Login {
                csrf: "c",
                rd: "/",
                error: None,
                providers: &[],
                email: true,
            },
            Page::Login {
                csrf: "c",
                rd: "/",
                error: Some("Enter an email address like name@example.com."),
                providers: &[],
                email: true,
            },
            Page::CheckEmail {
                csrf: "c",
                code_digits: 6,
                expires_in: "10 minutes",
                error: None,
                mail_down: false,
                retry_url: "/.latchkey/login",
            },
            Page::Confirm {
                csrf: "c",
                token: "t",
            },
            Page::WrongBrowser {
                requested_ip: "203.0.113.9",
                requested_agent:
                    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                retry_url: "/.latchkey/login",
            },
            Page::LinkInvalid,
            Page::LogoutConfirm { csrf: "c" },
            Page::SignedOut {
                login_url: "/.latchkey/login",
            },
            Page::Forbidden {
                email: "alice@example.com",
            },
            Page::for_status(StatusCode::SERVICE_UNAVAILABLE),
        ];
        for (i, page) in pages.iter().enumerate() {
            let name = format!("{i:02}-{}", page.template());
            std::fs::write(out.join(name), p.render(page)).unwrap();
        }
        let (_, text, html) = p.email(&LinkEmail {
            link: "https://app.example.com/.latchkey/verify?token=q8Zr3xY0l6Hk2mWbT4vN9sPcE1aJdUfG7oRiKyLh5nA",
            code: "042917",
            user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
            ..SAMPLE_EMAIL
        });
        std::fs::write(out.join("email.html"), html).unwrap();
        let branded = Pages::new(&BrandingConfig {
            title: "Acme Corp".into(),
            accent_color: "#fc0".into(),
            ..BrandingConfig::default()
        })
        .unwrap();
        let html = branded.render(&Page::Login {
            csrf: "c",
            rd: "/",
            error: None,
            providers: &[],
            email: true,
        });
        std::fs::write(out.join("10-branded-login.html"), html).unwrap();
        std::fs::write(out.join("email.txt"), text).unwrap();
        let r = p.respond(StatusCode::OK, &Page::LinkInvalid);
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        std::fs::write(out.join("csp.txt"), csp).unwrap();
    }
}
