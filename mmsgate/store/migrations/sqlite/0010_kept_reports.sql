-- depends: 0009_postback_backlog
-- Delivery reports and SMS receipts that came before the record of the submit they report on: kept until
-- that record exists (then applied, and deleted) or until the message's expiry, never dropped after a few
-- quick retries. A report is known by its kind ('mms': a carrier's delivery report; 'sms': an SMSC's
-- receipt for a fallback SMS segment, whose own row stays in sms_receipts), its carrier or SMS connection
-- and the id the carrier gave. alt_id and alt_id2 are a receipt's other readings of that id (hexadecimal
-- or decimal, as sms_segments may hold either; the id itself when it has none). A carrier that reports
-- with the gateway's submission id (the sandbox) names the message too. The status view shows a message's
-- kept report as its pending report.
CREATE TABLE kept_reports (
    kind TEXT NOT NULL,
    carrier TEXT NOT NULL,
    carrier_message_id TEXT NOT NULL,
    alt_id TEXT NOT NULL,
    alt_id2 TEXT NOT NULL,
    submission_id TEXT,
    status TEXT NOT NULL,
    details TEXT NOT NULL,
    code TEXT,
    extra TEXT NOT NULL,
    received_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (kind, carrier, carrier_message_id)
);
CREATE INDEX kept_reports_submission ON kept_reports(submission_id) WHERE submission_id IS NOT NULL;
CREATE INDEX kept_reports_expiry ON kept_reports(expires_at);
