//! Who is attached to each target's terminal right now, in memory. Every session watches its
//! target's list; a join or a leave replaces the list, and a session that falls behind sees
//! only the latest one (a `watch` channel never queues). Access changes reach open sessions
//! through here too: [`Presence::revoke`] ends a user's sessions with a reason.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use berth_terminal::TerminalTarget;
use berth_types::Username;
use tokio::sync::watch;

use super::protocol::Connected;
use crate::workspaces::lock;

/// The registry; cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Presence {
    rooms: Arc<Mutex<HashMap<TerminalTarget, Room>>>,
}

#[derive(Debug)]
struct Room {
    next: u64,
    sessions: BTreeMap<u64, Occupant>,
    list: watch::Sender<Vec<Connected>>,
}

#[derive(Debug)]
struct Occupant {
    who: Connected,
    revoke: watch::Sender<Option<Revocation>>,
}

/// Why an open session must end now: sent to the client as an `error` message, then this
/// close code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The close code: 4403 (no longer allowed), 4401 (the account is gone or disabled),
    /// 1012 (the role changed: reconnect to get the new one).
    pub code: u16,
    /// For people.
    pub message: String,
}

impl Room {
    /// Each user once, with the most they may do in any of their sessions; owner first, then
    /// peers, then viewers, by name.
    fn list(&self) -> Vec<Connected> {
        let mut best: BTreeMap<&str, &Connected> = BTreeMap::new();
        for c in self.sessions.values().map(|o| &o.who) {
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
    target: TerminalTarget,
    key: u64,
    /// The room's list, as it changes.
    pub(crate) list: watch::Receiver<Vec<Connected>>,
    /// Set once when the session must end.
    pub(crate) revoked: watch::Receiver<Option<Revocation>>,
}

impl Presence {
    /// Adds a session of `who` to the target's room and tells everyone there.
    pub(crate) fn join(&self, target: &TerminalTarget, who: Connected) -> Seat {
        let mut rooms = lock(&self.rooms);
        let room = rooms.entry(target.clone()).or_insert_with(|| Room {
            next: 0,
            sessions: BTreeMap::new(),
            list: watch::Sender::new(Vec::new()),
        });
        let key = room.next;
        room.next += 1;
        let (revoke, revoked) = watch::channel(None);
        room.sessions.insert(key, Occupant { who, revoke });
        let list = room.list();
        room.list.send_replace(list);
        let mut receiver = room.list.subscribe();
        // The joining session learns the list from its hello, not as a change.
        receiver.mark_unchanged();
        Seat {
            presence: self.clone(),
            target: target.clone(),
            key,
            list: receiver,
            revoked,
        }
    }

    /// Ends every open session of `username` on `target` (`None`: on every target) with
    /// `revocation`; the number of sessions told. A session leaves the room when it has
    /// closed, not here.
    pub(crate) fn revoke(
        &self,
        target: Option<&TerminalTarget>,
        username: &Username,
        revocation: &Revocation,
    ) -> usize {
        let rooms = lock(&self.rooms);
        let mut told = 0;
        for (_, room) in rooms
            .iter()
            .filter(|(id, _)| target.is_none_or(|t| t == *id))
        {
            for occupant in room.sessions.values() {
                if occupant.who.username == *username {
                    occupant.revoke.send_replace(Some(revocation.clone()));
                    told += 1;
                }
            }
        }
        told
    }

    /// Every target with an open session and who has one there, each pair once.
    pub(crate) fn occupants(&self) -> Vec<(TerminalTarget, Username)> {
        let rooms = lock(&self.rooms);
        let mut pairs: Vec<(TerminalTarget, Username)> = rooms
            .iter()
            .flat_map(|(target, room)| {
                room.sessions
                    .values()
                    .map(|o| (target.clone(), o.who.username.clone()))
            })
            .collect();
        pairs.sort();
        pairs.dedup();
        pairs
    }

    /// Who is attached to the target now.
    pub(crate) fn connected(&self, target: &TerminalTarget) -> Vec<Connected> {
        lock(&self.rooms)
            .get(target)
            .map(|room| room.list.borrow().clone())
            .unwrap_or_default()
    }

    fn leave(&self, target: &TerminalTarget, key: u64) {
        let mut rooms = lock(&self.rooms);
        let Some(room) = rooms.get_mut(target) else {
            return;
        };
        room.sessions.remove(&key);
        if room.sessions.is_empty() {
            rooms.remove(target);
        } else {
            let list = room.list();
            room.list.send_replace(list);
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.presence.leave(&self.target, self.key);
    }
}

#[cfg(test)]
mod tests {
    use berth_types::{MachineId, Username, WorkspaceId};

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
        let ws = &TerminalTarget::Workspace(WorkspaceId::random());
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

    #[test]
    fn revoking_tells_only_that_users_sessions_in_the_named_workspace() {
        let presence = Presence::default();
        let one = &TerminalTarget::Workspace(WorkspaceId::random());
        // A target of another kind: revoking on one target leaves the others alone.
        let two = &TerminalTarget::Machine(MachineId::new("web-1").unwrap());
        let alice = presence.join(one, who("alice", SessionRole::Owner));
        let bob_one = presence.join(one, who("bob", SessionRole::Peer));
        let bob_one_again = presence.join(one, who("bob", SessionRole::Viewer));
        let bob_two = presence.join(two, who("bob", SessionRole::Peer));
        let bob = Username::new("bob").unwrap();
        let removed = Revocation {
            code: 4403,
            message: "removed".into(),
        };
        assert_eq!(presence.revoke(Some(one), &bob, &removed), 2);
        assert_eq!(*bob_one.revoked.borrow(), Some(removed.clone()));
        assert_eq!(*bob_one_again.revoked.borrow(), Some(removed.clone()));
        assert_eq!(*bob_two.revoked.borrow(), None, "another workspace");
        assert_eq!(*alice.revoked.borrow(), None, "another user");
        let gone = Revocation {
            code: 4401,
            message: "account deleted".into(),
        };
        assert_eq!(presence.revoke(None, &bob, &gone), 3);
        assert_eq!(*bob_two.revoked.borrow(), Some(gone));
        let nobody = Username::new("carol").unwrap();
        assert_eq!(presence.revoke(None, &nobody, &removed), 0);
    }
}
