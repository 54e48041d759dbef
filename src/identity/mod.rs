//! Who is calling: secrets and session records, keys and assertions,
//! bearer tokens, the session cache, and the lookup that joins them
//! (`identify`). It reads no request: http hands it the credentials, App the
//! parts it needs (`Identifier`). Answering a request is the layers above.

pub mod assertion;
pub mod bearer;
pub mod cache;
pub mod identify;
pub mod keys;
pub mod secret;
pub mod session;
