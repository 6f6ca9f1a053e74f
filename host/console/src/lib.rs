//! `weft-console`: the browser console — GraphiQL, a start page and the network page — with every
//! file the pages load built into the binary, so that they work with no network beyond the
//! server itself.
//!
//! Owns: the pages (`pages/`, filled in for where a server mounts them), the third-party files
//! (`assets/`: GraphiQL 4.1.2's prebuilt bundle, React and ReactDOM 18.3.1's UMD files and their
//! licences, refreshed by `scripts/fetch-console-assets.sh`), their content types, the Content
//! Security Policy the pages are served with, and when a request is a browser's
//! ([`wants_html`]). Must not know: HTTP frameworks, keys, or what the JSON the pages fetch
//! holds beyond its field names (the servers serve the files with their own stack: `weft-rest`
//! under `/weaviate/v1`, `weft-genesis` at its root).
//!
//! The pages need no key to load (they are static); every data request they make carries the key
//! and token the user gave once (kept in the tab's `sessionStorage`) as `X-API-KEY` and
//! `X-API-TOKEN`, and an error answer's message is shown in the page.

/// One file the pages load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Its name under the assets path (`graphiql.min.js`).
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// The `Content-Type` of the pages.
pub const HTML: &str = "text/html; charset=utf-8";

macro_rules! asset {
    ($name:literal, $dir:literal, $ty:expr) => {
        Asset {
            name: $name,
            content_type: $ty,
            bytes: include_bytes!(concat!("../", $dir, "/", $name)),
        }
    };
}

/// Every file served under the assets path.
pub const ASSETS: &[Asset] = &[
    // Third party, byte for byte from the npm packages (assets/README.md).
    asset!("graphiql.min.js", "assets", JS),
    asset!("graphiql.min.css", "assets", CSS),
    asset!("react.production.min.js", "assets", JS),
    asset!("react-dom.production.min.js", "assets", JS),
    asset!("LICENSE.graphiql", "assets", TEXT),
    asset!("LICENSE.react", "assets", TEXT),
    asset!("LICENSE.react-dom", "assets", TEXT),
    // Weft's own.
    asset!("console.css", "pages", CSS),
    asset!("console.js", "pages", JS),
    asset!("graphiql-boot.js", "pages", JS),
    asset!("network.js", "pages", JS),
];

/// The file `name` of [`ASSETS`].
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// Where the assets are, below the path a server mounts the console at.
pub const ASSETS_PATH: &str = "/console/assets";

/// The Content Security Policy of every page: scripts, styles, fonts, images and requests from
/// this server only (GraphiQL's inline styles and its `data:` fonts and images allowed), so that
/// even a page changed by mistake cannot load from elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// How long a browser may keep an asset (they change only with the binary).
pub const ASSET_CACHE_CONTROL: &str = "public, max-age=3600";

/// The headers of every page (besides its content type, [`HTML`]): the
/// [`CONTENT_SECURITY_POLICY`], no sniffing, no referrer, revalidated on every load.
pub const PAGE_HEADERS: [(&str, &str); 4] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-cache"),
];

/// The headers of every file of [`ASSETS`] (besides its content type).
pub const ASSET_HEADERS: [(&str, &str); 2] = [
    ("x-content-type-options", "nosniff"),
    ("cache-control", ASSET_CACHE_CONTROL),
];

/// The message of the 404 for a file `name` that is not one of [`ASSETS`]: it names those.
pub fn no_such_asset(name: &str) -> String {
    format!(
        "there is no console file {name:?}; the console's files are {}",
        ASSETS.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
    )
}

/// Whether a request with this `Accept` header is a browser's asking for a page: it names
/// `text/html` (or `application/xhtml+xml`) with a quality above 0. `*/*` alone (curl, most
/// clients) or `application/json` is not.
pub fn wants_html(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        if media != "text/html" && media != "application/xhtml+xml" {
            return false;
        }
        let q = parts
            .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .filter_map(|q| q.trim().parse::<f32>().ok())
            .next_back()
            .unwrap_or(1.0);
        q > 0.0
    })
}

