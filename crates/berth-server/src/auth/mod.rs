//! Who is calling: credentials, the [`AuthUser`] and [`AdminUser`] extractors, logins and
//! client tokens.
//!
//! A request's credentials are resolved once, by the route guard, into an
//! [`Authentication`] kept in the request's extensions (the guard needs the caller to pick the
//! rate-limit bucket); the extractors only read it. Credentials are looked for in one place
//! today, `Authorization: Bearer <token>`, where the token is a client token (a UUID, from
//! users.yaml) or a login JWT. Without that header, the admin UI's session cookie
//! ([`session`]) is the second source; the API then also wants the session's CSRF token (see
//! `ui::security`). Everything after (the account checks, the extractors) is the same.
//!
//! Every request checks the account against the configuration in force: a disabled or deleted
//! user, a revoked client token or a changed password stops working on the next request.

mod clients;
mod jwt;
mod lockout;

pub(crate) use lockout::{
    AccountQueue, KNOWN_ADDRESS_DAYS, QUEUE_DEADLINE as LOGIN_QUEUE_DEADLINE, ThrottleReports,
};
pub(crate) mod login;
pub(crate) mod session;
pub(crate) mod tokens;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use berth_config::{Config, IpNet};
use berth_types::{ClientId, Role, Username};
use time::OffsetDateTime;

pub(crate) use clients::ClientTokens;
pub(crate) use jwt::password_fingerprint;
pub use jwt::{Claims, JwtError, JwtKey, KeyError};

use crate::error::ApiError;
use crate::limits::Key;
use crate::state::AppState;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Their username.
    pub username: Username,
    /// Their role, as the configuration in force says.
    pub role: Role,
    /// How they authenticated.
    pub via: Via,
}

impl Caller {
    /// Whether the caller is an admin.
    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The rate-limit bucket of the caller: one per client token, one per user for logins.
    pub(crate) fn limit_key(&self) -> Key {
        match self.via {
            Via::ClientToken(id) => Key::Client(id),
            Via::Login => Key::User(self.username.clone()),
        }
    }
}

/// How a caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A JWT from `POST /api/v1/auth/login`.
    Login,
    /// A client token of users.yaml.
    ClientToken(ClientId),
}

/// The outcome of looking at a request's credentials.
#[derive(Debug, Clone)]
pub(crate) enum Authentication {
    /// No credentials.
    Anonymous,
    /// Credentials that cannot be read (a 400).
    Malformed(&'static str),
    /// Credentials that do not authenticate anyone now (a 401).
    Rejected,
    /// A caller.
    Caller(Caller),
}

/// The address a request came from: the TCP peer, or, when the peer is one of main.yaml's
/// `security.trusted_proxies`, the address its `X-Forwarded-For` names (see [`client_ip`]).
/// The outermost layer (`ui::security::layer`) sets it for every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The addresses counted as this client's by the per-address rate limits and the login
    /// lockout.
    pub(crate) fn block(self) -> AddressBlock {
        AddressBlock::of(self.0)
    }
}

/// The addresses one client is taken to hold: an IPv4 address alone, an IPv6 address with the
/// rest of its /64 (one subscriber's, who may use any address in it, so one budget and one
/// lock for all of it). It is the /64's first address, so it is stored and shown as an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct AddressBlock(IpAddr);

impl AddressBlock {
    /// The block `ip` is in.
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => Self(IpAddr::V6(std::net::Ipv6Addr::from_bits(
                v6.to_bits() & !u128::from(u64::MAX),
            ))),
        }
    }

    /// The block as an address (its first).
    pub(crate) fn ip(self) -> IpAddr {
        self.0
    }
}

/// The client's address for a request from `peer`: `peer` itself unless it is a trusted
/// proxy; then the rightmost `X-Forwarded-For` entry that is not a trusted proxy (each proxy
/// appends the address it got the request from, so entries left of an untrusted one may be
/// forged). An entry that is not an IP address ends the walk at the last trusted hop.
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            return client;
        };
        client = ip.to_canonical();
        if !is_trusted(client) {
            return client;
        }
    }
    client
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .unwrap_or(ClientIp(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}

/// One credential found in a request.
enum Credential<'a> {
    Bearer(&'a str),
}

/// The request's credential, if any: `Authorization: Bearer <token>`.
fn credential(headers: &HeaderMap) -> Result<Option<Credential<'_>>, &'static str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("give one Authorization header, not several");
    }
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header must be printable ASCII")?;
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return Err("use `Authorization: Bearer <token>`");
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("use `Authorization: Bearer <token>`; no other scheme is accepted");
    }
    let token = token.trim();
    if token.is_empty() || token.len() > jwt::MAX_TOKEN_LEN || token.contains(' ') {
        return Err("the bearer token is empty, too long or contains spaces");
    }
    Ok(Some(Credential::Bearer(token)))
}

