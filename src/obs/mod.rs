//! Observability: metrics, audit events, request ids.

pub mod audit;
pub mod mail_stats;
pub mod metrics;
pub mod request_id;
