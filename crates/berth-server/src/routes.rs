//! The route table: every endpoint once, with what the router and the OpenAPI document need.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{self, MethodRouter};
use berth_config::Template;
use berth_types::api::{
    AddMember, ClientConfig, ConnectAll, ErrorBody, FleetSyncStatus, GridView, LoginRequest,
    LoginResponse, MachineList, MachineQuery, MachineRunView, MachineView, MemberList, MemberView,
    Monitor, NewGrid, NewSshKey, NewTokenRequest, OperationDetailQuery, OperationList,
    OperationQuery, OperationView, PingRequest, PingResponse, RecordingList, RecordingView,
    SecretsKeyView, SetPanes, SshKeyList, SshKeyView, StartOperation, StartWorkspace, SyncView,
    TableQuery, TableResult, TemplateList, TokenResponse, TrustHostKey, UserBody, UserList,
    UserView, VerifyAll, WebhookAccepted, WorkspaceList, WorkspaceQuery, WorkspaceView,
};
use berth_types::api::{
    ClusterList, ClusterQuery, ClusterView, ExtendCluster, InviteCreated, InviteList, NewCluster,
    NewInvite, RegisterRequest, Registered,
};
use schemars::{JsonSchema, Schema, SchemaGenerator};

use crate::extract::MAX_JSON_BODY;
use crate::guard::{Access, Limit, RouteInfo, guard, method_not_allowed, not_found};
use crate::state::AppState;
use crate::terminal::{asset, grids, members, pages, recordings};
use crate::{
    auth, client_config, clusters, events, fleet, keys, metrics, monitor, operations, pings,
    registration, tables, templates, terminal, ui, users, workspaces,
};

pub(crate) type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// What a route answers on success.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Success {
    /// JSON of a type.
    Json(u16, SchemaFn),
    /// No body.
    Empty(u16),
    /// A text document of a content type.
    Text(&'static str),
}

/// One endpoint.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) summary: &'static str,
    pub(crate) tag: &'static str,
    pub(crate) access: Access,
    pub(crate) limit: Limit,
    pub(crate) body: Option<SchemaFn>,
    /// A type whose fields are the query parameters.
    pub(crate) query: Option<SchemaFn>,
    pub(crate) success: Success,
    /// A row of the admin UI (a page, a form post, its static files): not in the OpenAPI
    /// document, refusals as HTML pages, the configuration re-read when a file changed.
    pub(crate) page: bool,
    /// The largest body accepted, when not [`MAX_JSON_BODY`].
    max_body: Option<usize>,
    handler: MethodRouter<AppState>,
}

macro_rules! verb {
    ($name:ident, $method:literal) => {
        fn $name<H, T>(path: &'static str, summary: &'static str, handler: H) -> Route
        where
            H: Handler<T, AppState>,
            T: 'static,
        {
            Route::new($method, path, summary, routing::$name(handler))
        }
    };
}

verb!(get, "GET");
verb!(post, "POST");
verb!(put, "PUT");
verb!(delete, "DELETE");

impl Route {
    fn new(
        method: &'static str,
        path: &'static str,
        summary: &'static str,
        handler: MethodRouter<AppState>,
    ) -> Self {
        let tag = path
            .trim_start_matches("/api/v1/")
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        Self {
            method,
            path,
            summary,
            tag,
            access: Access::User,
            limit: Limit::Api,
            body: None,
            query: None,
            success: Success::Empty(204),
            page: false,
            max_body: None,
            handler,
        }
    }

    fn public(mut self) -> Self {
        self.access = Access::Public;
        self
    }

    /// Anyone, or only holders of the metrics token once main.yaml sets one.
    fn metrics_token(mut self) -> Self {
        self.access = Access::Metrics;
        self
    }

    fn admin(mut self) -> Self {
        self.access = Access::Admin;
        self
    }

