-- Initial schema: accounts and their configuration, templates, messages, events and jobs.
-- A template's NULL fallback_link_expires_at means one year from each send.
-- Times are seconds since the epoch (UTC) as REAL.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    transcoding INTEGER NOT NULL DEFAULT 1,
    postback_url TEXT,
    postback_secret TEXT,
    rate_limit INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE INDEX api_keys_account ON api_keys(account_id);
CREATE TABLE campaigns (
    service_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    postback_url TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX campaigns_account ON campaigns(account_id);
CREATE TABLE numbers (
    number TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    service_id TEXT REFERENCES campaigns(service_id) ON DELETE CASCADE,
    created_at REAL NOT NULL
);
CREATE INDEX numbers_account ON numbers(account_id);
CREATE TABLE blocked_numbers (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    number TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (account_id, number)
);
CREATE TABLE templates (
    mms_id TEXT PRIMARY KEY,
    tracking_id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    subject TEXT,
    fallback_sms_text TEXT,
    disable_fallback_sms INTEGER NOT NULL,
    disable_fallback_sms_link INTEGER NOT NULL,
    fallback_link_expires_at REAL,
    client_reference TEXT,
    slides TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX templates_account ON templates(account_id);
CREATE TABLE messages (
    tracking_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    mms_id TEXT,
    service_id TEXT NOT NULL,
    to_number TEXT NOT NULL,
    from_number TEXT NOT NULL,
    from_mask TEXT,
    subject TEXT,
    fallback_sms_text TEXT,
    disable_fallback_sms INTEGER NOT NULL,
    disable_fallback_sms_link INTEGER NOT NULL,
    fallback_link_expires_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    client_reference TEXT,
    cache_content INTEGER NOT NULL,
    slides TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX messages_account ON messages(account_id, created_at);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    code TEXT,
    status TEXT NOT NULL,
    details TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX events_subject ON events(subject_id, id);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    account_id TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    run_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (kind, ref)
);
CREATE INDEX jobs_due ON jobs(state, run_at);
CREATE INDEX jobs_lease ON jobs(state, lease_until);
