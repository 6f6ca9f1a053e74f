//! The browser console on this server (the pages and files of `weft-console`): `GET /` from a
//! browser is sent to the start page `/weaviate/v1/console`; `GET /weaviate/v1/graphql` from a
//! browser (`Accept: text/html`) is GraphiQL; `/weaviate/v1/p2p/console` is the network page
//! (it fetches `GET /weaviate/v1/p2p/network`, a keyed operation); the files they load are at
//! `/weaviate/v1/console/assets/{name}`.
//!
//! The pages and files need no key (they are static; every data request they make carries the
//! user's key). Every page is served with the console's Content Security Policy: it loads from
//! this server only.
//!
//! Owns: how the console's files are answered over HTTP. Must not know: the operations (the
//! composition root, `server.rs`, mounts these routes beside them).

use std::sync::Arc;

use poem::http::{header, Method, StatusCode};
use poem::web::Path;
use poem::{handler, Request, Response, Route};
use weft_console::{ServerPages, ASSETS_PATH};

use crate::{ErrorResponse, BASE_PATH};

/// Whether `req` is a browser asking for a page (`GET`/`HEAD` with `Accept: text/html`).
pub fn is_browser_page_request(req: &Request) -> bool {
    (req.method() == Method::GET || req.method() == Method::HEAD)
        && weft_console::wants_html(
            req.headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        )
}

/// Whether `req` is a browser's `GET /weaviate/v1/graphql` (the path relative to the base or
/// not, as a nested endpoint sees it).
pub fn is_graphiql_request(req: &Request) -> bool {
    let path = req.uri().path();
    let rel = path.strip_prefix(BASE_PATH).unwrap_or(path);
    rel.trim_end_matches('/') == "/graphql" && is_browser_page_request(req)
}

/// A page, with the console's security headers; it varies with `Accept` (the same URL answers
/// JSON to other clients).
pub fn page(html: &str) -> Response {
    weft_console::PAGE_HEADERS
        .iter()
        .fold(
            Response::builder().content_type(weft_console::HTML),
            |r, (k, v)| r.header(*k, *v),
        )
        .header(header::VARY, "Accept")
        .body(html.to_string())
}

/// A file of the console, or a 404 naming the files there are.
fn asset(name: &str) -> Response {
    match weft_console::asset(name) {
        Some(a) => weft_console::ASSET_HEADERS
            .iter()
            .fold(
                Response::builder().content_type(a.content_type),
                |r, (k, v)| r.header(*k, *v),
            )
            .body(a.bytes),
        None => {
            ErrorResponse::new(weft_console::no_such_asset(name)).response(StatusCode::NOT_FOUND)
        }
    }
}

/// The 405 of every other method on a console page or file, with `Allow`.
pub fn only_get(req: &Request) -> Option<Response> {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return None;
    }
    let mut r = ErrorResponse::new(format!(
        "{} is not allowed on {}: the console's pages and files answer GET (open them in a browser)",
        req.method(),
        req.uri().path()
    ))
    .response(StatusCode::METHOD_NOT_ALLOWED);
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
    Some(r)
}

#[handler]
fn asset_handler(req: &Request, Path(name): Path<String>) -> Response {
    only_get(req).unwrap_or_else(|| asset(&name))
}

/// `/` (any method): a browser's `GET` is sent to the start page (303); anything else is the
/// JSON 404 saying where the API and the console are.
#[handler]
fn root(req: &Request) -> Response {
    if is_browser_page_request(req) {
        return Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, format!("{BASE_PATH}/console"))
            .header(header::VARY, "Accept")
            .finish();
    }
    ErrorResponse::new(format!(
        "there is no operation at /: the API is under {BASE_PATH} (see {BASE_PATH}/openapi.json); a browser opening / is sent to the console at {BASE_PATH}/console"
    ))
    .response(StatusCode::NOT_FOUND)
}

/// Adds the console's routes to `route`: `/`, `{base}/console`, `{base}/p2p/console` and
/// `{base}/console/assets/:name` (pages and files answer `GET` and `HEAD`; other methods 405
/// with `Allow`).
pub fn mount(route: Route, pages: Arc<ServerPages>) -> Route {
    let start = pages.clone();
    let network = pages;
    route
        .at("/", root)
        .at(
            format!("{BASE_PATH}/console"),
            poem::endpoint::make_sync(move |req| {
                only_get(&req).unwrap_or_else(|| page(&start.start))
            }),
        )
        .at(
            format!("{BASE_PATH}/p2p/console"),
            poem::endpoint::make_sync(move |req| {
                only_get(&req).unwrap_or_else(|| page(&network.network))
            }),
        )
        .at(format!("{BASE_PATH}{ASSETS_PATH}/:name"), asset_handler)
}
