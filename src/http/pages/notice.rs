//! The security notices by email: after a sign-in from a browser the
//! person had not used before, and after a passkey was added to their
//! account. Each says when, from which IP and browser (a summary of the
//! User-Agent, never its free text), with a link to the account page where
//! that session can be ended or the passkey removed. Their wording is the
//! templates' `new_device.txt` and `new_device.html`.

use minijinja::context;

use super::{describe_user_agent, Pages};

/// What the new-device email says.
#[derive(Debug, Clone, Copy)]
pub struct NewDeviceEmail<'a> {
    pub email: &'a str,
    /// "2026-12-02 14:05 UTC"
    pub when: &'a str,
    pub ip: &'a str,
    /// The raw User-Agent; only a summary is shown.
    pub user_agent: &'a str,
    /// `https://auth.example.com/.latchkey/account`
    pub account_url: &'a str,
    /// The host signed in to.
    pub site: &'a str,
    /// The name of the passkey just added; `None` for a new-browser notice.
    pub passkey: Option<&'a str>,
}

pub(super) const SAMPLE_NOTICE: NewDeviceEmail<'static> = NewDeviceEmail {
    email: "<script>@example.com",
    when: "2026-12-02 14:05 UTC",
    ip: "192.0.2.1",
    user_agent: "<script>",
    account_url: "https://auth.example.com/.latchkey/account",
    site: "auth.example.com",
    passkey: None,
};

impl Pages {
    /// The new-device email: (subject, plain text, html). A template error
    /// (start-up checks make it unlikely) gives a plain message.
    pub fn new_device_email(&self, mail: &NewDeviceEmail<'_>) -> (String, String, String) {
        let subject = Self::new_device_subject(mail);
        match self.try_new_device(mail, &subject) {
            Ok((text, html)) => (subject, text, html),
            Err(e) => {
                tracing::error!(error = %e, "could not render the new-device email; sending a plain one");
                let what = match mail.passkey {
                    Some(_) => "got a new passkey",
                    None => "was just signed in on a new browser",
                };
                let text = format!(
                    "Your account {what} ({}, IP {}, {}).\n\
                     If it was not you, see your account page: {}\n",
                    describe_user_agent(mail.user_agent),
                    mail.ip,
                    mail.when,
                    mail.account_url
                );
                (subject, text.clone(), text)
            }
        }
    }

    fn new_device_subject(mail: &NewDeviceEmail<'_>) -> String {
        match mail.passkey {
            Some(_) => format!("New passkey on your account at {}", mail.site),
            None => format!("New sign-in to {}", mail.site),
        }
    }

    pub(super) fn try_new_device(
        &self,
        mail: &NewDeviceEmail<'_>,
        subject: &str,
    ) -> Result<(String, String), minijinja::Error> {
        let ctx = context! {
            brand => self.brand.clone(),
            email => mail.email,
            when => mail.when,
            ip => mail.ip,
            browser => describe_user_agent(mail.user_agent),
            account_url => mail.account_url,
            site => mail.site,
            passkey => mail.passkey,
            subject => subject,
            ..self.colours.context()
        };
        let text = self.env.get_template("new_device.txt")?.render(&ctx)?;
        let html = self.env.get_template("new_device.html")?.render(&ctx)?;
        Ok((text, html))
    }
}
