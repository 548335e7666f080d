//! Who is attached to each workspace's terminal right now, in memory. Every session watches its
//! workspace's list; a join or a leave replaces the list, and a session that falls behind sees
//! only the latest one (a `watch` channel never queues).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use berth_types::WorkspaceId;
use tokio::sync::watch;

use super::protocol::Connected;
use crate::workspaces::lock;

/// The registry; cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Presence {
    rooms: Arc<Mutex<HashMap<WorkspaceId, Room>>>,
}

#[derive(Debug)]
struct Room {
    next: u64,
    sessions: BTreeMap<u64, Connected>,
    list: watch::Sender<Vec<Connected>>,
}

impl Room {
    /// Each user once, with the most they may do in any of their sessions; owner first, then
    /// peers, then viewers, by name.
    fn list(&self) -> Vec<Connected> {
        let mut best: BTreeMap<&str, &Connected> = BTreeMap::new();
        for c in self.sessions.values() {
            let entry = best.entry(c.username.as_str()).or_insert(c);
            if c.role > entry.role {
                *entry = c;
            }
        }
        let mut list: Vec<Connected> = best.into_values().cloned().collect();
        list.sort_by(|a, b| b.role.cmp(&a.role).then(a.username.cmp(&b.username)));
        list
    }
}

/// One session's place in a room: leaves on drop.
#[derive(Debug)]
pub(crate) struct Seat {
    presence: Presence,
    workspace: WorkspaceId,
    key: u64,
    /// The room's list, as it changes.
    pub(crate) list: watch::Receiver<Vec<Connected>>,
}

impl Presence {
    /// Adds a session of `who` to the workspace's room and tells everyone there.
    pub(crate) fn join(&self, workspace: WorkspaceId, who: Connected) -> Seat {
        let mut rooms = lock(&self.rooms);
        let room = rooms.entry(workspace).or_insert_with(|| Room {
            next: 0,
            sessions: BTreeMap::new(),
            list: watch::Sender::new(Vec::new()),
        });
        let key = room.next;
        room.next += 1;
        room.sessions.insert(key, who);
        let list = room.list();
        room.list.send_replace(list);
        let mut receiver = room.list.subscribe();
        // The joining session learns the list from its hello, not as a change.
        receiver.mark_unchanged();
        Seat {
            presence: self.clone(),
            workspace,
            key,
            list: receiver,
        }
    }

    /// Who is attached to the workspace now.
    pub(crate) fn connected(&self, workspace: WorkspaceId) -> Vec<Connected> {
        lock(&self.rooms)
            .get(&workspace)
            .map(|room| room.list.borrow().clone())
            .unwrap_or_default()
    }

    fn leave(&self, workspace: WorkspaceId, key: u64) {
        let mut rooms = lock(&self.rooms);
        let Some(room) = rooms.get_mut(&workspace) else {
            return;
        };
        room.sessions.remove(&key);
        if room.sessions.is_empty() {
            rooms.remove(&workspace);
        } else {
            let list = room.list();
            room.list.send_replace(list);
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.presence.leave(self.workspace, self.key);
    }
}

#[cfg(test)]
mod tests {
    use berth_types::Username;

    use super::*;
    use crate::SessionRole;

    fn who(name: &str, role: SessionRole) -> Connected {
        Connected {
            username: Username::new(name).unwrap(),
            role,
        }
    }

    #[test]
    fn joins_and_leaves_are_seen_by_everyone_else() {
        let presence = Presence::default();
        let ws = WorkspaceId::random();
        let mut alice = presence.join(ws, who("alice", SessionRole::Owner));
        assert!(!alice.list.has_changed().unwrap());
        let bob = presence.join(ws, who("bob", SessionRole::Viewer));
        assert!(alice.list.has_changed().unwrap());
        assert_eq!(
            *alice.list.borrow_and_update(),
            vec![
                who("alice", SessionRole::Owner),
                who("bob", SessionRole::Viewer)
            ]
        );
        // A second session of bob's as a peer: listed once, with the higher role.
        let bob_again = presence.join(ws, who("bob", SessionRole::Peer));
        assert_eq!(
            presence.connected(ws),
            vec![
                who("alice", SessionRole::Owner),
                who("bob", SessionRole::Peer)
            ]
        );
        drop(bob_again);
        drop(bob);
        assert!(alice.list.has_changed().unwrap());
        assert_eq!(
            *alice.list.borrow_and_update(),
            vec![who("alice", SessionRole::Owner)]
        );
        drop(alice);
        assert!(presence.connected(ws).is_empty());
        assert!(
            lock(&presence.rooms).is_empty(),
            "empty rooms are forgotten"
        );
    }
}
