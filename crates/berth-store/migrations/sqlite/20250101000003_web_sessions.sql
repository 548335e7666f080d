-- Web sessions of the admin UI, SQLite flavour. Keep in step with migrations/postgres.
-- The session id never reaches the database: `id_hash` is its SHA-256 (hex), so a copy of
-- the database logs nobody in. `user_id` is NULL for the main.yaml admin.
CREATE TABLE web_sessions (
    id_hash              TEXT PRIMARY KEY NOT NULL CHECK (length(id_hash) = 64),
    username             TEXT NOT NULL,
    user_id              TEXT,
    password_fingerprint TEXT NOT NULL,
    csrf                 TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    last_seen            TEXT NOT NULL
) STRICT;
