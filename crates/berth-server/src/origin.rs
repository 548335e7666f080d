//! Where a browser request comes from: one reading of `Origin` and `Referer`, one
//! normalization (scheme and host lower-cased, the scheme's default port dropped, path, query
//! and user info refused or cut), and the two policies that use it.
//!
//! A request is from this server when its origin equals main.yaml's `public_url`, or (without
//! one, and for state changes always) when its host and port equal the `Host` the request was sent to (the scheme is not
//! compared then: behind a TLS-terminating proxy the server cannot know it; the port is
//! compared after dropping the default port of the origin's scheme).
//!
//! The policies differ where their threats differ:
//!
//! | | [`websocket`] (terminal and grid sockets) | [`state_change`] (forms, API writes) |
//! |---|---|---|
//! | header read | `Origin` only | `Origin`, else the origin of `Referer` |
//! | neither header | refused unless `Authorization` is sent (a program) | allowed: the CSRF token still guards |
//! | `Origin: null` | refused | refused |
//! | several `Origin` headers | refused | refused |
//! | not an http(s) origin | refused | refused |
//! | matched against | `public_url` when set, else `Host` | `public_url`, and `Host` as well |
//!
//! A browser attaches cookies to a WebSocket opened by any site and sends no CSRF token with
//! it, so the Origin is the socket's only defence and is required of cookie callers. A form
//! carries the session's CSRF token, so a request from a program that sends neither header
//! passes here and is judged by its token.

use axum::http::{HeaderMap, header};

/// Why a request was refused.
pub(crate) type Refusal = &'static str;

/// The WebSocket policy: a strict `Origin` check, skipped only for callers that send
/// `Authorization` (the CLI; browsers cannot set it on a socket).
pub(crate) fn websocket(headers: &HeaderMap, public_url: Option<&str>) -> Result<(), Refusal> {
    let Some(origin) = single_origin(headers)? else {
        return if headers.contains_key(header::AUTHORIZATION) {
            Ok(())
        } else {
            Err(
                "a browser's WebSocket must carry an Origin; programs authenticate with \
                 `Authorization: Bearer <token>`",
            )
        };
    };
    if origin.eq_ignore_ascii_case("null") {
        return Err("WebSockets from an opaque origin (Origin: null) are refused");
    }
    if from_this_server(headers, origin, public_url)? {
        Ok(())
    } else {
        Err("the page opening this WebSocket is not from this server (Origin refused)")
    }
}

/// The policy of state-changing requests: `Origin`, else `Referer`, must name this server;
/// a request with neither passes (its CSRF token is checked elsewhere).
pub(crate) fn state_change(headers: &HeaderMap, public_url: Option<&str>) -> Result<(), Refusal> {
    const REFUSED: Refusal =
        "cross-origin request refused: the Origin (or Referer) is not this server";
    let origin = match single_origin(headers)? {
        Some(origin) => origin,
        None => match headers.get(header::REFERER) {
            None => return Ok(()),
            Some(referer) => referer
                .to_str()
                .map_err(|_| "the Referer header is not printable ASCII")?,
        },
    };
    if origin.eq_ignore_ascii_case("null") {
        return Err(REFUSED);
    }
    // The Host is believed even beside a `public_url`, so an admin who reaches the server by
    // another name (localhost, its address) can still use the forms.
    let this_server = |public| from_this_server(headers, origin, public).unwrap_or(false);
    if this_server(public_url) || this_server(None) {
        Ok(())
    } else {
        Err(REFUSED)
    }
}

/// The one `Origin` header, if any; several are refused.
fn single_origin(headers: &HeaderMap) -> Result<Option<&str>, Refusal> {
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let Some(origin) = origins.next() else {
        return Ok(None);
    };
    if origins.next().is_some() {
        return Err("give one Origin header, not several");
    }
    origin
        .to_str()
        .map(Some)
        .map_err(|_| "the Origin header is not printable ASCII")
}

/// Whether `url` (an origin or a Referer) is this server: `public_url` when set, else the
/// request's `Host`.
fn from_this_server(
    headers: &HeaderMap,
    url: &str,
    public_url: Option<&str>,
) -> Result<bool, Refusal> {
    let origin = Origin::parse(url).ok_or("the Origin header is not a URL's origin")?;
    if let Some(public) = public_url {
        return Ok(Origin::parse(public).is_some_and(|expected| expected == origin));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or("the request has no Host to check its Origin against")?;
    // The Host read as if it had the origin's scheme, so its default port drops the same way.
    Ok(Origin::parse(&format!("{}://{host}", origin.scheme))
        .is_some_and(|h| h.authority == origin.authority))
}

/// An http(s) origin, normalized: `scheme` and `authority` (`host[:port]`) lower-cased, the
/// scheme's default port dropped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: &'static str,
    authority: String,
}

