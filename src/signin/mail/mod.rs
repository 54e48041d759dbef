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
//!
//! The pieces: `message` (what one mail is, and what logs may say about
//! it), `transport` (`Mailer`: SMTP, console, file, built from `[mail]`),
//! `queue` (`MailQueue`: the queue, the worker, retries, the probe).

mod message;
mod queue;
mod transport;

pub use message::Email;
pub use queue::{MailQueue, QueueSettings};
pub use transport::Mailer;

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
