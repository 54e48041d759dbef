//! Where mail goes: `Mailer`, the transport `[mail]` chooses (SMTP through
//! lettre's pool, trusting a CA of its own when `mail.ca_file` says so; the
//! console; a directory of `.eml` files), checked and built once, with the
//! sender address. Queueing, retries and counting are `queue`'s.

use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::file::AsyncFileTransport;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransport, AsyncSmtpTransportBuilder};
use lettre::{AsyncTransport, Tokio1Executor};

use super::message::{self, Email};
use super::MailError;
use crate::config::{redact_url, MailConfig};

/// How long one SMTP conversation may take before it counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where mail goes, with the sender address; built once from `[mail]`.
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
    /// Where it sends, fit to print (passwords redacted), for `describe`.
    shown: String,
}

enum Transport {
    /// Built on first use: lettre's pool starts a task when built, which
    /// needs a runtime, and `latchkey check` validates without one.
    Smtp {
        builder: AsyncSmtpTransportBuilder,
        transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
    },
    Console,
    File(AsyncFileTransport<Tokio1Executor>),
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("transport", &self.kind())
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl Mailer {
    /// Builds the transport from `[mail]`; needs no runtime (SMTP connects
    /// on the first send). Problems come back as lines naming
    /// the key, e.g. `mail.smtp_url: required when mail.transport = "smtp"`.
    /// Passwords in `smtp_url` never appear in them.
    pub fn from_config(cfg: &MailConfig) -> Result<Mailer, Vec<String>> {
        let mut problems = Vec::new();
        let from = match cfg.from.parse::<Mailbox>() {
            Ok(m) => Some(m),
            Err(_) => {
                problems.push(format!(
                    "mail.from: {:?} is not an address like \"Name <login@example.com>\"",
                    cfg.from
                ));
                None
            }
        };
        let transport = match cfg.transport.as_str() {
            "smtp" => smtp_transport(
                cfg.smtp_url.as_deref(),
                cfg.ca_file.as_deref(),
                &mut problems,
            ),
            "console" => Some(Transport::Console),
            "file" => file_transport(cfg.file_dir.as_deref(), &mut problems),
            other => {
                problems.push(format!(
                    "mail.transport: {other:?} is not a transport; expected one of smtp, console, file"
                ));
                None
            }
        };
        match (from, transport) {
            (Some(from), Some(transport)) if problems.is_empty() => Ok(Mailer {
                from,
                transport,
                shown: shown(cfg),
            }),
            _ => Err(problems),
        }
    }

    /// One line for `latchkey check`: the transport, where it sends (the
    /// SMTP URL with its password redacted, and the CA file it trusts; the
    /// directory) and the sender, e.g. `smtp (smtps://user:***@smtp.example.com:465) · from login@example.com`.
    pub fn describe(&self) -> String {
        format!("{} ({}) · from {}", self.kind(), self.shown, self.from)
    }

    /// "smtp", "console" or "file".
    pub fn kind(&self) -> &'static str {
        match self.transport {
            Transport::Smtp { .. } => "smtp",
            Transport::Console => "console",
            Transport::File(_) => "file",
        }
    }

    /// Checks that the transport can be reached (SMTP: connect, EHLO, QUIT);
    /// console and file transports always can.
    pub async fn probe(&self) -> Result<(), MailError> {
        match &self.transport {
            Transport::Smtp { builder, transport } => transport
                .get_or_init(|| builder.clone().build())
                .test_connection()
                .await
                .map(drop)
                .map_err(MailError::Smtp),
            Transport::Console | Transport::File(_) => Ok(()),
        }
    }

    /// Sends one message (multipart/alternative: text, then html) and waits
    /// for the transport to accept it.
    pub async fn send(&self, email: &Email) -> Result<(), MailError> {
        let to: Mailbox = email.to.parse().map_err(MailError::Recipient)?;
        if let Transport::Console = self.transport {
            return print_to_console(&to, email);
        }
        let message = message::build(&self.from, to, email)?;
        match &self.transport {
            Transport::Smtp { builder, transport } => transport
                .get_or_init(|| builder.clone().build())
                .send(message)
                .await
                .map(drop)
                .map_err(MailError::Smtp),
            Transport::File(file) => file.send(message).await.map(drop).map_err(MailError::File),
            Transport::Console => Ok(()),
        }
    }
}

/// Where the transport of `cfg` (already checked) sends, fit to print.
fn shown(cfg: &MailConfig) -> String {
    match cfg.transport.as_str() {
        "smtp" => {
            let url = redact_url(cfg.smtp_url.as_deref().unwrap_or_default());
            match cfg.ca_file.as_deref() {
                Some(ca) => format!("{url}, trusting {ca}"),
                None => url,
            }
        }
        "file" => cfg.file_dir.clone().unwrap_or_default(),
        _ => "standard output".to_owned(),
    }
}