    /// Accepts bodies up to `bytes` instead of [`MAX_JSON_BODY`].
    fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = Some(bytes);
        self
    }

    fn limit(mut self, limit: Limit) -> Self {
        self.limit = limit;
        self
    }

    fn body<T: JsonSchema>(mut self) -> Self {
        self.body = Some(schema::<T>);
        self
    }

    fn query<T: JsonSchema>(mut self) -> Self {
        self.query = Some(schema::<T>);
        self
    }

    fn returns<T: JsonSchema>(mut self, status: u16) -> Self {
        self.success = Success::Json(status, schema::<T>);
        self
    }

    fn text(mut self, content_type: &'static str) -> Self {
        self.success = Success::Text(content_type);
        self
    }

    /// A row of the admin UI that anyone may load (the login page, static files).
    fn ui(mut self) -> Self {
        self.access = Access::Public;
        self.page = true;
        self.success = Success::Text("text/html");
        self
    }

    /// A page or form of a logged-in browser.
    fn page(mut self) -> Self {
        self = self.ui();
        self.access = Access::Page;
        self
    }

    /// A page or form for admins.
    fn admin_page(mut self) -> Self {
        self = self.ui();
        self.access = Access::AdminPage;
        self
    }

    /// Whether refusals are HTML: UI rows and the terminal pages.
    pub(crate) fn html(&self) -> bool {
        self.page || matches!(self.success, Success::Text("text/html"))
    }

    /// A WebSocket endpoint: 101 Switching Protocols.
    fn upgrade(mut self) -> Self {
        self.success = Success::Empty(101);
        self
    }
}