/// The bearer token of a well-formed `Authorization` header, for endpoints with their own
/// token (`/metrics`).
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    match credential(headers) {
        Ok(Some(Credential::Bearer(token))) => Some(token),
        _ => None,
    }
}

/// Resolves the request's credentials against `config`, the configuration in force.
pub(crate) fn authenticate(
    state: &AppState,
    config: &Arc<Config>,
    headers: &HeaderMap,
) -> Authentication {
    let token = match credential(headers) {
        Ok(None) => return session_caller(state, config, headers),
        Ok(Some(Credential::Bearer(token))) => token,
        Err(why) => return Authentication::Malformed(why),
    };
    let caller = if token.contains('.') {
        state
            .shared
            .jwt
            .verify(token, OffsetDateTime::now_utc())
            .ok()
            .and_then(|claims| login_account(config, &claims))
    } else {
        state.shared.client_tokens.lookup(config, token)
    };
    caller.map_or(Authentication::Rejected, Authentication::Caller)
}

/// Whether Berth is served over HTTPS: it terminates TLS itself (it was started with main.yaml
/// `tls`: a reload that adds or removes the section changes nothing until a restart), or
/// `public_url` is an `https://` address (a TLS-terminating proxy in front).
pub(crate) fn https(state: &AppState, config: &Config) -> bool {
    state
        .shared
        .serving_tls
        .load(std::sync::atomic::Ordering::Relaxed)
        || config
            .main
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
}

/// The caller of the request's session cookie: anonymous without one, rejected when it names
/// no session in force (expired, logged out, unknown) or an account changed since login.
fn session_caller(state: &AppState, config: &Config, headers: &HeaderMap) -> Authentication {
    let name = session::cookie_name(session::SESSION_COOKIE, https(state, config));
    let Some(id) = session::read_cookie(headers, &name) else {
        return Authentication::Anonymous;
    };
    let security = &config.main.security;
    state
        .shared
        .sessions
        .get(id, security.session_idle.get(), security.session_ttl.get())
        .and_then(|s| account(config, &s.username, s.uid, &s.pwd))
        .map_or(Authentication::Rejected, Authentication::Caller)
}

/// The account a valid JWT names, if it still exists, is enabled, is the same account (same
/// id) and has the same password as at login.
fn login_account(config: &Config, claims: &Claims) -> Option<Caller> {
    account(config, &claims.sub, claims.uid, &claims.pwd)
}

/// The account `sub` if it is still the one (id `uid`, password fingerprint `pwd`) that
/// logged in, and enabled.
pub(crate) fn account(
    config: &Config,
    sub: &str,
    uid: Option<berth_types::UserId>,
    pwd: &str,
) -> Option<Caller> {
    let username = Username::new(sub).ok()?;
    let (role, hash) = if username == config.main.admin.username {
        if uid.is_some() {
            return None;
        }
        (Role::Admin, config.main.admin.password_hash.as_ref()?)
    } else {
        let user = config.user(username.as_str()).filter(|u| !u.disabled)?;
        if uid != Some(user.id) {
            return None;
        }
        (user.role, user.password_hash.as_ref()?)
    };
    (password_fingerprint(hash.as_str()) == pwd).then_some(Caller {
        username,
        role,
        via: Via::Login,
    })
}

/// Any authenticated caller. Rejects with 401 (no or invalid credentials) or 400 (unreadable
/// credentials).
#[derive(Debug, Clone)]
pub struct AuthUser(pub Caller);

/// An authenticated admin: the main.yaml admin or a users.yaml user with `role: admin`.
/// Rejects other callers with 403.
#[derive(Debug, Clone)]
pub struct AdminUser(pub Caller);

