//! `GET /api/v1/events`: a WebSocket that pushes the caller's workspace and cluster changes
//! as they happen ([`LiveEvent`]): a snapshot first, then each change; a client that falls
//! behind gets a fresh snapshot instead of what it missed. Users see their own workspaces and
//! clusters, admins everyone's. The Origin is checked before the upgrade; the caller (cookie or
//! Bearer) after it, refused in-band with close 4401 like the terminal sockets.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use berth_core::bridge::close;
use berth_core::{ClusterEvent, ClusterFilter, WorkspaceEvent, WorkspaceFilter};
use berth_types::ClusterState;
use berth_types::api::LiveEvent;
use futures_util::StreamExt;
use tokio::sync::broadcast::error::RecvError;

use crate::auth::{Authentication, Caller, authenticate};
use crate::state::AppState;
use crate::terminal::{Upgrade, before_upgrade};

/// How long a send may take before a client that does not read is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a quiet socket checks that its caller's account is still what it was.
const RECHECK: Duration = Duration::from_secs(15);

/// Whether `caller` is still who they were when the socket opened, as the configuration in
/// force says: the account exists, is not disabled, and has the same role. (A role change
/// would change what the socket may show.)
fn still_valid(state: &AppState, caller: &Caller) -> bool {
    let config = state.config.current();
    if config.main.admin.username == caller.username {
        return caller.role == berth_types::Role::Admin;
    }
    config
        .user(caller.username.as_str())
        .is_some_and(|user| !user.disabled && user.role == caller.role)
}

/// `GET /api/v1/events`.
pub(crate) async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: Option<Upgrade>,
) -> Response {
    let upgrade = match before_upgrade(&state, &headers, upgrade) {
        Ok(upgrade) => upgrade,
        Err(err) => return err.into_response(),
    };
    let authentication = authenticate(&state, &state.config.current(), &headers);
    upgrade
        .on_upgrade(move |socket| async move {
            let caller = match authentication {
                Authentication::Caller(caller) => caller,
                _ => {
                    let mut socket = socket;
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame {
                            code: close::UNAUTHENTICATED,
                            reason: "log in to follow your workspaces and clusters".into(),
                        })))
                        .await;
                    return;
                }
            };
            follow(state, caller, socket).await;
        })
        .into_response()
}

fn sees(caller: &Caller, owner: &berth_types::Username) -> bool {
    caller.is_admin() || owner == &caller.username
}

/// What `caller` sees now.
async fn snapshot(state: &AppState, caller: &Caller) -> Option<LiveEvent> {
    let owner = (!caller.is_admin()).then(|| caller.username.clone());
    let workspaces = state
        .workspaces
        .list(&WorkspaceFilter {
            owner: owner.clone(),
            ..WorkspaceFilter::default()
        })
        .await
        .map_err(|e| tracing::warn!(error = %e, "events: cannot list workspaces"))
        .ok()?;
    let clusters = match &state.clusters {
        Some(clusters) => clusters
            .list(&ClusterFilter {
                owner,
                states: ClusterState::ALL
                    .into_iter()
                    .filter(|s| *s != ClusterState::Deleted)
                    .collect(),
            })
            .await
            .map_err(|e| tracing::warn!(error = %e, "events: cannot list clusters"))
            .ok()?,
        None => Vec::new(),
    };
    Some(LiveEvent::Snapshot {
        workspaces: workspaces
            .into_iter()
            .map(|w| crate::workspaces::view(state, w))
            .collect(),
        clusters: clusters.into_iter().map(crate::clusters::view).collect(),
    })
}

async fn send(socket: &mut WebSocket, event: &LiveEvent) -> bool {
    let Ok(text) = serde_json::to_string(event) else {
        return false;
    };
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    )
}

/// Receives the next cluster event, or waits forever without a cluster service.
async fn next_cluster(
    receiver: &mut Option<tokio::sync::broadcast::Receiver<ClusterEvent>>,
) -> Result<ClusterEvent, RecvError> {
    match receiver {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

async fn follow(state: AppState, caller: Caller, mut socket: WebSocket) {
    // Subscribed before the snapshot, so nothing between the two is missed.
    let mut workspace_events = state.workspaces.subscribe();
    let mut cluster_events = state.clusters.as_ref().map(berth_core::Clusters::subscribe);
    let Some(first) = snapshot(&state, &caller).await else {
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code: 1011,
                reason: "cannot read your workspaces and clusters; try again".into(),
            })))
            .await;
        return;
    };
    // Deletions carry only an id: forward those of workspaces the caller was shown.
    let mut known: std::collections::HashSet<berth_types::WorkspaceId> = match &first {
        LiveEvent::Snapshot { workspaces, .. } => workspaces.iter().map(|w| w.id).collect(),
        _ => std::collections::HashSet::new(),
    };
    if !send(&mut socket, &first).await {
        return;
    }
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            _ = recheck.tick() => None,
            incoming = socket.next() => match incoming {
                // Nothing is read but the close (pings are answered by axum).
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => continue,
            },
            event = workspace_events.recv() => match event {
                Ok(WorkspaceEvent::Changed(workspace)) if sees(&caller, &workspace.owner) => {
                    known.insert(workspace.id);
                    Some(LiveEvent::Workspace {
                        workspace: Box::new(crate::workspaces::view(&state, *workspace)),
                    })
                }
                Ok(WorkspaceEvent::Deleted(id)) if known.remove(&id) => {
                    Some(LiveEvent::WorkspaceDeleted { id })
                }
                Ok(_) => None,
                Err(RecvError::Lagged(_)) => {
                    let fresh = snapshot(&state, &caller).await;
                    if let Some(LiveEvent::Snapshot { workspaces, .. }) = &fresh {
                        known = workspaces.iter().map(|w| w.id).collect();
                    }
                    fresh
                }
                Err(RecvError::Closed) => return,
            },
            event = next_cluster(&mut cluster_events) => match event {
                Ok(ClusterEvent::Changed(cluster)) if sees(&caller, &cluster.owner) => {
                    Some(LiveEvent::Cluster { cluster: Box::new(crate::clusters::view(*cluster)) })
                }
                Ok(ClusterEvent::Removed { id, owner }) if sees(&caller, &owner) => {
                    Some(LiveEvent::ClusterRemoved { id })
                }
                Ok(_) => None,
                Err(RecvError::Lagged(_)) => snapshot(&state, &caller).await,
                Err(RecvError::Closed) => {
                    cluster_events = None;
                    None
                }
            },
        };
        if !still_valid(&state, &caller) {
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code: close::UNAUTHENTICATED,
                    reason: "your account changed; log in again".into(),
                })))
                .await;
            return;
        }
        if let Some(event) = event
            && !send(&mut socket, &event).await
        {
            return;
        }
    }
}