/// The admin UI: pages (GET) and their form posts (POST, each taking a `ui::CsrfForm`).
/// Pages spend the caller's API budget; the login form spends the address's login budget.
pub(crate) fn ui_table() -> Vec<Route> {
    use crate::ui::{
        audit, clusters, dashboard, fleet, home, login, machine, operation, operations as ops,
        recordings as recs, register, run, templates as tpls, users,
    };
    vec![
        get("/", "Your workspaces, templates and recordings", home::page).page(),
        post("/workspaces", "Start a workspace", home::start).page(),
        post("/workspaces/{id}/stop", "Stop a workspace", home::stop).page(),
        post(
            "/workspaces/{id}/delete",
            "Delete a workspace",
            home::delete,
        )
        .page(),
        post("/keys", "Add one of my SSH keys", home::add_key).page(),
        post(
            "/keys/{fingerprint}/delete",
            "Remove one of my SSH keys",
            home::remove_key,
        )
        .page(),
        get("/clusters", "My clusters, live", clusters::page).page(),
        post("/clusters", "Ask for a cluster", clusters::create).page(),
        post(
            "/clusters/{id}/extend",
            "Add time to a cluster",
            clusters::extend,
        )
        .page(),
        post(
            "/clusters/{id}/delete",
            "Delete a cluster",
            clusters::delete,
        )
        .page(),
        get("/register", "The sign-up page", register::form).ui(),
        post("/register", "Sign up", register::submit)
            .ui()
            .limit(Limit::Login),
        get("/login", "The login page", login::form).ui(),
        post("/login", "Log in", login::submit)
            .ui()
            .limit(Limit::Login),
        post("/logout", "Log out", login::logout).page(),
        get("/admin", "To the dashboard", ui::admin_home).admin_page(),
        get("/admin/", "To the dashboard", ui::admin_home).admin_page(),
        get("/admin/dashboard", "The live dashboard", dashboard::page).admin_page(),
        get(
            "/admin/dashboard/events",
            "The dashboard's live part (SSE)",
            dashboard::events,
        )
        .admin_page(),
        post(
            "/admin/workspaces/{id}/stop",
            "Stop anyone's workspace",
            dashboard::stop,
        )
        .admin_page(),
        get(
            "/admin/fleet",
            "The fleet: syncs and machines (filters and sort of GET /api/v1/machines)",
            fleet::page,
        )
        .admin_page(),
        get(
            "/admin/fleet/events",
            "The fleet page's live part, with its filters (SSE)",
            fleet::events,
        )
        .admin_page(),
        post("/admin/fleet/sync", "Sync the inventory now", fleet::sync).admin_page(),
        post(
            "/admin/fleet/verify",
            "Check every machine's enrollment now",
            fleet::verify_all,
        )
        .admin_page(),
        get(
            "/admin/fleet/machines/{id}",
            "A machine: SSH settings, enrollment, health",
            machine::page,
        )
        .admin_page(),
        get(
            "/admin/fleet/machines/{id}/events",
            "A machine page's live part (SSE)",
            machine::events,
        )
        .admin_page(),
        post(
            "/admin/fleet/machines/{id}/verify",
            "Check a machine's enrollment now",
            machine::verify,
        )
        .admin_page(),
        post(
            "/admin/fleet/machines/{id}/trust",
            "Trust the host key a machine presents (its fingerprint)",
            machine::trust,
        )
        .admin_page(),
        get(
            "/admin/operations",
            "The operations, newest first (filters of GET /api/v1/operations)",
            ops::page,
        )
        .admin_page(),
        post(
            "/admin/operations",
            "Run a script (the run form)",
            run::start,
        )
        .admin_page(),
        get("/admin/operations/new", "The run form", run::new).admin_page(),
        get(
            "/admin/operations/targets",
            "How many machines, and which, the run form's targets select",
            run::targets,
        )
        .admin_page(),
        get(
            "/admin/operations/{id}",
            "An operation: its machines and their output",
            operation::page,
        )
        .admin_page(),
        get(
            "/admin/operations/{id}/live",
            "An operation page's part, rendered again",
            operation::live,
        )
        .admin_page(),
        post(
            "/admin/operations/{id}/stop",
            "Stop an operation",
            operation::stop,
        )
        .admin_page(),
        post(
            "/admin/operations/{id}/rerun",
            "Run an operation's script again where it did not succeed",
            operation::rerun,
        )
        .admin_page(),
        get("/admin/users", "Users", users::list).admin_page(),
        post("/admin/users", "Add a user", users::create).admin_page(),
        get("/admin/users/new", "The new user form", users::new).admin_page(),
        get("/admin/users/{name}", "A user's form", users::edit).admin_page(),
        post("/admin/users/{name}", "Change a user", users::update).admin_page(),
        post("/admin/users/{name}/delete", "Remove a user", users::delete).admin_page(),
        post(
            "/admin/users/{name}/token",
            "Reset a user's client token",
            users::reset_token,
        )
        .admin_page(),
        get("/admin/templates", "Templates", tpls::list).admin_page(),
        post("/admin/templates", "Add a template", tpls::create).admin_page(),
        get("/admin/templates/new", "The new template form", tpls::new).admin_page(),
        get("/admin/templates/{name}", "A template's form", tpls::edit).admin_page(),
        post("/admin/templates/{name}", "Change a template", tpls::update).admin_page(),
        post(
            "/admin/templates/{name}/delete",
            "Remove a template",
            tpls::delete,
        )
        .admin_page(),
        get("/admin/audit", "The audit log", audit::page).admin_page(),
        get("/admin/recordings", "Every recording", recs::page).admin_page(),
        post(
            "/admin/recordings/{id}/delete",
            "Delete a recording",
            recs::delete,
        )
        .admin_page(),
        get(
            "/static/{file}",
            "The UI's stylesheet and scripts",
            ui::asset,
        )
        .ui(),
    ]
}

