-- Web sessions of the admin UI, PostgreSQL flavour. Keep in step with migrations/sqlite.
-- The session id never reaches the database: `id_hash` is its SHA-256 (hex), so a copy of
-- the database logs nobody in. `user_id` is NULL for the main.yaml admin.
CREATE TABLE web_sessions (
    id_hash              text COLLATE "C" PRIMARY KEY CHECK (length(id_hash) = 64),
    username             text COLLATE "C" NOT NULL,
    user_id              text COLLATE "C",
    password_fingerprint text COLLATE "C" NOT NULL,
    csrf                 text COLLATE "C" NOT NULL,
    created_at           timestamptz NOT NULL,
    last_seen            timestamptz NOT NULL
);
