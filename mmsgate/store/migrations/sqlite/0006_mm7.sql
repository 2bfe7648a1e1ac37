-- depends: 0005_sms_fallback
-- MM7: carrier connections live beside SMS ones (one table of named connections, by kind); what an MMSC
-- posts to the gateway's VASP endpoint is kept (its body in the blob store) before it is answered, once
-- per connection and transaction (a repeat is answered again but not handled twice); an inbound MMS keeps
-- the MMSC's LinkedID, so that a reply can refer to it.
ALTER TABLE sms_connections RENAME TO connections;
CREATE TABLE mm7_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connection TEXT NOT NULL,
    dedupe TEXT NOT NULL,
    kind TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    content_type TEXT NOT NULL,
    received_at REAL NOT NULL,
    UNIQUE (connection, dedupe)
);
ALTER TABLE inbound ADD COLUMN linked_id TEXT;
