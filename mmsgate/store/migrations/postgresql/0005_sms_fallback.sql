-- depends: 0004_partial_indexes
-- SMS fallback: the hosted page of each message that fell back (its short code and when it stops
-- working), the SMSC's id of every segment sent (receipts can come days later), the receipts as they
-- came (one may come before the submit's record), SMPP connections, and the sandbox handsets' SMS.
CREATE TABLE hosted_pages (
    code TEXT PRIMARY KEY,
    tracking_id TEXT NOT NULL UNIQUE,
    expires_at DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE sms_segments (
    connector TEXT NOT NULL,
    smsc_id TEXT NOT NULL,
    tracking_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    total INTEGER NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (connector, smsc_id)
);
CREATE INDEX sms_segments_message ON sms_segments(tracking_id);
CREATE TABLE sms_receipts (
    connector TEXT NOT NULL,
    smsc_id TEXT NOT NULL,
    status TEXT NOT NULL,
    details TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (connector, smsc_id)
);
CREATE TABLE sms_connections (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    config TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE sandbox_sms (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number TEXT NOT NULL,
    sender TEXT NOT NULL,
    text TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    tracking_id TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX sandbox_sms_number ON sandbox_sms(number, id);
CREATE INDEX sandbox_sms_tracking ON sandbox_sms(tracking_id);
