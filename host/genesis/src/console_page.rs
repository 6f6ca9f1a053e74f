//! The genesis's page of the browser console (`weft-console`): `GET /console`, the network as
//! the genesis sees it, fetching `GET /network` with the admin key; its files at
//! `/console/assets/{name}`. A browser's `GET /` is sent to it ([`browser_at_root`]). The page and files need no key
//! (they are static); what they show does.
//!
//! Owns: how the console's files are answered here. Must not know: the genesis's state (the
//! operation `GET /network` is the genesis's).

use poem::http::{header, Method, StatusCode};
use poem::web::Path;
use poem::{handler, Request, Response};
use weft_peer_protocol::wire::ErrorBody;

/// The 405 of every other method on the page or a file, with `Allow`.
fn only_get(req: &Request) -> Option<Response> {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return None;
    }
    let mut r = ErrorBody::new(format!(
        "{} is not allowed on {}: the network page and its files answer GET (open /console in a browser)",
        req.method(),
        req.uri().path()
    ))
    .response(StatusCode::METHOD_NOT_ALLOWED);
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
    Some(r)
}

/// The page, with the console's security headers.
#[handler]
pub fn page(req: &Request) -> Response {
    if let Some(refused) = only_get(req) {
        return refused;
    }
    weft_console::PAGE_HEADERS
        .iter()
        .fold(
            Response::builder().content_type(weft_console::HTML),
            |r, (k, v)| r.header(*k, *v),
        )
        .body(weft_console::genesis_network_page())
}

/// A file of the console, or a 404 naming the files there are.
#[handler]
pub fn asset(req: &Request, Path(name): Path<String>) -> Response {
    if let Some(refused) = only_get(req) {
        return refused;
    }
    match weft_console::asset(&name) {
        Some(a) => weft_console::ASSET_HEADERS
            .iter()
            .fold(
                Response::builder().content_type(a.content_type),
                |r, (k, v)| r.header(*k, *v),
            )
            .body(a.bytes),
        None => ErrorBody::new(weft_console::no_such_asset(&name)).response(StatusCode::NOT_FOUND),
    }
}

/// A browser's `GET /` (`Accept: text/html`): sent to the page (303). `None` for anything
/// else, which the operations' router answers (a JSON 404 naming the operations and the page).
pub fn browser_at_root(req: &Request) -> Option<Response> {
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    (get && req.uri().path() == "/" && weft_console::wants_html(accept)).then(|| {
        Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, "/console")
            .header(header::VARY, "Accept")
            .finish()
    })
}
