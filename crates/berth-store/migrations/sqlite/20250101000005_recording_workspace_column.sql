-- Recordings keep the column name table queries used before they had targets, SQLite
-- flavour. Keep in step with migrations/postgres.
-- `workspace_id`: the target's id for workspace recordings, NULL for others (older CLIs and
-- scripts filter on it).
ALTER TABLE recordings ADD COLUMN workspace_id TEXT
    GENERATED ALWAYS AS (CASE WHEN target_kind = 'workspace' THEN target_id END) VIRTUAL;
