//! The one integration-test binary: real redis-server, a real SMTP server,
//! a real upstream and latchkey itself, all on loopback ports picked at run
//! time. Helpers that start them live in `support/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod config_check;
mod demo;
mod flow;
mod hardening;
mod mail;
mod proxy;
mod store;
