//! The browser terminal's server side (`docs/terminal-protocol.md`): the terminal and grid
//! WebSockets, their pages and scripts, workspace members, recordings and grids.
//!
//! The sockets are public routes in the table: the route guard would answer a browser whose
//! session expired with an HTTP 401, which a page cannot see (a failed upgrade looks like a
//! network blip and the page would retry forever). So the handlers check the `Origin` before
//! upgrading (cross-site WebSocket hijacking: browsers send cookies with any site's sockets),
//! upgrade, and only then authenticate, refusing in-band with an `error` message and a 44xx
//! close. The protocol loops are `berth_core::bridge`'s; this module adapts axum's WebSocket
//! to them ([`socket`]).

mod assets;
pub(crate) mod grids;
pub(crate) mod members;
mod origin;
pub(crate) mod pages;
pub(crate) mod recordings;
mod socket;
mod ws;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) use assets::asset;
use berth_core::bridge::BridgeStats;
pub(crate) use socket::{
    TerminalQuery, Upgrade, before_upgrade, grid as grid_socket,
    machine_terminal as machine_terminal_socket, terminal as terminal_socket,
};

use crate::state::AppState;

/// The counters of every session running over a socket of this server, so that tests and
/// operators can see how much output is held in memory.
#[derive(Debug, Default)]
pub(crate) struct Live {
    next: AtomicU64,
    sessions: Mutex<HashMap<u64, BridgeStats>>,
}

/// Keeps a session's counters listed while it lives.
#[derive(Debug)]
pub(crate) struct Listed<'a> {
    live: &'a Live,
    ids: Vec<u64>,
}

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, BridgeStats>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn list(&self, stats: impl IntoIterator<Item = BridgeStats>) -> Listed<'_> {
        let mut sessions = self.lock();
        let ids = stats
            .into_iter()
            .map(|s| {
                let id = self.next.fetch_add(1, Ordering::Relaxed);
                sessions.insert(id, s);
                id
            })
            .collect();
        Listed { live: self, ids }
    }
}

impl Drop for Listed<'_> {
    fn drop(&mut self) {
        let mut sessions = self.live.lock();
        for id in &self.ids {
            sessions.remove(id);
        }
    }
}

impl AppState {
    /// The counters of every terminal session (and grid pane) open now.
    #[must_use]
    pub fn terminal_stats(&self) -> Vec<BridgeStats> {
        self.shared.live.lock().values().cloned().collect()
    }
}
