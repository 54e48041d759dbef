//! The one integration-test binary: real redis-server, a real SMTP server,
//! a real upstream and latchkey itself, all on loopback ports picked at run
//! time. Helpers that start them live in `support/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod abuse;
mod account;
mod admin;
mod as_judged;
mod assertion;
mod bearer;
mod browser;
mod browser_passkeys;
mod cache;
mod config_check;
mod demo;
mod durable;
mod failure;
mod flow;
mod frontproxy;
mod fuzz_regressions;
mod ha;
mod hardening;
mod load;
mod mail;
mod observability;
mod oidc;
mod ops;
mod passkey_ceremonies;
mod passkeys;
mod pooling;
mod providers;
mod proxy;
mod recovery;
mod reload;
mod security_headers;
mod spa;
mod step_up;
mod store;
mod store_faults;
mod upgrades;
