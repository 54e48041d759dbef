//! The mail queue's counters (sent, failed, dropped, abandoned, transport
//! down). The queue (`signin::mail`) writes them; metrics and the sign-in
//! pages read them. Kept here, below both, so neither reaches into the other.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters for metrics; shared with whoever reports them.
#[derive(Debug, Default)]
pub struct MailStats {
    /// Messages the transport accepted.
    pub sent: AtomicU64,
    /// Attempts that failed (a message retried three times counts three).
    pub failed: AtomicU64,
    /// Messages not queued because the queue was full or closed.
    pub dropped: AtomicU64,
    /// Messages given up on after the last attempt or a permanent error.
    pub abandoned: AtomicU64,
    /// The last attempt failed to reach the transport at all; cleared by a
    /// successful send or probe.
    pub down: AtomicBool,
}

impl MailStats {
    /// The mail transport is known to be unreachable right now.
    pub fn transport_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    pub fn set_down(&self, down: bool) {
        if self.down.swap(down, Ordering::Relaxed) != down {
            if down {
                tracing::error!(
                    "mail transport unreachable: sign-in pages now say the email could not be sent"
                );
            } else {
                tracing::info!("mail transport reachable again");
            }
        }
    }
}
