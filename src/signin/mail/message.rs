//! One sign-in mail: its fields, the MIME message built from them
//! (multipart/alternative, text then html), and the only thing logs may say
//! about its recipient (the domain). Its wording is `pages`'; sending it is
//! `transport`'s.

use std::fmt;

use lettre::message::{Mailbox, MultiPart};
use lettre::Message;

use super::MailError;

/// One message to send. Its body holds a sign-in link, so `Debug` shows only
/// the recipient's domain and the subject.
#[derive(Clone)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Email")
            .field("to_domain", &recipient_domain(&self.to))
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// The message `email` is, from `from` to `to`.
pub(super) fn build(from: &Mailbox, to: Mailbox, email: &Email) -> Result<Message, MailError> {
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(email.subject.as_str())
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(MailError::Build)
}

/// The part after the last '@', lower-cased; what logs may say about a
/// recipient.
pub(super) fn recipient_domain(address: &str) -> String {
    address
        .trim()
        .trim_end_matches('>')
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_else(|| "(no domain)".to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn domains_only() {
        assert_eq!(recipient_domain("Bob <Bob@Example.COM>"), "example.com");
        assert_eq!(recipient_domain("nobody"), "(no domain)");
        let e = Email {
            to: "bob@example.com".into(),
            subject: "s".into(),
            text: "https://secret-link".into(),
            html: "x".into(),
        };
        let debug = format!("{e:?}");
        assert!(
            !debug.contains("secret-link") && !debug.contains("bob@"),
            "{debug}"
        );
    }
}
