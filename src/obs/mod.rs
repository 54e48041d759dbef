//! Observability: metrics, audit events, request ids.

pub mod audit;
pub mod metrics;
pub mod request_id;
