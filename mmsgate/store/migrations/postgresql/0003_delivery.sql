-- depends: 0002_parts
-- Delivery: the carrier's id of each submitted message, job deadlines, the postback outbox, the sandbox
-- carrier (handsets, submissions, inboxes), inbound MMS with their parts, the shared send windows that
-- hold per-carrier throughput limits across processes, and a few gateway-wide values.
ALTER TABLE messages ADD COLUMN carrier TEXT;
ALTER TABLE messages ADD COLUMN carrier_message_id TEXT;
CREATE INDEX messages_carrier ON messages(carrier, carrier_message_id);
ALTER TABLE jobs ADD COLUMN deadline DOUBLE PRECISION;
CREATE TABLE postbacks (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    code TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    run_at DOUBLE PRECISION NOT NULL,
    lease_owner TEXT,
    lease_until DOUBLE PRECISION,
    last_error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX postbacks_due ON postbacks(state, run_at);
CREATE INDEX postbacks_subject ON postbacks(subject_id, id);
CREATE TABLE sandbox_handsets (
    number TEXT PRIMARY KEY,
    behaviour TEXT NOT NULL,
    delay DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE sandbox_submissions (
    submission_id TEXT PRIMARY KEY,
    carrier_message_id TEXT NOT NULL UNIQUE,
    number TEXT NOT NULL,
    outcome TEXT NOT NULL,
    calls INTEGER NOT NULL DEFAULT 1,
    mms TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE sandbox_inbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number TEXT NOT NULL,
    carrier_message_id TEXT NOT NULL UNIQUE,
    mms TEXT NOT NULL,
    delivered_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX sandbox_inbox_number ON sandbox_inbox(number, id);
CREATE TABLE inbound (
    id TEXT PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    carrier TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT,
    keyword TEXT,
    copy_to TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX inbound_account ON inbound(account_id, created_at);
CREATE TABLE inbound_parts (
    inbound_id TEXT NOT NULL REFERENCES inbound(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (inbound_id, position)
);
CREATE TABLE carrier_sends (
    carrier TEXT NOT NULL,
    slot INTEGER NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (carrier, slot)
);
CREATE TABLE gateway_values (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
