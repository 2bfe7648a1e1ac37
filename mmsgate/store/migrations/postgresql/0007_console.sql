-- depends: 0006_mm7
-- The web console: messages listed newest first in pages keyed on (created_at, tracking_id); every
-- delivery attempt of a postback (when, the receiver's HTTP status or the error); console sessions (only
-- a hash of each token is kept) with their expiry; and files uploaded for test sends (served at an
-- unguessable, expiring URL, their bytes in the blob store).
CREATE INDEX messages_created ON messages(created_at, tracking_id);
CREATE TABLE postback_attempts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    postback_id BIGINT NOT NULL,
    subject_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    elapsed DOUBLE PRECISION NOT NULL,
    http_status INTEGER,
    error TEXT
);
CREATE INDEX postback_attempts_subject ON postback_attempts(subject_id, id);
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE console_uploads (
    token_hash TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    content_type TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
