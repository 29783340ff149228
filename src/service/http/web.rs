//! The web app's files (`web/`), built into the binary and served at `/` with the
//! headers that keep a page safe to open: a strict `Content-Security-Policy` (scripts,
//! styles and connections only from this origin: no inline code, no `eval`, no
//! frames), `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and
//! `X-Frame-Options: DENY` for browsers older than `frame-ancestors`.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The policy of every file of the app.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; manifest-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One file of the app.
struct Asset {
    body: &'static [u8],
    media: &'static str,
}

const INDEX: Asset = Asset {
    body: include_bytes!("../../../web/index.html"),
    media: "text/html; charset=utf-8",
};
const SCRIPT: Asset = Asset {
    body: include_bytes!("../../../web/app.js"),
    media: "text/javascript; charset=utf-8",
};
const SEALED: Asset = Asset {
    body: include_bytes!("../../../web/sealed.js"),
    media: "text/javascript; charset=utf-8",
};
const STYLE: Asset = Asset {
    body: include_bytes!("../../../web/app.css"),
    media: "text/css; charset=utf-8",
};
const ICON: Asset = Asset {
    body: include_bytes!("../../../web/favicon.svg"),
    media: "image/svg+xml",
};

/// The app's routes: `/` (the page), `/app.js`, `/sealed.js` (its end-to-end
/// encryption), `/app.css`, `/favicon.svg`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { serve(&INDEX) }))
        .route("/app.js", get(|| async { serve(&SCRIPT) }))
        .route("/sealed.js", get(|| async { serve(&SEALED) }))
        .route("/app.css", get(|| async { serve(&STYLE) }))
        .route("/favicon.svg", get(|| async { serve(&ICON) }))
}

fn serve(asset: &Asset) -> Response {
    let headers = [
        (header::CONTENT_TYPE, asset.media),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // Small files, fetched again on each visit so an upgrade shows at once.
        (header::CACHE_CONTROL, "no-cache"),
    ]
    .map(|(name, value): (HeaderName, &str)| (name, HeaderValue::from_static(value)));
    (headers, asset.body).into_response()
}