/// The caller `authentication` names, if it names one allowed here: 401 for no or invalid
/// credentials, 400 for unreadable ones, 403 for a non-admin where `admin` is needed.
pub(crate) fn require(authentication: &Authentication, admin: bool) -> Result<Caller, ApiError> {
    match authentication {
        Authentication::Caller(caller) if admin && !caller.is_admin() => {
            Err(ApiError::forbidden("this endpoint is for admins"))
        }
        Authentication::Caller(caller) => Ok(caller.clone()),
        Authentication::Anonymous => Err(ApiError::unauthenticated(
            "this endpoint needs `Authorization: Bearer <token>`: a client token, or a token \
             from POST /api/v1/auth/login",
        )),
        Authentication::Rejected => Err(ApiError::unauthenticated(
            "the token is invalid, expired or revoked, or its account is disabled",
        )),
        Authentication::Malformed(why) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_authorization",
            *why,
        )),
    }
}

fn resolved(parts: &Parts, state: &AppState) -> Authentication {
    match parts.extensions.get::<Authentication>() {
        Some(resolved) => resolved.clone(),
        None => authenticate(state, &state.config.current(), &parts.headers),
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        require(&resolved(parts, state), false).map(Self)
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        require(&resolved(parts, state), true).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn an_ipv6_client_is_its_64_and_an_ipv4_client_its_address() {
        let block = |t: &str| AddressBlock::of(t.parse().unwrap()).ip().to_string();
        assert_eq!(block("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(block("2001:db8:1:2::1"), block("2001:db8:1:2:ffff::9"));
        assert_ne!(block("2001:db8:1:2::1"), block("2001:db8:1:3::1"));
        assert_eq!(block("::1"), "::");
        assert_eq!(block("192.0.2.7"), "192.0.2.7");
        assert_ne!(block("192.0.2.7"), block("192.0.2.8"));
        // An IPv4 address written as IPv6 is that IPv4 address.
        assert_eq!(block("::ffff:192.0.2.7"), "192.0.2.7");
    }

    #[test]
    fn the_client_address_is_believed_from_trusted_proxies_only() {
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        let trusted: Vec<IpNet> = vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        let forwarded = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append("x-forwarded-for", v.parse().unwrap());
            }
            headers
        };
        let one = forwarded(&["203.0.113.7"]);
        // Not from a proxy: the header is whatever the client made up.
        assert_eq!(
            client_ip(ip("198.51.100.1"), &one, &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), &one, &[]),
            ip("127.0.0.1"),
            "nothing trusted"
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), &one, &trusted),
            ip("203.0.113.7")
        );
        // A forged entry left of the real one is not believed; proxies in a chain are skipped.
        let chain = forwarded(&["6.6.6.6, 203.0.113.7", "10.1.2.3"]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &chain, &trusted),
            ip("203.0.113.7")
        );
        // Garbage stops the walk at the last trusted hop; no header: the proxy itself.
        let garbage = forwarded(&["203.0.113.7, not-an-ip, 10.0.0.5"]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &garbage, &trusted),
            ip("10.0.0.5")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), &HeaderMap::new(), &trusted),
            ip("127.0.0.1")
        );
        // Only proxies: the leftmost.
        let proxies = forwarded(&["10.0.0.9, 10.0.0.5"]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &proxies, &trusted),
            ip("10.0.0.9")
        );
        // IPv4-mapped peers and entries are IPv4.
        let mapped = forwarded(&["::ffff:203.0.113.7"]);
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &mapped, &trusted),
            ip("203.0.113.7")
        );
    }

    fn with(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn bearer_credentials_are_read_strictly() {
        assert!(matches!(credential(&with(&[])), Ok(None)));
        assert!(matches!(
            credential(&with(&["Bearer abc"])),
            Ok(Some(Credential::Bearer("abc")))
        ));
        assert!(matches!(
            credential(&with(&["bearer  abc "])),
            Ok(Some(Credential::Bearer("abc")))
        ));
        for bad in [
            "Basic YWxhZGRpbjpvcGVu",
            "Bearer",
            "Bearer ",
            "abc",
            "Bearer a b",
        ] {
            assert!(credential(&with(&[bad])).is_err(), "{bad}");
        }
        assert!(credential(&with(&["Bearer a", "Bearer b"])).is_err());
        let long = format!("Bearer {}", "a".repeat(5000));
        assert!(credential(&with(&[&long])).is_err());
    }
}
