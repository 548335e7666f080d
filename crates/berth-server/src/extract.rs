//! Body, path and query extractors whose rejections speak Berth's error shape.
//!
//! axum's own extractors answer with plain-text bodies; these wrap them (or replace them) so
//! that a syntax error, a wrong type, a missing content type or an oversized body all come back
//! as `{"error": ...}`. JSON syntax errors are 400, well-formed JSON of the wrong shape (unknown
//! field, wrong type, missing field, number out of range) is 422 with the field's path.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::ApiError;

/// The largest JSON request body accepted.
pub(crate) const MAX_JSON_BODY: usize = 64 * 1024;

/// A JSON request body (`Content-Type: application/json`), or a JSON response.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(unsupported_media_type());
        }
        let bytes = body(req, state).await?;
        parse(&bytes).map(Json)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A JSON body that may be left out entirely (no body, no content type): then `T::default()`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let typed = req.headers().contains_key(header::CONTENT_TYPE);
        let json = is_json(req.headers());
        let bytes = body(req, state).await?;
        if bytes.is_empty() && !typed {
            return Ok(Self(T::default()));
        }
        if !json {
            return Err(unsupported_media_type());
        }
        parse(&bytes).map(OptionalJson)
    }
}

async fn body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    body_up_to(req, state, MAX_JSON_BODY).await
}

/// The body as bytes, of any content type, refused with 413 `payload_too_large` over `MAX`
/// bytes (announced or streamed). The route must allow bodies that large
/// (`Route::max_body`): the router refuses more than [`MAX_JSON_BODY`] otherwise.
pub(crate) struct RawBody<const MAX: usize>(pub Bytes);

impl<S: Send + Sync, const MAX: usize> FromRequest<S> for RawBody<MAX> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        body_up_to(req, state, MAX).await.map(Self)
    }
}

async fn body_up_to<S: Send + Sync>(
    req: Request,
    state: &S,
    max: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::from_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {} KiB", max / 1024),
        )
    };
    // An announced length over the limit is refused before waiting for a byte of it.
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    Bytes::from_request(req, state).await.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::from_status(status, rejection.body_text())
        }
    })
}

fn unsupported_media_type() -> ApiError {
    ApiError::from_status(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "send the body as JSON with `Content-Type: application/json`",
    )
}

/// `application/json`, with parameters (`; charset=utf-8`) or as a `+json` suffix.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence.is_char_boundary(essence.len() - 5)
            && essence[essence.len() - 5..].eq_ignore_ascii_case("+json")
            && essence.to_ascii_lowercase().starts_with("application/"))
}

/// Parses `bytes` as one JSON document of type `T`, naming the offending field on error.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        json_error(err.into_inner(), &path)
    })?;
    deserializer.end().map_err(|err| json_error(err, ""))?;
    Ok(value)
}

fn json_error(err: serde_json::Error, path: &str) -> ApiError {
    use serde_json::error::Category;
    let path = if path == "." { "" } else { path };
    match err.classify() {
        Category::Data => {
            let message = if path.is_empty() {
                format!("invalid request body: {err}")
            } else {
                format!("invalid request body at {path}: {err}")
            };
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", message)
                .with_details(json!({ "errors": [{ "field": path, "message": err.to_string() }] }))
        }
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the request body is not valid JSON: {err}"),
        ),
    }
}

/// Path parameters; a value that does not parse is a 400 naming the parameter.
#[derive(Debug, Clone)]
pub(crate) struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_path",
                rejection.body_text(),
            )),
        }
    }
}

/// Path parameters of a page: a value that does not parse is the same 400, as an HTML page.
#[derive(Debug, Clone)]
pub(crate) struct PagePath<T>(pub T);

impl<T, S> FromRequestParts<S> for PagePath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = axum::response::Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Self(value))
            .map_err(|error| crate::ui::api_error_page(&error))
    }
}

/// Query parameters; unknown or malformed ones are a 400.
#[derive(Debug, Clone)]
pub(crate) struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_query",
                rejection.body_text(),
            )),
        }
    }
}

/// A query that takes no parameters: any given is a 400, so typos do not pass silently.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoQuery {}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        map
    }

    #[test]
    fn json_content_types() {
        assert!(is_json(&headers("application/json")));
        assert!(is_json(&headers("Application/JSON; charset=utf-8")));
        assert!(is_json(&headers("application/merge-patch+json")));
        assert!(!is_json(&headers("text/plain")));
        assert!(!is_json(&headers("text/x+json")));
        assert!(!is_json(&headers("json")));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        n: u32,
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
    }

    #[test]
    fn syntax_is_400_and_shape_is_422_with_the_path() {
        assert_eq!(parse::<Body>(b"{\"n\": 1").unwrap_err().status, 400);
        assert_eq!(parse::<Body>(b"{\"n\": 1} x").unwrap_err().status, 400);
        assert_eq!(parse::<Body>(b"").unwrap_err().status, 400);
        let err = parse::<Body>(b"{\"n\": 1e40}").unwrap_err();
        assert_eq!((err.status.as_u16(), err.code), (422, "invalid_body"));
        let err = parse::<Body>(b"{\"n\": 99999999999999999999999}").unwrap_err();
        assert_eq!(err.status, 422);
        let err = parse::<Body>(b"{\"n\": 1, \"inner\": {\"name\": 5}}").unwrap_err();
        assert_eq!(err.details.unwrap()["errors"][0]["field"], "inner.name");
        let err = parse::<Body>(b"{\"n\": 1, \"extra\": true}").unwrap_err();
        assert!(
            err.message.contains("unknown field `extra`"),
            "{}",
            err.message
        );
        assert!(parse::<Body>(b"{\"n\": 7}").is_ok());
    }
}
