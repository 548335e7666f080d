//! The `Origin` check of the WebSocket endpoints. Browsers attach cookies to a socket opened by
//! any site, so a socket authenticated by cookie must come from a page of this server; a
//! request without `Origin` is a program (the CLI), which must then bring a Bearer token.

use axum::http::{HeaderMap, header};

/// Why an upgrade request was refused.
pub(crate) type Refusal = &'static str;

/// Checks the request's `Origin` against `public_url` (main.yaml), or, without one, against
/// the `Host` the request was sent to.
pub(crate) fn check(headers: &HeaderMap, public_url: Option<&str>) -> Result<(), Refusal> {
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let Some(origin) = origins.next() else {
        return if headers.contains_key(header::AUTHORIZATION) {
            Ok(())
        } else {
            Err(
                "a browser's WebSocket must carry an Origin; programs authenticate with \
                 `Authorization: Bearer <token>`",
            )
        };
    };
    if origins.next().is_some() {
        return Err("give one Origin header, not several");
    }
    let origin = origin
        .to_str()
        .map_err(|_| "the Origin header is not printable ASCII")?;
    if origin.eq_ignore_ascii_case("null") {
        return Err("WebSockets from an opaque origin (Origin: null) are refused");
    }
    let origin = normalize(origin).ok_or("the Origin header is not a URL's origin")?;
    let allowed = match public_url {
        Some(url) => normalize(url).is_some_and(|expected| expected == origin),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .ok_or("the request has no Host to check its Origin against")?;
            let (_, authority) = origin.split_once("://").unwrap_or_default();
            normalize(&format!("http://{host}"))
                .is_some_and(|h| h.split_once("://").is_some_and(|(_, a)| a == authority))
        }
    };
    if allowed {
        Ok(())
    } else {
        Err("the page opening this WebSocket is not from this server (Origin refused)")
    }
}

/// `scheme://host[:port]` of a URL, lower-cased, without a default port, path or user info;
/// `None` for anything but http(s).
fn normalize(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let authority = authority.strip_suffix(default).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn origins_are_matched_against_the_public_url_or_the_host() {
        let public = Some("https://berth.example.org/");
        let ok = |h: &HeaderMap, p| check(h, p).is_ok();
        assert!(ok(
            &headers(&[(header::ORIGIN, "https://berth.example.org")]),
            public
        ));
        assert!(ok(
            &headers(&[(header::ORIGIN, "HTTPS://Berth.example.org:443")]),
            public
        ));
        assert!(!ok(
            &headers(&[(header::ORIGIN, "http://berth.example.org")]),
            public
        ));
        assert!(!ok(
            &headers(&[(header::ORIGIN, "https://evil.example")]),
            public
        ));
        assert!(!ok(&headers(&[(header::ORIGIN, "null")]), public));
        let host = |origin| headers(&[(header::HOST, "127.0.0.1:8080"), (header::ORIGIN, origin)]);
        assert!(ok(&host("http://127.0.0.1:8080"), None));
        assert!(!ok(&host("http://127.0.0.1:8081"), None));
        assert!(!ok(&host("http://127.0.0.1:8080.evil.example"), None));
        assert!(!ok(&host("file://"), None));
        // No Origin: only a program with a token.
        assert!(!ok(&headers(&[(header::HOST, "h")]), None));
        assert!(ok(&headers(&[(header::AUTHORIZATION, "Bearer x")]), None));
        assert!(!ok(
            &headers(&[(header::ORIGIN, "http://h"), (header::ORIGIN, "http://h")]),
            None
        ));
    }
}
