//! HTTP plumbing shared by every handler: request facts (`Ctx`, client IP), errors with their status, cookies, pages.

pub mod cookies;
pub mod credentials;
pub mod error;
pub mod forwarded;
pub mod pages;
pub mod request;
