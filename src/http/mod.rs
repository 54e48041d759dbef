//! HTTP plumbing shared by every handler: request facts (`Ctx`, client IP,
//! cookies read back, forms), origins, the one error type with its status,
//! the one response builder (security headers), the cookies latchkey sets,
//! and the pages. Routing and deciding are `gate`'s; what pages say is
//! `signin`'s and `gate`'s.

pub mod cookies;
pub mod credentials;
pub mod error;
pub mod forwarded;
pub mod origin;
pub mod pages;
pub mod request;
pub mod response;
