//! The request context: what a handler takes from its request besides the operation's own
//! parameters — the caller, which the authorisation middleware ([`crate::server`]) puts on every
//! request that needs a key before any handler runs. Handler groups hold the core
//! ([`weft_core::Core`]) themselves.
//!
//! Owns: where the caller is kept on a request. Must not know: routing or how a key is checked.

use weft_core::Principal;

use crate::{ApiError, ApiResult};

/// Records the authenticated caller of `req` (the authorisation middleware does, once).
pub fn set_principal(req: &mut poem::Request, principal: Principal) {
    req.extensions_mut().insert(principal);
}

/// The caller of a request (set by the authorisation middleware).
pub fn principal(req: &poem::Request) -> ApiResult<Principal> {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| ApiError::unauthorized(weft_core::keys::MISSING_HEADERS))
}