/// Every endpoint of the API (and the terminal pages), as the OpenAPI document lists them.
pub(crate) fn table() -> Vec<Route> {
    vec![
        get(
            "/healthz",
            "Liveness: 200 while the process serves requests",
            healthz,
        )
        .public()
        .text("text/plain"),
        get("/metrics", "Prometheus metrics", metrics::metrics)
            .metrics_token()
            .text("text/plain; version=0.0.4"),
        get("/api/v1/openapi.json", "This document", openapi)
            .public()
            .text("application/json"),
        post(
            "/api/v1/auth/login",
            "Log in with a password for a 24 h token",
            auth::login::login,
        )
        .public()
        .limit(Limit::Login)
        .body::<LoginRequest>()
        .returns::<LoginResponse>(200),
        post(
            "/api/v1/auth/tokens",
            "Mint a client token for yourself (shown once)",
            auth::tokens::create,
        )
        .body::<NewTokenRequest>()
        .returns::<TokenResponse>(201),
        delete(
            "/api/v1/auth/tokens/{client_id}",
            "Revoke one of your client tokens",
            auth::tokens::revoke,
        ),
        get(
            "/api/v1/config",
            "Your merged configuration and allowed templates",
            client_config::config,
        )
        .returns::<ClientConfig<Template>>(200),
        post("/api/v1/ping", "Say that a client is alive", pings::ping)
            .limit(Limit::Ping)
            .body::<PingRequest>()
            .returns::<PingResponse>(200),
        get(
            "/api/v1/monitor",
            "Host, live workspaces and clients",
            monitor::monitor,
        )
        .admin()
        .returns::<Monitor>(200),
        post(
            "/api/v1/workspaces",
            "Start a workspace",
            workspaces::create,
        )
        .body::<StartWorkspace>()
        .returns::<WorkspaceView>(201),
        get(
            "/api/v1/workspaces",
            "Your workspaces (admins: everyone's, filtered)",
            workspaces::list,
        )
        .query::<WorkspaceQuery>()
        .returns::<WorkspaceList>(200),
        get("/api/v1/workspaces/{id}", "One workspace", workspaces::get)
            .returns::<WorkspaceView>(200),
        delete(
            "/api/v1/workspaces/{id}",
            "Stop and delete a workspace",
            workspaces::delete,
        ),
        post(
            "/api/v1/workspaces/{id}/stop",
            "Stop a workspace",
            workspaces::stop,
        )
        .returns::<WorkspaceView>(200),
        post(
            "/api/v1/workspaces/{id}/start",
            "Start a stopped workspace again",
            workspaces::start,
        )
        .returns::<WorkspaceView>(200),
        post(
            "/api/v1/clusters",
            "Ask for an ephemeral Kubernetes cluster (201 at once, in provisioning)",
            clusters::create,
        )
        .body::<NewCluster>()
        .returns::<ClusterView>(201),
        get(
            "/api/v1/clusters",
            "Your clusters that are not deleted (admins: everyone's, filtered)",
            clusters::list,
        )
        .query::<ClusterQuery>()
        .returns::<ClusterList>(200),
        get("/api/v1/clusters/{id}", "One cluster", clusters::get).returns::<ClusterView>(200),
        delete(
            "/api/v1/clusters/{id}",
            "Delete a cluster (204 once it is deleting)",
            clusters::delete,
        ),
        post(
            "/api/v1/clusters/{id}/extend",
            "Add time to a cluster's TTL, up to clusters.max_ttl from its creation",
            clusters::extend,
        )
        .body::<ExtendCluster>()
        .returns::<ClusterView>(200),
        get(
            "/api/v1/clusters/{id}/kubeconfig",
            "A running cluster's kubeconfig (owner or admin; audited)",
            clusters::kubeconfig,
        )
        .text("application/yaml"),
        get(
            "/api/v1/events",
            "Your workspace and cluster changes as they happen (WebSocket upgrade; cookie or \
             Bearer; Origin checked): a snapshot, then each change",
            events::events,
        )
        .public()
        .upgrade(),
        post(
            "/api/v1/auth/register",
            "Sign up (main.yaml registration: 403 registration_disabled while it is off)",
            registration::register,
        )
        .public()
        .limit(Limit::Login)
        .body::<RegisterRequest>()
        .returns::<Registered>(201),
        post(
            "/api/v1/invites",
            "Make a one-time sign-up code (shown once)",
            registration::create_invite,
        )
        .admin()
        .body::<NewInvite>()
        .returns::<InviteCreated>(201),
        get(
            "/api/v1/invites",
            "Invite codes, newest first (never the codes)",
            registration::list_invites,
        )
        .admin()
        .returns::<InviteList>(200),
        delete(
            "/api/v1/invites/{id}",
            "Withdraw an invite code",
            registration::delete_invite,
        )
        .admin(),
        get("/api/v1/users", "Users of users.yaml", users::list)
            .admin()
            .returns::<UserList>(200),
        post("/api/v1/users", "Add a user", users::create)
            .admin()
            .body::<UserBody>()
            .returns::<UserView>(201),
        get("/api/v1/users/{name}", "One user", users::get)
            .admin()
            .returns::<UserView>(200),
        put(
            "/api/v1/users/{name}",
            "Replace (or rename) a user",
            users::update,
        )
        .admin()
        .body::<UserBody>()
        .returns::<UserView>(200),
        delete("/api/v1/users/{name}", "Remove a user", users::delete).admin(),
        post(
            "/api/v1/users/{name}/token",
            "Reset a user's client tokens to one new token",
            auth::tokens::reset,
        )
        .admin()
        .body::<NewTokenRequest>()
        .returns::<TokenResponse>(201),
        delete(
            "/api/v1/users/{name}/tokens/{client_id}",
            "Revoke one client token of a user",
            auth::tokens::revoke_for_user,
        )
        .admin(),
        get(
            "/api/v1/users/{name}/keys",
            "A user's SSH public keys (the user or an admin)",
            keys::list,
        )
        .returns::<SshKeyList>(200),
        post(
            "/api/v1/users/{name}/keys",
            "Add an SSH public key (the user or an admin)",
            keys::add,
        )
        .body::<NewSshKey>()
        .returns::<SshKeyView>(201),
        delete(
            "/api/v1/users/{name}/keys/{fingerprint}",
            "Remove an SSH public key by fingerprint (the user or an admin)",
            keys::remove,
        ),
        get(
            "/api/v1/templates",
            "Templates of containers.yaml",
            templates::list,
        )
        .admin()
        .returns::<TemplateList<Template>>(200),
        post("/api/v1/templates", "Add a template", templates::create)
            .admin()
            .body::<Template>()
            .returns::<Template>(201),
        get("/api/v1/templates/{name}", "One template", templates::get)
            .admin()
            .returns::<Template>(200),
        put(
            "/api/v1/templates/{name}",
            "Replace (or rename) a template",
            templates::update,
        )
        .admin()
        .body::<Template>()
        .returns::<Template>(200),
        delete(
            "/api/v1/templates/{name}",
            "Remove a template no workspace or user needs",
            templates::delete,
        )
        .admin(),
        get(
            "/api/v1/machines",
            "Machines you may see, with enrollment and health (filters, sort, cursor)",
            fleet::list,
        )
        .query::<MachineQuery>()
        .returns::<MachineList>(200),
        post(
            "/api/v1/machines/verify",
            "Check every machine's enrollment now",
            fleet::verify_all,
        )
        .admin()
        .returns::<VerifyAll>(200),
        get(
            "/api/v1/machines/{id}",
            "A machine: SSH settings (no secrets), enrollment, health and its history",
            fleet::get,
        )
        .returns::<MachineView>(200),
        post(
            "/api/v1/machines/{id}/verify",
            "Check a machine's enrollment now",
            fleet::verify,
        )
        .admin()
        .returns::<MachineView>(200),
        post(
            "/api/v1/machines/{id}/trust",
            "Trust the host key a machine presents, by its fingerprint",
            fleet::trust,
        )
        .admin()
        .body::<TrustHostKey>()
        .returns::<MachineView>(200),
        get(
            "/api/v1/fleet/sync",
            "The inventory commit in force and the sync history",
            fleet::sync_status,
        )
        .admin()
        .returns::<FleetSyncStatus>(200),
        post(
            "/api/v1/fleet/sync",
            "Sync the inventory repository now",
            fleet::sync_now,
        )
        .admin()
        .returns::<SyncView>(200),
        get(
            "/api/v1/fleet/secrets-key",
            "The age recipient secrets.ini is encrypted to",
            fleet::secrets_key,
        )
        .admin()
        .returns::<SecretsKeyView>(200),
        post(
            "/api/v1/fleet/webhook",
            "A push webhook (GitHub, Gitea/Forgejo or GitLab signature): sync now",
            fleet::webhook,
        )
        .public()
        .max_body(crate::fleet::MAX_WEBHOOK_BODY)
        .returns::<WebhookAccepted>(202),
        post(
            "/api/v1/operations",
            "Run an inventory script on machines (by id or selector)",
            operations::start,
        )
        .body::<StartOperation>()
        .returns::<OperationView>(201),
        get(
            "/api/v1/operations",
            "Operations you may see, newest first (filters, cursor)",
            operations::list,
        )
        .query::<OperationQuery>()
        .returns::<OperationList>(200),
        get(
            "/api/v1/operations/{id}",
            "An operation with every machine's state, output and the grouped output",
            operations::get,
        )
        .query::<OperationDetailQuery>()
        .returns::<OperationView>(200),
        get(
            "/api/v1/operations/{id}/machines/{machine}",
            "One machine's part of an operation, with its kept output",
            operations::machine,
        )
        .returns::<MachineRunView>(200),
        get(
            "/api/v1/operations/{id}/machines/{machine}/{stream}",
            "One stream (stdout or stderr) of a machine's kept output, as its bytes",
            operations::machine_stream,
        )
        .text("application/octet-stream"),
        post(
            "/api/v1/operations/{id}/stop",
            "Stop an operation: queued machines cancelled, running scripts ended",
            operations::stop,
        )
        .returns::<OperationView>(200),
        post(
            "/api/v1/operations/{id}/rerun",
            "Run an operation's script again on its machines that did not succeed",
            operations::rerun,
        )
        .returns::<OperationView>(201),
        get(
            "/api/v1/operations/{id}/events",
            "An operation's events (SSE): operation, machine, output; Last-Event-ID resumes",
            operations::events,
        )
        .text("text/event-stream"),
        post(
            "/api/v1/tables/query",
            "One page of a table of runtime state",
            tables::query,
        )
        .body::<TableQuery>()
        .returns::<TableResult>(200),
        // The browser terminal (docs/terminal-protocol.md). The sockets are public in the
        // table: they check the Origin, upgrade, then authenticate and refuse in-band (4401).
        get(
            "/api/v1/workspaces/{id}/terminal",
            "The workspace's terminal (WebSocket upgrade; cookie or Bearer; Origin checked)",
            terminal::terminal_socket,
        )
        .public()
        .query::<terminal::TerminalQuery>()
        .upgrade(),
        get(
            "/api/v1/machines/{id}/terminal",
            "A shell on the machine as its inventory user, over SSH (WebSocket upgrade, the \
             workspace terminal's protocol; enrolled machines your selectors match; Origin \
             checked before any connection to the machine)",
            terminal::machine_terminal_socket,
        )
        .public()
        .query::<terminal::TerminalQuery>()
        .upgrade(),
        get(
            "/api/v1/workspaces/{id}/members",
            "Members of a shared workspace and who is connected now",
            members::list,
        )
        .returns::<MemberList>(200),
        post(
            "/api/v1/workspaces/{id}/members",
            "Add a member to a shared workspace (owner or admin)",
            members::add,
        )
        .body::<AddMember>()
        .returns::<MemberView>(201),
        delete(
            "/api/v1/workspaces/{id}/members/{name}",
            "Remove a member (owner or admin)",
            members::remove,
        ),
        get(
            "/api/v1/workspaces/{id}/recordings",
            "Recordings of a workspace's terminal sessions, newest first (owner or admin)",
            recordings::list,
        )
        .returns::<RecordingList>(200),
        get(
            "/api/v1/machines/{id}/recordings",
            "Recordings of terminal sessions on a machine, newest first (yours; admins: all)",
            recordings::list_machine,
        )
        .returns::<RecordingList>(200),
        get(
            "/api/v1/recordings/{id}",
            "A recording's metadata (owner or admin)",
            recordings::get,
        )
        .returns::<RecordingView>(200),
        delete(
            "/api/v1/recordings/{id}",
            "Delete a finished recording (admin)",
            recordings::delete,
        )
        .admin(),
        get(
            "/api/v1/recordings/{id}/cast",
            "A recording as an asciicast v2 file (owner or admin)",
            recordings::cast,
        )
        .text("application/x-asciicast"),
        post("/api/v1/grids", "Make a terminal grid", grids::create)
            .body::<NewGrid>()
            .returns::<GridView>(201),
        put(
            "/api/v1/grids/{id}/panes",
            "Set a grid's layout and panes",
            grids::set_panes,
        )
        .body::<SetPanes>()
        .returns::<GridView>(200),
        post(
            "/api/v1/grids/{id}/connect-all",
            "Open every pane's session at once (held 60 s for the grid's socket); each pane's \
             state and why one did not open",
            grids::connect_all,
        )
        .returns::<ConnectAll>(200),
        get(
            "/api/v1/grids/{id}/ws",
            "A grid's panes over one socket (WebSocket upgrade; Origin checked)",
            terminal::grid_socket,
        )
        .public()
        .upgrade(),
        get("/w/{id}", "A workspace's terminal page", pages::workspace)
            .public()
            .text("text/html"),
        get("/m/{id}", "A machine's terminal page", pages::machine)
            .public()
            .text("text/html"),
        get("/g/{id}", "A grid's page", pages::grid)
            .public()
            .text("text/html"),
        get(
            "/recordings/{id}",
            "A recording's replay page",
            pages::recording,
        )
        .public()
        .text("text/html"),
        get(
            "/assets/terminal.js",
            "The terminal page's script",
            asset::terminal_js,
        )
        .public()
        .text("text/javascript"),
        get("/assets/grid.js", "The grid page's script", asset::grid_js)
            .public()
            .text("text/javascript"),
        get(
            "/assets/replay.js",
            "The replay page's script",
            asset::replay_js,
        )
        .public()
        .text("text/javascript"),
        get(
            "/assets/terminal.css",
            "The terminal pages' stylesheet",
            asset::terminal_css,
        )
        .public()
        .text("text/css"),
    ]
}

