//! A typed async client of Berth's REST API (`/api/v1`), used by the `berth` CLI and by the
//! server's tests. One method per endpoint; bodies are the types of `berth_types::api` (and
//! `berth_types::template::Template` for templates).
//!
//! ```no_run
//! # async fn demo() -> Result<(), berth_client::ClientError> {
//! let client = berth_client::Client::new("http://127.0.0.1:8080")?;
//! let login = client.login("alice", "correct horse").await?;
//! let client = client.with_token(login.token.expose());
//! for workspace in client.list_workspaces(&Default::default()).await? {
//!     println!("{} {} {}", workspace.id, workspace.template, workspace.state);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! `http://` and `https://` servers: HTTPS verifies the server against the system's roots and,
//! with [`Client::with_ca`], a CA of the caller's (rustls, ring). Every failure is a
//! [`ClientError`]; an error answer of the server keeps its
//! status, code, message and details ([`ApiFailure`]).
#![forbid(unsafe_code)]

mod clusters;
mod error;
mod operations;
mod registration;
pub mod sse;
mod tls;
mod transport;

use berth_types::api::{
    AddMember, ConnectAll, GridView, MemberList, MemberView, NewGrid, RecordingList, RecordingView,
    SetPanes,
};
use berth_types::api::{
    ClientConfig, LoginRequest, LoginResponse, Monitor, NewSshKey, NewTokenRequest, PingRequest,
    PingResponse, Secret, SshKeyList, SshKeyView, StartWorkspace, TableQuery, TableResult,
    TemplateList, TokenResponse, UserBody, UserList, UserView, WorkspaceList, WorkspaceQuery,
    WorkspaceView,
};
use berth_types::api::{
    FleetSyncStatus, MachineList, MachineQuery, MachineView, SecretsKeyView, SyncView,
    TrustHostKey, VerifyAll,
};

pub use berth_types::api;
pub use berth_types::template::Template;
pub use berth_types::{
    ClientId, ClusterId, ClusterName, ClusterState, GridId, InviteId, Layout, MachineId,
    MemberRole, OperationId, PaneTarget, RecordingId, SessionRole, WorkspaceId,
};
pub use error::{ApiFailure, ClientError};
pub use http::Method;
pub use operations::{OperationEvent, OperationEvents, output_bytes};
/// The TLS types the client's callers name (CA certificates, client configurations).
pub use rustls;
pub use tls::read_ca;
pub use transport::{Client, RawResponse};

/// `s` with everything but unreserved characters percent-encoded, for a path segment or a
/// query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for byte in s.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `GET /api/v1/machines` with the filters, sort and paging of `query` in its query string.
fn machines_path(query: &MachineQuery) -> String {
    let mut params = Vec::new();
    if let Some(kind) = &query.kind {
        params.push(format!("type={}", encode(kind)));
    }
    if let Some(status) = query.status {
        params.push(format!("status={status}"));
    }
    if let Some(enrollment) = query.enrollment {
        params.push(format!("enrollment={enrollment}"));
    }
    if let Some(tag) = &query.tag {
        params.push(format!("tag={}", encode(tag)));
    }
    if let Some(sort) = &query.sort {
        params.push(format!("sort={}", encode(sort)));
    }
    if let Some(desc) = query.desc {
        params.push(format!("desc={desc}"));
    }
    if let Some(limit) = query.limit {
        params.push(format!("limit={limit}"));
    }
    if let Some(cursor) = &query.cursor {
        params.push(format!("cursor={}", encode(cursor)));
    }
    if params.is_empty() {
        "/api/v1/machines".to_owned()
    } else {
        format!("/api/v1/machines?{}", params.join("&"))
    }
}

impl Client {
    /// `GET /healthz`.
    pub async fn healthz(&self) -> Result<String, ClientError> {
        self.text(Method::GET, "/healthz").await
    }

