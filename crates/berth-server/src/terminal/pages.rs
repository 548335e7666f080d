//! The pages the browser terminal's scripts fill: `/w/{id}`, `/m/{id}`, `/g/{id}` and
//! `/recordings/{id}` (element contract in `docs/terminal-protocol.md`). No inline script: the
//! CSP forbids it. Everything interpolated is HTML-escaped. Without a session the page
//! redirects to the login page, which brings the user back.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use berth_core::RecordingId;
use berth_core::bridge::{GridId, Layout};
use berth_types::{MachineId, TerminalTarget, WorkspaceId};

use crate::auth::{Authentication, Caller, authenticate};
use crate::extract::PagePath;
use crate::state::AppState;

/// `s` safe in HTML text and in quoted attributes.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` percent-encoded for a query value.
/// The caller, or the redirect to the login page that brings them back to `uri`.
fn signed_in(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<Caller, Box<Response>> {
    match authenticate(state, &state.config.current(), headers) {
        Authentication::Caller(caller) => Ok(caller),
        _ => Err(Box::new(crate::ui::to_login(&axum::http::Method::GET, uri))),
    }
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// A page around `body`, with the terminal stylesheet and `script` at the end.
fn page(title: &str, body: &str, script: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"utf-8\">\n  \
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n  \
         <title>{} — Berth</title>\n  <link rel=\"stylesheet\" href=\"/assets/terminal.css\">\n\
         </head>\n<body class=\"berth-page\">\n{body}  <script src=\"/assets/{script}\"></script>\n\
         </body>\n</html>\n",
        escape(title)
    )
}

fn not_found(what: &str) -> Response {
    let body = format!(
        "  <header class=\"berth-bar\"><div>{}</div></header>\n",
        escape(&format!("No such {what}."))
    );
    html(
        StatusCode::NOT_FOUND,
        format!(
            "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
             <title>Not found — Berth</title>\
             <link rel=\"stylesheet\" href=\"/assets/terminal.css\"></head>\n\
             <body class=\"berth-page\">\n{body}</body>\n</html>\n"
        ),
    )
}

pub(crate) async fn workspace(
    State(state): State<AppState>,
    PagePath(id): PagePath<WorkspaceId>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let caller = match signed_in(&state, &headers, &uri) {
        Ok(caller) => caller,
        Err(redirect) => return *redirect,
    };
    let Ok(ws) = state.workspaces.get(id).await else {
        return not_found("workspace");
    };
    match state
        .workspaces
        .role_of(id, &caller.username, caller.role)
        .await
    {
        Ok(Some(_)) => {}
        _ => return not_found("workspace"),
    }
    let title = format!("{}@{}", ws.owner, ws.template);
    let body = format!(
        "  <header class=\"berth-bar\">\n    <div id=\"berth-status\"></div>\n    \
         <ul id=\"berth-members\" aria-label=\"Connected\"></ul>\n  </header>\n  \
         <div id=\"berth-terminal\"\n       data-ws-url=\"/api/v1/workspaces/{id}/terminal\"\n       \
         data-title=\"{}\"></div>\n",
        escape(&title)
    );
    html(StatusCode::OK, page(&title, &body, "terminal.js"))
}

/// `/m/{id}`: a machine's terminal page, for the users who may reach it (and admins).
pub(crate) async fn machine(
    State(state): State<AppState>,
    PagePath(id): PagePath<MachineId>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let caller = match signed_in(&state, &headers, &uri) {
        Ok(caller) => caller,
        Err(redirect) => return *redirect,
    };
    let who = berth_terminal::Caller {
        username: caller.username.clone(),
        role: caller.role,
    };
    let target = TerminalTarget::Machine(id.clone());
    let Ok(Some(grant)) = state.terminals.grant(&target, &who).await else {
        return not_found("machine");
    };
    let body = format!(
        "  <header class=\"berth-bar\">\n    <div id=\"berth-status\"></div>\n    \
         <ul id=\"berth-members\" aria-label=\"Connected\"></ul>\n  </header>\n  \
         <div id=\"berth-terminal\"\n       data-ws-url=\"/api/v1/machines/{id}/terminal\"\n       \
         data-title=\"{}\"></div>\n",
        escape(&grant.title)
    );
    html(StatusCode::OK, page(&grant.title, &body, "terminal.js"))
}

fn layout_name(layout: Layout) -> &'static str {
    match layout {
        Layout::Single => "single",
        Layout::Grid2x2 => "grid2x2",
        Layout::Grid1x3 => "grid1x3",
        Layout::Grid2x1 => "grid2x1",
    }
}

pub(crate) async fn grid(
    State(state): State<AppState>,
    PagePath(id): PagePath<GridId>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let caller = match signed_in(&state, &headers, &uri) {
        Ok(caller) => caller,
        Err(redirect) => return *redirect,
    };
    let Ok(grid) = super::grids::owned(&state, &caller, id) else {
        return not_found("grid");
    };
    let mut panes = Vec::with_capacity(grid.panes.len());
    let who = berth_terminal::Caller {
        username: caller.username.clone(),
        role: caller.role,
    };
    for (pane, target) in grid.panes.iter().enumerate() {
        let title = match state.terminals.grant(target, &who).await {
            Ok(Some(grant)) => grant.title,
            Ok(None) | Err(_) => target.id_string(),
        };
        panes.push(serde_json::json!({"pane": pane, "title": title}));
    }
    let panes = serde_json::Value::Array(panes).to_string();
    let body = format!(
        "  <header class=\"berth-bar\"><div id=\"berth-status\"></div>\n    \
         <label class=\"berth-broadcast\"><input type=\"checkbox\" id=\"berth-broadcast\"> \
         Type into all panes</label></header>\n  \
         <div id=\"berth-grid\"\n       data-ws-url=\"/api/v1/grids/{id}/ws\"\n       \
         data-layout=\"{}\"\n       data-panes=\"{}\"></div>\n",
        layout_name(grid.layout),
        escape(&panes)
    );
    html(StatusCode::OK, page("Grid", &body, "grid.js"))
}

pub(crate) async fn recording(
    State(state): State<AppState>,
    PagePath(id): PagePath<RecordingId>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let caller = match signed_in(&state, &headers, &uri) {
        Ok(caller) => caller,
        Err(redirect) => return *redirect,
    };
    let Ok(file) = super::recordings::watchable(&state, &caller, id).await else {
        return not_found("recording");
    };
    let r = &file.recording;
    let title = format!("Recording of {} in {}'s workspace", r.username, r.owner);
    let body = format!(
        "  <div id=\"berth-replay\" data-cast-url=\"/api/v1/recordings/{id}/cast\"></div>\n"
    );
    html(StatusCode::OK, page(&title, &body, "replay.js"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_escaped() {
        let hostile = "<script>alert('x')</script>\"&";
        let escaped = escape(hostile);
        assert_eq!(
            escaped,
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"
        );
        let page = page(hostile, "", "terminal.js");
        assert!(!page.contains("<script>alert"), "{page}");
    }
}