fn smtp_transport(
    url: Option<&str>,
    ca_file: Option<&str>,
    problems: &mut Vec<String>,
) -> Option<Transport> {
    let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
        problems.push("mail.smtp_url: required when mail.transport = \"smtp\"".to_owned());
        return None;
    };
    const EXPECTED: &str = "expected smtp://host:25, \
        smtp://user:pass@host:587?tls=required (STARTTLS) or smtps://user:pass@host:465";
    let scheme = url.split_once("://").map(|(s, _)| s);
    if !matches!(scheme, Some("smtp" | "smtps")) {
        problems.push(format!(
            "mail.smtp_url: {:?} is not an smtp:// or smtps:// URL; {EXPECTED}",
            redact_url(url)
        ));
        return None;
    }
    match AsyncSmtpTransport::<Tokio1Executor>::from_url(url) {
        Ok(builder) => {
            let builder = match ca_file {
                Some(ca) => trusting(builder, url, ca, problems)?,
                None => builder,
            };
            Some(Transport::Smtp {
                builder: builder.timeout(Some(SMTP_TIMEOUT)),
                transport: OnceLock::new(),
            })
        }
        Err(e) => {
            problems.push(format!(
                "mail.smtp_url: {:?}: {e}; {EXPECTED}",
                redact_url(url)
            ));
            None
        }
    }
}

/// The transport of `url` with its TLS trusting the CAs in `ca_file`
/// instead of the public web roots (a relay with a private CA).
fn trusting(
    builder: AsyncSmtpTransportBuilder,
    url: &str,
    ca_file: &str,
    problems: &mut Vec<String>,
) -> Option<AsyncSmtpTransportBuilder> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?.trim_matches(['[', ']']).to_owned();
    let tls = parsed
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    let wrap: fn(TlsParameters) -> Tls = match (parsed.scheme(), tls.as_deref()) {
        ("smtps", _) => Tls::Wrapper,
        ("smtp", Some("required")) => Tls::Required,
        ("smtp", Some("opportunistic")) => Tls::Opportunistic,
        _ => {
            problems.push(format!(
                "mail.ca_file: set, but mail.smtp_url {:?} uses no TLS; expected smtps:// or smtp://...?tls=required",
                redact_url(url)
            ));
            return None;
        }
    };
    let pem = match crate::tls::read_ca_pem(std::path::Path::new(ca_file)) {
        Ok(pem) => pem,
        Err(why) => {
            problems.push(format!("mail.ca_file: {ca_file:?} {why}"));
            return None;
        }
    };
    let params = Certificate::from_pem(&pem).and_then(|cert| {
        TlsParameters::builder(host)
            .add_root_certificate(cert)
            .build_rustls()
    });
    match params {
        Ok(params) => Some(builder.tls(wrap(params))),
        Err(e) => {
            problems.push(format!(
                "mail.ca_file: {ca_file:?}: {e}; expected a PEM file of CA certificates"
            ));
            None
        }
    }
}

fn file_transport(dir: Option<&str>, problems: &mut Vec<String>) -> Option<Transport> {
    let Some(dir) = dir.filter(|d| !d.trim().is_empty()) else {
        problems.push("mail.file_dir: required when mail.transport = \"file\"".to_owned());
        return None;
    };
    let path = PathBuf::from(dir);
    if let Err(e) = std::fs::create_dir_all(&path) {
        problems.push(format!(
            "mail.file_dir: {dir:?}: cannot create the directory: {e}"
        ));
        return None;
    }
    if !path.is_dir() {
        problems.push(format!("mail.file_dir: {dir:?}: not a directory"));
        return None;
    }
    Some(Transport::File(AsyncFileTransport::<Tokio1Executor>::new(
        path,
    )))
}

fn print_to_console(to: &Mailbox, email: &Email) -> Result<(), MailError> {
    use std::io::Write as _;
    let rule = "=".repeat(72);
    let mut out = std::io::stdout().lock();
    write!(
        out,
        "\n{rule}\n  latchkey: sign-in email (mail.transport = \"console\")\n{rule}\n\
         To:      {to}\nSubject: {subject}\n\n{text}\n{rule}\n\n",
        subject = email.subject,
        text = email.text.trim_end(),
    )
    .and_then(|()| out.flush())
    .map_err(MailError::Console)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn cfg(transport: &str) -> MailConfig {
        MailConfig {
            transport: transport.into(),
            ..MailConfig::default()
        }
    }

    #[test]
    fn bad_smtp_url_hides_the_password() {
        let err = Mailer::from_config(&MailConfig {
            smtp_url: Some("smtpx://user:hunter2@host".into()),
            ..cfg("smtp")
        })
        .unwrap_err();
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(
            err[0].starts_with("mail.smtp_url: \"smtpx://user:***@host\""),
            "{err:?}"
        );
        assert!(!err[0].contains("hunter2"));
    }

    #[test]
    fn describe_redacts_the_password() {
        let smtp = Mailer::from_config(&MailConfig {
            smtp_url: Some("smtps://user:hunter2@smtp.example.com:465".into()),
            ..cfg("smtp")
        })
        .unwrap();
        let line = smtp.describe();
        assert!(
            line.starts_with("smtp (smtps://user:***@smtp.example.com:465) · from "),
            "{line}"
        );
        assert!(!line.contains("hunter2"), "{line}");
        let console = Mailer::from_config(&cfg("console")).unwrap();
        assert!(
            console
                .describe()
                .starts_with("console (standard output) · from "),
            "{}",
            console.describe()
        );
    }

    #[tokio::test]
    async fn console_prints_and_sends() {
        let mailer = Mailer::from_config(&cfg("console")).unwrap();
        assert_eq!(mailer.kind(), "console");
        let email = Email {
            to: "a@example.com".into(),
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
        };
        mailer.send(&email).await.unwrap();
        let bad = Email {
            to: "not an address".into(),
            ..email
        };
        assert!(matches!(
            mailer.send(&bad).await,
            Err(MailError::Recipient(_))
        ));
    }
}
