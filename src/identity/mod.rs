//! Who is calling: secrets and session records, keys and assertions (and
//! the short reuse of one, `assertion_cache`),
//! bearer tokens (and the reuse of a checked signature, `bearer_cache`),
//! the session cache, and the lookup that joins them
//! (`identify`). It reads no request: http hands it the credentials, App the
//! parts it needs (`Identifier`). Answering a request is the layers above.

pub(crate) mod assertion;
pub(crate) mod assertion_cache;
pub(crate) mod bearer;
pub(crate) mod bearer_cache;
pub(crate) mod cache;
pub(crate) mod identify;
pub mod keys;
pub mod oidc;
pub mod passkey;
pub mod secret;
pub(crate) mod session;
