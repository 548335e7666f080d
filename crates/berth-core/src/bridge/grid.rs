//! Grids: a layout and up to four panes, each showing a terminal target (a workspace or a
//! fleet machine). Kept in memory: a grid is a view, cheap to make again,
//! and is gone after a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_terminal::TerminalTarget;
use berth_types::Username;
pub use berth_types::{GridId, Layout};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::workspaces::lock;

/// How many grids one user may have at once (they live in memory).
pub const MAX_GRIDS_PER_USER: usize = 32;

/// One grid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grid {
    /// Its id.
    pub id: GridId,
    /// Who made it; only they (and admins) open it.
    pub owner: Username,
    /// The arrangement.
    pub layout: Layout,
    /// Pane `n` shows `panes[n]`; at most as many as the layout has.
    pub panes: Vec<TerminalTarget>,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Why a grid operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GridError {
    /// No such grid, or one the caller may not open.
    #[error("no such grid")]
    NotFound,
    /// More panes than the layout has.
    #[error("layout {layout:?} has {max} panes, {given} given")]
    TooManyPanes {
        /// The layout.
        layout: Layout,
        /// Its panes.
        max: usize,
        /// How many were given.
        given: usize,
    },
    /// The user has as many grids as allowed.
    #[error("you already have {MAX_GRIDS_PER_USER} grids, the most allowed; delete one first")]
    TooManyGrids,
}

/// The grids of every user, in memory. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Grids {
    grids: Arc<Mutex<HashMap<GridId, Grid>>>,
}

fn check(layout: Layout, panes: &[TerminalTarget]) -> Result<(), GridError> {
    if panes.len() > layout.panes() {
        return Err(GridError::TooManyPanes {
            layout,
            max: layout.panes(),
            given: panes.len(),
        });
    }
    Ok(())
}

impl Grids {
    /// Makes a grid for `owner`. Whether `owner` may see each pane's target is checked when
    /// the grid opens, pane by pane.
    pub fn create_grid(
        &self,
        owner: &Username,
        layout: Layout,
        panes: Vec<TerminalTarget>,
    ) -> Result<Grid, GridError> {
        check(layout, &panes)?;
        let mut grids = lock(&self.grids);
        if grids.values().filter(|g| g.owner == *owner).count() >= MAX_GRIDS_PER_USER {
            return Err(GridError::TooManyGrids);
        }
        let grid = Grid {
            id: GridId::random(),
            owner: owner.clone(),
            layout,
            panes,
            created_at: OffsetDateTime::now_utc(),
        };
        grids.insert(grid.id, grid.clone());
        Ok(grid)
    }

    /// Changes a grid's layout and panes; sockets open on it keep their panes until reopened.
    pub fn set_panes(
        &self,
        id: GridId,
        layout: Layout,
        panes: Vec<TerminalTarget>,
    ) -> Result<Grid, GridError> {
        check(layout, &panes)?;
        let mut grids = lock(&self.grids);
        let grid = grids.get_mut(&id).ok_or(GridError::NotFound)?;
        grid.layout = layout;
        grid.panes = panes;
        Ok(grid.clone())
    }

    /// One grid.
    pub fn grid(&self, id: GridId) -> Result<Grid, GridError> {
        lock(&self.grids)
            .get(&id)
            .cloned()
            .ok_or(GridError::NotFound)
    }

    /// `owner`'s grids, oldest first.
    #[must_use]
    pub fn grids_of(&self, owner: &Username) -> Vec<Grid> {
        let mut list: Vec<Grid> = lock(&self.grids)
            .values()
            .filter(|g| g.owner == *owner)
            .cloned()
            .collect();
        list.sort_by_key(|g| (g.created_at, g.id));
        list
    }

    /// Forgets a grid; `false` if there was none.
    pub fn delete_grid(&self, id: GridId) -> bool {
        lock(&self.grids).remove(&id).is_some()
    }
}

#[cfg(test)]
mod tests {
    use berth_types::WorkspaceId;

    use super::*;

    #[test]
    fn grids_are_made_changed_and_bounded() {
        let grids = Grids::default();
        let alice = Username::new("alice").unwrap();
        let panes: Vec<TerminalTarget> = (0..4)
            .map(|_| TerminalTarget::Workspace(WorkspaceId::random()))
            .collect();
        let grid = grids
            .create_grid(&alice, Layout::Grid2x2, panes.clone())
            .unwrap();
        assert_eq!(grids.grid(grid.id).unwrap(), grid);
        assert_eq!(
            grids.set_panes(grid.id, Layout::Grid1x3, panes.clone()),
            Err(GridError::TooManyPanes {
                layout: Layout::Grid1x3,
                max: 3,
                given: 4
            })
        );
        let changed = grids
            .set_panes(grid.id, Layout::Grid2x1, panes[..2].to_vec())
            .unwrap();
        assert_eq!(changed.panes, panes[..2]);
        assert_eq!(
            grids.set_panes(GridId::random(), Layout::Single, vec![]),
            Err(GridError::NotFound)
        );
        for _ in 1..MAX_GRIDS_PER_USER {
            grids.create_grid(&alice, Layout::Single, vec![]).unwrap();
        }
        assert_eq!(
            grids.create_grid(&alice, Layout::Single, vec![]),
            Err(GridError::TooManyGrids)
        );
        assert_eq!(grids.grids_of(&alice).len(), MAX_GRIDS_PER_USER);
        assert!(grids.delete_grid(grid.id));
        assert!(!grids.delete_grid(grid.id));
        assert_eq!(
            serde_json::to_string(&Layout::Grid2x2).unwrap(),
            "\"grid2x2\""
        );
    }
}