impl Origin {
    /// The origin of a URL; `None` for anything but http(s), an empty host, or user info.
    pub(crate) fn parse(url: &str) -> Option<Self> {
        let (scheme, rest) = url.trim().split_once("://")?;
        let (scheme, default) = if scheme.eq_ignore_ascii_case("http") {
            ("http", ":80")
        } else if scheme.eq_ignore_ascii_case("https") {
            ("https", ":443")
        } else {
            return None;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let authority = authority.to_ascii_lowercase();
        let authority = authority
            .strip_suffix(default)
            .map_or_else(|| authority.clone(), str::to_owned);
        Some(Self { scheme, authority })
    }
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
    fn one_normalization() {
        let o = |u| Origin::parse(u);
        assert_eq!(
            o("HTTPS://Berth.Example.org:443/x?y#z"),
            o("https://berth.example.org")
        );
        assert_eq!(o("http://h:80"), o("http://h"));
        assert_ne!(o("http://h:443"), o("http://h"));
        assert_ne!(o("https://h"), o("http://h"));
        assert_eq!(o("https://a.b:8443/x/y?z").unwrap().authority, "a.b:8443");
        for bad in ["file://", "null", "http://", "http://u:p@h", "ftp://h", "h"] {
            assert_eq!(o(bad), None, "{bad}");
        }
    }

    #[test]
    fn websockets_need_an_origin_of_this_server() {
        let public = Some("https://berth.example.org/");
        let ok = |h: &HeaderMap, p| websocket(h, p).is_ok();
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
        assert!(ok(&host("https://127.0.0.1:8080"), None));
        assert!(!ok(&host("http://127.0.0.1:8081"), None));
        assert!(!ok(&host("http://127.0.0.1:8080.evil.example"), None));
        assert!(!ok(&host("file://"), None));
        let default_port = headers(&[(header::HOST, "h:80"), (header::ORIGIN, "http://H")]);
        assert!(ok(&default_port, None));
        // No Origin: only a program with a token; a Referer does not stand in.
        assert!(!ok(&headers(&[(header::HOST, "h")]), None));
        assert!(!ok(
            &headers(&[(header::HOST, "h"), (header::REFERER, "http://h/w/1")]),
            None
        ));
        assert!(ok(&headers(&[(header::AUTHORIZATION, "Bearer x")]), None));
        assert!(!ok(
            &headers(&[(header::ORIGIN, "http://h"), (header::ORIGIN, "http://h")]),
            None
        ));
    }

    #[test]
    fn state_changes_take_the_origin_else_the_referer_else_pass() {
        let ok = |h: &HeaderMap, p| state_change(h, p).is_ok();
        let host = |pairs: &[(header::HeaderName, &str)]| {
            let mut all = vec![(header::HOST, "127.0.0.1:8080")];
            all.extend_from_slice(pairs);
            headers(&all)
        };
        // Neither header: a program; its CSRF token decides.
        assert!(ok(&host(&[]), None));
        assert!(ok(
            &host(&[(header::ORIGIN, "http://127.0.0.1:8080")]),
            None
        ));
        assert!(ok(
            &host(&[(header::REFERER, "http://127.0.0.1:8080/admin/users?q=1")]),
            None
        ));
        assert!(!ok(&host(&[(header::ORIGIN, "http://evil.example")]), None));
        assert!(!ok(
            &host(&[(header::REFERER, "http://evil.example/page")]),
            None
        ));
        // The Origin wins over the Referer.
        assert!(!ok(
            &host(&[
                (header::ORIGIN, "http://evil.example"),
                (header::REFERER, "http://127.0.0.1:8080/")
            ]),
            None
        ));
        assert!(!ok(&host(&[(header::ORIGIN, "null")]), None));
        assert!(!ok(
            &host(&[
                (header::ORIGIN, "http://127.0.0.1:8080"),
                (header::ORIGIN, "http://127.0.0.1:8080")
            ]),
            None
        ));
        let public = Some("https://berth.example.org");
        assert!(ok(
            &host(&[(header::REFERER, "https://Berth.example.org:443/x")]),
            public
        ));
        assert!(ok(
            &host(&[(header::ORIGIN, "http://127.0.0.1:8080")]),
            public
        ));
        assert!(!ok(
            &host(&[(header::ORIGIN, "https://evil.example")]),
            public
        ));
    }
}
