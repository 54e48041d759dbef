//! Sending mail, off the request path.
//!
//! [`Mailer`] is the transport chosen by `[mail]`: SMTP (lettre, with a
//! connection pool), the console (prints the text part to stdout; this is how
//! `latchkey demo` shows the link) or a directory of `.eml` files.
//! [`MailQueue`] puts a bounded queue and a background worker in front of it:
//! [`MailQueue::enqueue`] never waits, so the "check your email" answer takes
//! the same time whether or not a mail is sent; the worker retries failures
//! with exponential backoff and counts everything in `obs::mail_stats::MailStats`.
//!
//! When sending fails at the connection level (the SMTP server cannot be
//! reached, TLS fails, it times out) `MailStats::transport_down` turns on:
//! the "check your email" page then says the email could not be sent, for
//! every address alike, so it reveals nothing about which are known. A
//! successful send turns it off, and while it is on a probe opens an SMTP
//! connection every few seconds (EHLO, QUIT) to notice when the server is
//! back even if nobody signs in. A server that answers with an error (4xx,
//! 5xx) is up: such failures are retried and counted but do not turn it on.
//!
//! What the mail says is `pages`' job. Logs name only the recipient's domain,
//! never the address, the link or the code.
//!
//! SMTP over TLS uses rustls with the ring provider: lettre takes the
//! process-wide default provider when one is installed and ring otherwise, so
//! nothing here installs global state.

use crate::obs::mail_stats::MailStats;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::file::AsyncFileTransport;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransport, AsyncSmtpTransportBuilder};
use lettre::{AsyncTransport, Message, Tokio1Executor};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::config::{redact_url, MailConfig};

/// How long one SMTP conversation may take before it counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

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

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("recipient is not an email address: {0}")]
    Recipient(#[source] lettre::address::AddressError),
    #[error("could not build the message: {0}")]
    Build(#[source] lettre::error::Error),
    #[error("SMTP: {0}")]
    Smtp(#[source] lettre::transport::smtp::Error),
    #[error("writing the .eml file: {0}")]
    File(#[source] lettre::transport::file::Error),
    #[error("writing to stdout: {0}")]
    Console(#[source] std::io::Error),
}

impl MailError {
    /// Trying again cannot help (bad address, 5xx answer from the server).
    pub fn is_permanent(&self) -> bool {
        match self {
            MailError::Recipient(_) | MailError::Build(_) => true,
            MailError::Smtp(e) => e.is_permanent(),
            MailError::File(_) | MailError::Console(_) => false,
        }
    }

    /// The transport itself is unreachable (not an answer about this
    /// message): no mail to anyone can be sent right now.
    pub fn is_transport_down(&self) -> bool {
        match self {
            MailError::Smtp(e) => !e.is_transient() && !e.is_permanent(),
            MailError::File(_) => true,
            MailError::Recipient(_) | MailError::Build(_) | MailError::Console(_) => false,
        }
    }
}

/// Where mail goes, with the sender address; built once from `[mail]`.
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
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
            (Some(from), Some(transport)) if problems.is_empty() => Ok(Mailer { from, transport }),
            _ => Err(problems),
        }
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
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.as_str())
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(MailError::Build)?;
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

/// The part after the last '@', lower-cased; what logs may say about a
/// recipient.
fn recipient_domain(address: &str) -> String {
    address
        .trim()
        .trim_end_matches('>')
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_else(|| "(no domain)".to_owned())
}

/// How the queue behaves; [`QueueSettings::default`] suits production.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// Messages waiting to be sent before new ones are dropped.
    pub capacity: usize,
    /// Tries per message, the first included.
    pub attempts: u32,
    /// Wait after the first failure; each later wait is four times longer.
    pub base_delay: Duration,
    /// Messages being sent (or waiting to retry) at once.
    pub concurrency: usize,
    /// While the transport is down, how often to probe it.
    pub probe_every: Duration,
}

impl Default for QueueSettings {
    /// 1 024 waiting, 4 tries with waits of 1 s, 4 s and 16 s, 8 at once;
    /// a down transport probed every 5 s.
    fn default() -> Self {
        QueueSettings {
            capacity: 1024,
            attempts: 4,
            base_delay: Duration::from_secs(1),
            concurrency: 8,
            probe_every: Duration::from_secs(5),
        }
    }
}

/// A bounded queue in front of a [`Mailer`], drained by a background task.
#[derive(Debug)]
pub struct MailQueue {
    tx: mpsc::Sender<Email>,
    stats: Arc<MailStats>,
    worker: JoinHandle<()>,
    prober: JoinHandle<()>,
}

impl MailQueue {
    /// Starts the worker on the current tokio runtime, with default settings.
    pub fn spawn(mailer: Arc<Mailer>, stats: Arc<MailStats>) -> MailQueue {
        MailQueue::spawn_with(mailer, stats, QueueSettings::default())
    }

    /// Starts the worker on the current tokio runtime.
    pub fn spawn_with(
        mailer: Arc<Mailer>,
        stats: Arc<MailStats>,
        settings: QueueSettings,
    ) -> MailQueue {
        let (tx, rx) = mpsc::channel(settings.capacity.max(1));
        let prober = tokio::spawn(probe(mailer.clone(), stats.clone(), settings.probe_every));
        let worker = tokio::spawn(run(mailer, rx, stats.clone(), settings));
        MailQueue {
            tx,
            stats,
            worker,
            prober,
        }
    }

    /// Queues a message without waiting. When the queue is full the message
    /// is dropped, counted and logged.
    pub fn enqueue(&self, email: Email) {
        match self.tx.try_send(email) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(email)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    domain = %recipient_domain(&email.to),
                    "mail queue full; sign-in mail dropped"
                );
            }
            Err(mpsc::error::TrySendError::Closed(email)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    domain = %recipient_domain(&email.to),
                    "mail worker has stopped; sign-in mail dropped"
                );
            }
        }
    }

    /// Stops taking mail and waits until every queued message is sent or
    /// given up on (including retries; wrap in a timeout at shutdown).
    pub async fn shutdown(self) {
        self.prober.abort();
        drop(self.tx);
        if let Err(e) = self.worker.await {
            tracing::error!(error = %e, "mail worker failed");
        }
    }
}

