//! Observability: metrics, audit events, request ids; and the clock every
//! part of latchkey reads "now" from.

pub mod audit;
pub mod clock;
pub mod mail_stats;
pub(crate) mod metrics;
pub(crate) mod request_id;