/// The error body, for the document's shared error response.
pub(crate) fn error_schema(generator: &mut SchemaGenerator) -> Schema {
    schema::<ErrorBody>(generator)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.shared.openapi.get().cloned().unwrap_or_default(),
    )
}

/// The router over the table and the UI's rows, every route behind the guard, with 404 and
/// 405 answers and the body size limits.
pub(crate) fn router(state: AppState) -> Router {
    let table = table();
    let _ = state
        .shared
        .openapi
        .set(bytes::Bytes::from(crate::openapi::document(&table)));
    let watch = Arc::new(ui::ConfigWatch::default());
    let mut router = Router::new();
    for route in table.into_iter().chain(ui_table()) {
        let info = Arc::new(RouteInfo {
            method: route.method,
            path: route.path,
            access: route.access,
            limit: route.limit,
            html: route.html(),
        });
        let guarded = route
            .handler
            .route_layer(axum::middleware::from_fn_with_state(
                (state.clone(), info),
                guard,
            ));
        // A page reads a hand-edited file before its caller is authenticated against it.
        let handler = if route.page {
            guarded
                .route_layer(axum::middleware::from_fn_with_state(
                    (state.clone(), watch.clone()),
                    ui::fresh_config,
                ))
                .layer(DefaultBodyLimit::max(ui::MAX_FORM_BODY))
        } else {
            guarded
        };
        let handler = match route.max_body {
            Some(bytes) => handler.layer(DefaultBodyLimit::max(bytes)),
            None => handler,
        };
        router = router.route(route.path, handler);
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .with_state(state)
}

/// One endpoint, as listed by [`endpoints`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: &'static str,
    /// The path pattern, `{name}` for parameters.
    pub path: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// A WebSocket: it answers an upgrade request with 101 Switching Protocols.
    pub websocket: bool,
}

impl From<Route> for Endpoint {
    fn from(route: Route) -> Self {
        Self {
            method: route.method,
            path: route.path,
            summary: route.summary,
            websocket: matches!(route.success, Success::Empty(101)),
        }
    }
}

/// Every endpoint the server routes but the admin UI's, from the same table that builds the
/// router and the OpenAPI document.
#[must_use]
pub fn endpoints() -> Vec<Endpoint> {
    table().into_iter().map(Endpoint::from).collect()
}

/// The admin UI's pages and form posts, rows of the same guarded table, not in the OpenAPI
/// document (docs/api.md describes them in prose).
#[must_use]
pub fn page_routes() -> Vec<Endpoint> {
    ui_table().into_iter().map(Endpoint::from).collect()
}