    /// `GET /metrics`: Prometheus text.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        self.text(Method::GET, "/metrics").await
    }

    /// `GET /api/v1/openapi.json`.
    pub async fn openapi(&self) -> Result<serde_json::Value, ClientError> {
        self.json(Method::GET, "/api/v1/openapi.json", None::<&()>)
            .await
    }

    /// `POST /api/v1/auth/login`: a JWT for `username`, valid 24 hours. Use it with
    /// [`Client::with_token`].
    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<LoginResponse, ClientError> {
        let body = LoginRequest {
            username: username.to_owned(),
            password: Secret::new(password),
        };
        self.json(Method::POST, "/api/v1/auth/login", Some(&body))
            .await
    }

    /// `POST /api/v1/auth/tokens`: a new client token for the caller, shown once.
    pub async fn create_token(&self, label: Option<&str>) -> Result<TokenResponse, ClientError> {
        let body = NewTokenRequest {
            label: label.map(str::to_owned),
        };
        self.json(Method::POST, "/api/v1/auth/tokens", Some(&body))
            .await
    }

    /// `DELETE /api/v1/auth/tokens/{client_id}`: revokes one of the caller's tokens.
    pub async fn revoke_token(&self, client_id: ClientId) -> Result<(), ClientError> {
        self.empty(Method::DELETE, &format!("/api/v1/auth/tokens/{client_id}"))
            .await
    }

    /// `GET /api/v1/config`: the caller's merged configuration and templates.
    pub async fn config(&self) -> Result<ClientConfig<Template>, ClientError> {
        self.json(Method::GET, "/api/v1/config", None::<&()>).await
    }

    /// `POST /api/v1/ping`.
    pub async fn ping(&self, ping: &PingRequest) -> Result<PingResponse, ClientError> {
        self.json(Method::POST, "/api/v1/ping", Some(ping)).await
    }

    /// `GET /api/v1/monitor` (admins).
    pub async fn monitor(&self) -> Result<Monitor, ClientError> {
        self.json(Method::GET, "/api/v1/monitor", None::<&()>).await
    }

    /// `POST /api/v1/workspaces`.
    pub async fn start_workspace(
        &self,
        start: &StartWorkspace,
    ) -> Result<WorkspaceView, ClientError> {
        self.json(Method::POST, "/api/v1/workspaces", Some(start))
            .await
    }

    /// `GET /api/v1/workspaces`, with the filters of `query` (`owner` for admins; `shared`
    /// for the workspaces others shared with you).
    pub async fn list_workspaces(
        &self,
        query: &WorkspaceQuery,
    ) -> Result<Vec<WorkspaceView>, ClientError> {
        let mut params = Vec::new();
        if let Some(owner) = &query.owner {
            params.push(format!("owner={}", encode(owner.as_str())));
        }
        if let Some(state) = query.state {
            params.push(format!("state={state}"));
        }
        if let Some(template) = &query.template {
            params.push(format!("template={}", encode(template)));
        }
        if query.shared {
            params.push("shared=true".to_owned());
        }
        let path = if params.is_empty() {
            "/api/v1/workspaces".to_owned()
        } else {
            format!("/api/v1/workspaces?{}", params.join("&"))
        };
        let list: WorkspaceList = self.json(Method::GET, &path, None::<&()>).await?;
        Ok(list.workspaces)
    }

    /// `GET /api/v1/workspaces/{id}`.
    pub async fn workspace(&self, id: WorkspaceId) -> Result<WorkspaceView, ClientError> {
        self.json(
            Method::GET,
            &format!("/api/v1/workspaces/{id}"),
            None::<&()>,
        )
        .await
    }

    /// `POST /api/v1/workspaces/{id}/stop`.
    pub async fn stop_workspace(&self, id: WorkspaceId) -> Result<WorkspaceView, ClientError> {
        self.json(
            Method::POST,
            &format!("/api/v1/workspaces/{id}/stop"),
            None::<&()>,
        )
        .await
    }

    /// `POST /api/v1/workspaces/{id}/start`: starts a stopped workspace again.
    pub async fn restart_workspace(&self, id: WorkspaceId) -> Result<WorkspaceView, ClientError> {
        self.json(
            Method::POST,
            &format!("/api/v1/workspaces/{id}/start"),
            None::<&()>,
        )
        .await
    }

    /// `DELETE /api/v1/workspaces/{id}`.
    pub async fn delete_workspace(&self, id: WorkspaceId) -> Result<(), ClientError> {
        self.empty(Method::DELETE, &format!("/api/v1/workspaces/{id}"))
            .await
    }

    /// `GET /api/v1/users` (admins).
    pub async fn users(&self) -> Result<Vec<UserView>, ClientError> {
        let list: UserList = self.json(Method::GET, "/api/v1/users", None::<&()>).await?;
        Ok(list.users)
    }

    /// `GET /api/v1/users/{name}` (admins).
    pub async fn user(&self, name: &str) -> Result<UserView, ClientError> {
        self.json(
            Method::GET,
            &format!("/api/v1/users/{}", encode(name)),
            None::<&()>,
        )
        .await
    }

    /// `POST /api/v1/users` (admins).
    pub async fn create_user(&self, user: &UserBody) -> Result<UserView, ClientError> {
        self.json(Method::POST, "/api/v1/users", Some(user)).await
    }

    /// `PUT /api/v1/users/{name}` (admins): replaces the user; a new `username` renames it.
    pub async fn update_user(&self, name: &str, user: &UserBody) -> Result<UserView, ClientError> {
        self.json(
            Method::PUT,
            &format!("/api/v1/users/{}", encode(name)),
            Some(user),
        )
        .await
    }

    /// `DELETE /api/v1/users/{name}` (admins).
    pub async fn delete_user(&self, name: &str) -> Result<(), ClientError> {
        self.empty(Method::DELETE, &format!("/api/v1/users/{}", encode(name)))
            .await
    }

    /// `POST /api/v1/users/{name}/token` (admins): revokes the user's tokens, returns a new
    /// one, once.
    pub async fn reset_user_token(
        &self,
        name: &str,
        label: Option<&str>,
    ) -> Result<TokenResponse, ClientError> {
        let body = NewTokenRequest {
            label: label.map(str::to_owned),
        };
        self.json(
            Method::POST,
            &format!("/api/v1/users/{}/token", encode(name)),
            Some(&body),
        )
        .await
    }

    /// `DELETE /api/v1/users/{name}/tokens/{client_id}` (admins).
    pub async fn revoke_user_token(
        &self,
        name: &str,
        client_id: ClientId,
    ) -> Result<(), ClientError> {
        self.empty(
            Method::DELETE,
            &format!("/api/v1/users/{}/tokens/{client_id}", encode(name)),
        )
        .await
    }

    /// `GET /api/v1/users/{name}/keys` (the user or an admin): their SSH public keys.
    pub async fn ssh_keys(&self, name: &str) -> Result<Vec<SshKeyView>, ClientError> {
        let list: SshKeyList = self
            .json(
                Method::GET,
                &format!("/api/v1/users/{}/keys", encode(name)),
                None::<&()>,
            )
            .await?;
        Ok(list.keys)
    }

    /// `POST /api/v1/users/{name}/keys` (the user or an admin): adds `key`, a public key
    /// in OpenSSH format.
    pub async fn add_ssh_key(&self, name: &str, key: &str) -> Result<SshKeyView, ClientError> {
        self.json(
            Method::POST,
            &format!("/api/v1/users/{}/keys", encode(name)),
            Some(&NewSshKey {
                key: key.to_owned(),
            }),
        )
        .await
    }

    /// `DELETE /api/v1/users/{name}/keys/{fingerprint}` (the user or an admin).
    pub async fn remove_ssh_key(&self, name: &str, fingerprint: &str) -> Result<(), ClientError> {
        self.empty(
            Method::DELETE,
            &format!(
                "/api/v1/users/{}/keys/{}",
                encode(name),
                encode(fingerprint)
            ),
        )
        .await
    }

    /// `GET /api/v1/templates` (admins).
    pub async fn templates(&self) -> Result<Vec<Template>, ClientError> {
        let list: TemplateList<Template> = self
            .json(Method::GET, "/api/v1/templates", None::<&()>)
            .await?;
        Ok(list.templates)
    }

    /// `GET /api/v1/templates/{name}` (admins).
    pub async fn template(&self, name: &str) -> Result<Template, ClientError> {
        self.json(
            Method::GET,
            &format!("/api/v1/templates/{}", encode(name)),
            None::<&()>,
        )
        .await
    }

    /// `POST /api/v1/templates` (admins).
    pub async fn create_template(&self, template: &Template) -> Result<Template, ClientError> {
        self.json(Method::POST, "/api/v1/templates", Some(template))
            .await
    }

    /// `PUT /api/v1/templates/{name}` (admins): replaces the template; a new `name` renames it.
    pub async fn update_template(
        &self,
        name: &str,
        template: &Template,
    ) -> Result<Template, ClientError> {
        self.json(
            Method::PUT,
            &format!("/api/v1/templates/{}", encode(name)),
            Some(template),
        )
        .await
    }

    /// `DELETE /api/v1/templates/{name}` (admins).
    pub async fn delete_template(&self, name: &str) -> Result<(), ClientError> {
        self.empty(
            Method::DELETE,
            &format!("/api/v1/templates/{}", encode(name)),
        )
        .await
    }

    /// `POST /api/v1/tables/query`.
    pub async fn query_table(&self, query: &TableQuery) -> Result<TableResult, ClientError> {
        self.json(Method::POST, "/api/v1/tables/query", Some(query))
            .await
    }

    /// `POST /api/v1/workspaces/{id}/members`: adds `username` as a peer or viewer of a
    /// shared workspace (its owner or an admin), or changes their role.
    pub async fn add_member(
        &self,
        id: WorkspaceId,
        username: &str,
        role: MemberRole,
    ) -> Result<MemberView, ClientError> {
        let body = AddMember {
            username: username.to_owned(),
            role,
        };
        self.json(
            Method::POST,
            &format!("/api/v1/workspaces/{id}/members"),
            Some(&body),
        )
        .await
    }

    /// `DELETE /api/v1/workspaces/{id}/members/{name}`.
    pub async fn remove_member(&self, id: WorkspaceId, username: &str) -> Result<(), ClientError> {
        self.empty(
            Method::DELETE,
            &format!("/api/v1/workspaces/{id}/members/{}", encode(username)),
        )
        .await
    }

    /// `GET /api/v1/workspaces/{id}/members`: the owner, the members, and who is attached.
    pub async fn members(&self, id: WorkspaceId) -> Result<MemberList, ClientError> {
        self.json(
            Method::GET,
            &format!("/api/v1/workspaces/{id}/members"),
            None::<&()>,
        )
        .await
    }

    /// `GET /api/v1/workspaces/{id}/recordings`: the recordings, newest first.
    pub async fn recordings(&self, id: WorkspaceId) -> Result<Vec<RecordingView>, ClientError> {
        let list: RecordingList = self
            .json(
                Method::GET,
                &format!("/api/v1/workspaces/{id}/recordings"),
                None::<&()>,
            )
            .await?;
        Ok(list.recordings)
    }

    /// `GET /api/v1/recordings/{id}`: one recording's metadata.
    pub async fn recording(&self, id: RecordingId) -> Result<RecordingView, ClientError> {
        self.json(
            Method::GET,
            &format!("/api/v1/recordings/{id}"),
            None::<&()>,
        )
        .await
    }

    /// `DELETE /api/v1/recordings/{id}` (admins): deletes a finished recording.
    pub async fn delete_recording(&self, id: RecordingId) -> Result<(), ClientError> {
        self.empty(Method::DELETE, &format!("/api/v1/recordings/{id}"))
            .await
    }

    /// `GET /api/v1/recordings/{id}/cast`: the asciicast v2 file.
    pub async fn recording_cast(&self, id: RecordingId) -> Result<String, ClientError> {
        self.text(Method::GET, &format!("/api/v1/recordings/{id}/cast"))
            .await
    }

    /// `POST /api/v1/grids`: a grid of `layout` showing `panes` (workspace ids, machine ids
    /// or [`PaneTarget`]s), pane 0 first.
    pub async fn create_grid<P: Clone + Into<PaneTarget>>(
        &self,
        layout: Layout,
        panes: &[P],
    ) -> Result<GridView, ClientError> {
        let body = NewGrid {
            layout,
            panes: panes.iter().cloned().map(Into::into).collect(),
        };
        self.json(Method::POST, "/api/v1/grids", Some(&body)).await
    }

    /// `PUT /api/v1/grids/{id}/panes`: other panes, and a new layout if given.
    pub async fn set_grid_panes<P: Clone + Into<PaneTarget>>(
        &self,
        id: GridId,
        layout: Option<Layout>,
        panes: &[P],
    ) -> Result<GridView, ClientError> {
        let body = SetPanes {
            layout,
            panes: panes.iter().cloned().map(Into::into).collect(),
        };
        self.json(
            Method::PUT,
            &format!("/api/v1/grids/{id}/panes"),
            Some(&body),
        )
        .await
    }

    /// `POST /api/v1/grids/{id}/connect-all`: the grid's socket and each pane's state.
    pub async fn connect_all(&self, id: GridId) -> Result<ConnectAll, ClientError> {
        self.json(
            Method::POST,
            &format!("/api/v1/grids/{id}/connect-all"),
            None::<&()>,
        )
        .await
    }

    /// `GET /api/v1/machines`: one page of the fleet machines the caller may see (admins:
    /// all; users: those their users.yaml `machines:` selectors match). Pass the page's
    /// `next_cursor` as `query.cursor` for the next one; [`Client::all_machines`] does.
    pub async fn machines(&self, query: &MachineQuery) -> Result<MachineList, ClientError> {
        self.json(Method::GET, &machines_path(query), None::<&()>)
            .await
    }

    /// Every page of `GET /api/v1/machines` for `query` (its `cursor` is where to begin).
    pub async fn all_machines(
        &self,
        query: &MachineQuery,
    ) -> Result<Vec<MachineView>, ClientError> {
        let mut query = query.clone();
        let mut machines = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            let page = self.machines(&query).await?;
            machines.extend(page.machines);
            match page.next_cursor {
                // A cursor seen before would loop for ever: the answer is wrong.
                Some(next) if !seen.insert(next.clone()) => {
                    return Err(ClientError::Decode {
                        status: 200,
                        reason: format!("the machines list gave the same cursor twice ({next})"),
                    });
                }
                Some(next) => query.cursor = Some(next),
                None => return Ok(machines),
            }
        }
    }

    /// `GET /api/v1/machines/{id}`: its SSH settings, enrollment, and health with its recent
    /// history. 404 for a machine the caller may not see, as for one that does not exist.
    pub async fn machine(&self, id: &MachineId) -> Result<MachineView, ClientError> {
        self.json(
            Method::GET,
            &format!("/api/v1/machines/{}", encode(id.as_str())),
            None::<&()>,
        )
        .await
    }

    /// `POST /api/v1/machines/{id}/verify` (admins): checks its enrollment and health now.
    pub async fn verify_machine(&self, id: &MachineId) -> Result<MachineView, ClientError> {
        self.json(
            Method::POST,
            &format!("/api/v1/machines/{}/verify", encode(id.as_str())),
            None::<&()>,
        )
        .await
    }

    /// `POST /api/v1/machines/verify` (admins): checks every machine now.
    pub async fn verify_machines(&self) -> Result<VerifyAll, ClientError> {
        self.json(Method::POST, "/api/v1/machines/verify", None::<&()>)
            .await
    }

    /// `POST /api/v1/machines/{id}/trust` (admins): trusts the host key the machine presents
    /// if its SHA256 fingerprint is `fingerprint`, and verifies the machine again.
    pub async fn trust_host_key(
        &self,
        id: &MachineId,
        fingerprint: &str,
    ) -> Result<MachineView, ClientError> {
        let body = TrustHostKey {
            fingerprint: fingerprint.to_owned(),
        };
        self.json(
            Method::POST,
            &format!("/api/v1/machines/{}/trust", encode(id.as_str())),
            Some(&body),
        )
        .await
    }

    /// `GET /api/v1/fleet/sync` (admins): the commit in force, whether a sync runs, and the
    /// recent syncs.
    pub async fn fleet_sync_status(&self) -> Result<FleetSyncStatus, ClientError> {
        self.json(Method::GET, "/api/v1/fleet/sync", None::<&()>)
            .await
    }

    /// `POST /api/v1/fleet/sync` (admins): syncs the inventory now (after a sync already
    /// running) and answers the sync, failed or not.
    pub async fn sync_fleet(&self) -> Result<SyncView, ClientError> {
        self.json(Method::POST, "/api/v1/fleet/sync", None::<&()>)
            .await
    }

    /// `GET /api/v1/fleet/secrets-key` (admins): the age recipient `secrets.ini` is
    /// encrypted to.
    pub async fn fleet_secrets_key(&self) -> Result<SecretsKeyView, ClientError> {
        self.json(Method::GET, "/api/v1/fleet/secrets-key", None::<&()>)
            .await
    }
}

#[cfg(test)]
mod tests {
    use berth_types::api::MachineQuery;
    use berth_types::fleet::{EnrollmentStatus, HealthStatus};

    use super::{encode, machines_path};

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode("alice"), "alice");
        assert_eq!(encode("../etc/passwd"), "..%2Fetc%2Fpasswd");
        assert_eq!(encode("a b?c#d"), "a%20b%3Fc%23d");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn machine_filters_go_into_the_query_string() {
        assert_eq!(machines_path(&MachineQuery::default()), "/api/v1/machines");
        let query = MachineQuery {
            kind: Some("db server".into()),
            status: Some(HealthStatus::Offline),
            enrollment: Some(EnrollmentStatus::HostKeyUnknown),
            tag: Some("lab".into()),
            sort: Some("last_seen".into()),
            desc: Some(true),
            limit: Some(500),
            cursor: Some("a+b/c=".into()),
        };
        assert_eq!(
            machines_path(&query),
            "/api/v1/machines?type=db%20server&status=offline&enrollment=host_key_unknown\
             &tag=lab&sort=last_seen&desc=true&limit=500&cursor=a%2Bb%2Fc%3D"
        );
    }
}
