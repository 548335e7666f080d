-- Recordings record their target: a workspace or a fleet machine (berth_types::TerminalTarget),
-- PostgreSQL flavour. Keep in step with migrations/sqlite.
-- `workspace_id` (a uuid) becomes `target_id` (text: a workspace's hyphenated UUID or a
-- machine's id); every existing row is a workspace recording. The default matches SQLite,
-- whose ADD COLUMN ... NOT NULL needs one; the store always writes the kind.
ALTER TABLE recordings ADD COLUMN target_kind text COLLATE "C" NOT NULL DEFAULT 'workspace'
    CHECK (target_kind IN ('workspace', 'machine'));
DROP INDEX recordings_workspace;
ALTER TABLE recordings ALTER COLUMN workspace_id TYPE text COLLATE "C" USING workspace_id::text;
ALTER TABLE recordings RENAME COLUMN workspace_id TO target_id;
CREATE INDEX recordings_target ON recordings (target_kind, target_id, started_at);
