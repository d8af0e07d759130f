//! The web console (issue 16): static HTML, CSS and ES modules from the repository's
//! `console/` folder, embedded in the `sluice` binary at compile time and served at `/`,
//! `/console` and `/console/assets/…`. The assets are public and hold no secret; every
//! datum the console shows comes from the REST API with the token the user signs in with,
//! so the console has no privileges of its own. See `docs/console.md`.

use super::error::ApiError;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file: its name under `/console/assets/`, media type and bytes.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($name:literal, $media:literal) => {
        Asset {
            name: $name,
            media_type: $media,
            body: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../console/assets/",
                $name
            )),
        }
    };
}

const INDEX: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../console/index.html"
));

const ASSETS: &[Asset] = &[
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("ui.js", "text/javascript; charset=utf-8"),
    asset!("jobs.js", "text/javascript; charset=utf-8"),
    asset!("job.js", "text/javascript; charset=utf-8"),
    asset!("workbench.js", "text/javascript; charset=utf-8"),
    asset!("dag.js", "text/javascript; charset=utf-8"),
    asset!("complete.js", "text/javascript; charset=utf-8"),
    asset!("workflows.js", "text/javascript; charset=utf-8"),
    asset!("workflow.js", "text/javascript; charset=utf-8"),
    asset!("tables.js", "text/javascript; charset=utf-8"),
    asset!("clusters.js", "text/javascript; charset=utf-8"),
    asset!("audit.js", "text/javascript; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

/// Only the console's own files, and calls to its own origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn respond(media_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, media_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    respond("text/html; charset=utf-8", INDEX)
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => respond(a.media_type, a.body),
        None => ApiError::not_found("no such console asset").into_response(),
    }
}

/// The console's routes: public, outside the OpenAPI document (they are not API).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/assets/{name}", get(asset))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module `index.html` or another module imports is embedded, and nothing
    /// loads from another origin.
    #[test]
    fn every_import_is_embedded_and_local() {
        let mut texts = vec![INDEX];
        texts.extend(ASSETS.iter().map(|a| a.body));
        for text in texts {
            let text = text.replace("http://www.w3.org/2000/svg", "");
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "external URL in an asset"
            );
            for part in text.split("./").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                    .collect();
                if name.ends_with(".js") || name.ends_with(".css") || name.ends_with(".svg") {
                    assert!(
                        ASSETS.iter().any(|a| a.name == name),
                        "{name} is not embedded"
                    );
                }
            }
        }
        assert!(INDEX.contains("/console/assets/app.js"));
    }

    /// The page and its modules come with their media type and the CSP; an unknown asset
    /// is the API's 404 body.
    #[tokio::test]
    async fn serves_the_page_and_assets_under_the_csp() {
        use axum::http::StatusCode;
        let page = index().await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(
            page.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("script-src 'self'"));
        let js = asset(Path("app.js".to_string())).await;
        assert_eq!(js.status(), StatusCode::OK);
        assert_eq!(
            js.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let missing = asset(Path("../Cargo.toml".to_string())).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}
