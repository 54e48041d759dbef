//! HTTP plumbing shared by every handler: request facts (`Ctx`, client IP,
//! cookies read back, forms), origins, the one error type with its status,
//! the one response builder (security headers), the cookies latchkey sets,
//! and the pages. Routing and deciding are `gate`'s; what pages say is
//! `signin`'s and `gate`'s.

pub(crate) mod cookies;
pub(crate) mod credentials;
pub(crate) mod error;
pub(crate) mod forwarded;
pub(crate) mod origin;
pub mod pages;
pub mod request;
pub(crate) mod response;
