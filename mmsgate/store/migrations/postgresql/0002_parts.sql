-- depends: 0001_initial
-- Prepared media of messages and templates: one row per part, the bytes in the blob store by SHA-256.
CREATE TABLE parts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    slide INTEGER NOT NULL,
    kind TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    width INTEGER NOT NULL DEFAULT 0,
    height INTEGER NOT NULL DEFAULT 0,
    duration DOUBLE PRECISION NOT NULL DEFAULT 0,
    adapted BOOLEAN NOT NULL,
    source_url TEXT NOT NULL,
    UNIQUE (owner_id, position)
);
