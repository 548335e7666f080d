//! The `Origin` check of the WebSocket endpoints: the strict policy of [`crate::origin`]. Browsers
//! attach cookies to a socket opened by any site, so a socket authenticated by cookie must come
//! from a page of this server; a request without `Origin` is a program (the CLI), which must
//! then bring a Bearer token.

pub(crate) use crate::origin::websocket as check;