/// The pages of a Weft server (`weft serve`), filled in for its API base path (`/weaviate/v1`).
#[derive(Debug, Clone)]
pub struct ServerPages {
    /// The start page (`{base}/console`).
    pub start: String,
    /// GraphiQL (`GET {base}/graphql` from a browser).
    pub graphiql: String,
    /// The network page (`{base}/p2p/console`), fetching `{base}/p2p/network`.
    pub network: String,
}

fn fill(template: &str, pairs: &[(&str, &str)]) -> String {
    pairs.iter().fold(template.to_string(), |page, (k, v)| {
        page.replace(&format!("{{{{{k}}}}}"), v)
    })
}

/// Escapes text for HTML.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The network page's template, with its title, where its JSON is, and its navigation.
fn network_page(
    title: &str,
    intro: &str,
    home: &str,
    nav: &str,
    endpoint: &str,
    assets: &str,
) -> String {
    fill(
        include_str!("../pages/network.html"),
        &[
            ("TITLE", &escape(title)),
            ("INTRO", &escape(intro)),
            ("HOME", home),
            ("NAV", nav),
            ("ENDPOINT", endpoint),
            ("ASSETS", assets),
        ],
    )
}

impl ServerPages {
    /// The pages for an API under `base` (e.g. `/weaviate/v1`): assets at
    /// `{base}/console/assets`, links to `{base}/graphql`, `{base}/swagger/`,
    /// `{base}/openapi.json` and `{base}/p2p/console`.
    pub fn new(base: &str) -> ServerPages {
        let assets = format!("{base}{ASSETS_PATH}");
        let pairs = [("BASE", base), ("ASSETS", assets.as_str())];
        let nav = fill(
            "<a href=\"{{BASE}}/graphql\">GraphiQL</a> <a href=\"{{BASE}}/swagger/\">REST (Swagger UI)</a> \
             <a href=\"{{BASE}}/p2p/console\">Network</a>",
            &pairs,
        );
        ServerPages {
            start: fill(include_str!("../pages/start.html"), &pairs),
            graphiql: fill(include_str!("../pages/graphiql.html"), &pairs),
            network: network_page(
                "Weft · the network",
                "This peer, the genesis or bootstrapped peers it joined through, and every peer it \
                 knows, as this peer sees them (needs a key with the read right).",
                &format!("{base}/console"),
                &nav,
                &format!("{base}/p2p/network"),
                &assets,
            ),
        }
    }
}

/// The genesis server's network page (`/console` at its root), fetching `/network` with the
/// genesis's admin key.
pub fn genesis_network_page() -> String {
    network_page(
        "Weft genesis · the network",
        "This genesis and every peer registered with it (needs the genesis's admin key: \
         --admin-key and --admin-token).",
        "/console",
        "<a href=\"/openapi.json\">OpenAPI document</a>",
        "/network",
        ASSETS_PATH,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_asks_for_html_and_a_client_does_not() {
        let chrome =
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
        let firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(wants_html(Some(chrome)));
        assert!(wants_html(Some(firefox)));
        assert!(wants_html(Some("TEXT/HTML")));
        assert!(!wants_html(None));
        assert!(!wants_html(Some("*/*")));
        assert!(!wants_html(Some("application/json")));
        assert!(!wants_html(Some("text/html;q=0, application/json")));
        assert!(!wants_html(Some("text/htmlx")));
    }

    #[test]
    fn every_page_is_filled_in_and_loads_only_served_assets() {
        let pages = ServerPages::new("/weaviate/v1");
        for page in [
            &pages.start,
            &pages.graphiql,
            &pages.network,
            &genesis_network_page(),
        ] {
            assert!(!page.contains("{{"), "a placeholder is left: {page}");
            for (i, _) in page.match_indices("/console/assets/") {
                let rest = &page[i + "/console/assets/".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| !matches!(c, '"' | '\'' | ' ' | '>'))
                    .collect();
                assert!(asset(&name).is_some(), "the page loads {name}, not served");
            }
        }
        assert!(pages
            .graphiql
            .contains("data-endpoint=\"/weaviate/v1/graphql\""));
        assert!(pages
            .network
            .contains("data-endpoint=\"/weaviate/v1/p2p/network\""));
    }
}