/// While the transport is down, checks every `every` whether it is back.
async fn probe(mailer: Arc<Mailer>, stats: Arc<MailStats>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if stats.transport_down() {
            match mailer.probe().await {
                Ok(()) => stats.set_down(false),
                Err(e) => tracing::debug!(error = %e, "mail transport still unreachable"),
            }
        }
    }
}

async fn run(
    mailer: Arc<Mailer>,
    mut rx: mpsc::Receiver<Email>,
    stats: Arc<MailStats>,
    settings: QueueSettings,
) {
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    while let Some(email) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        while tasks.try_join_next().is_some() {}
        let (mailer, stats, settings) = (mailer.clone(), stats.clone(), settings.clone());
        tasks.spawn(async move {
            deliver(&mailer, &email, &stats, &settings).await;
            drop(slot);
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Sends one message, retrying with backoff.
async fn deliver(mailer: &Mailer, email: &Email, stats: &MailStats, settings: &QueueSettings) {
    let domain = recipient_domain(&email.to);
    let attempts = settings.attempts.max(1);
    let mut delay = settings.base_delay;
    for attempt in 1..=attempts {
        match mailer.send(email).await {
            Ok(()) => {
                stats.sent.fetch_add(1, Ordering::Relaxed);
                stats.set_down(false);
                tracing::info!(%domain, attempt, transport = mailer.kind(), "sign-in mail sent");
                return;
            }
            Err(e) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                if e.is_transport_down() {
                    stats.set_down(true);
                }
                // Server replies may quote the address; logs get the domain only.
                let error = e.to_string().replace(email.to.trim(), "<recipient>");
                if attempt == attempts || e.is_permanent() {
                    stats.abandoned.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(%domain, attempt, %error, "gave up sending sign-in mail");
                    return;
                }
                tracing::warn!(%domain, attempt, %error, retry_in = ?delay, "sign-in mail failed; will retry");
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(4);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
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
