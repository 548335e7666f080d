-- Recordings record their target: a workspace or a fleet machine (berth_types::TerminalTarget),
-- SQLite flavour. Keep in step with migrations/postgres.
-- `workspace_id` (already text here) becomes `target_id`; every existing row is a workspace
-- recording. ADD COLUMN ... NOT NULL needs a default; the store always writes the kind.
ALTER TABLE recordings ADD COLUMN target_kind TEXT NOT NULL DEFAULT 'workspace'
    CHECK (target_kind IN ('workspace', 'machine'));
DROP INDEX recordings_workspace;
ALTER TABLE recordings RENAME COLUMN workspace_id TO target_id;
CREATE INDEX recordings_target ON recordings (target_kind, target_id, started_at);
